"""Signal quality of the drift detectors: how fast a real shift alarms, how rarely clean calls do.

Seeded simulated call streams drive ``core.monitoring.drift.DriftMonitor`` one call at a time
through ``update`` (the code a drift workflow runs), with every metric and detector on.
Clean calls (per call, independent):

* quality: N(75, 12) clipped to 0-100;
* grounded: True with probability 0.90;
* words per agent turn: Gamma with mean 30 and sd 15 (a spread of half the mean, right-skewed);
* tool failed: present on 60% of calls, True with probability 0.05;
* context latency: lognormal, median 120 ms, sigma 0.6;
* stale hit: True with probability 0.03.

Scenarios:

* words per turn +20% (the whole Gamma scaled by 1.2) from a change point on: calls from the
  change to the first ``words_per_turn`` ``up`` alarm (target: median <= 150);
* grounded share 90% -> 80% from a change point on: calls to the first ``grounded`` alarm
  (target: median <= 250);
* clean streams only: every alarm of every detector is a false alarm; the rate per 10,000
  monitored calls (calls after the first reference window) with an exact Poisson 95% CI
  (target: <= 1).

Each change scenario runs at two change points: a settled version (change after
``--change-at`` calls, default 3000: the reference has grown to ~1600-3200 calls) and a young
one (change right after the 200-call reference plus 300 calls). Every alarm is acknowledged at
once (the detector restarts from zero), which is what makes the long-run alarm rate 1/ARL0.

Run: ``.venv/bin/python -m bench.drift_signal [--json FILE]`` (~5 min on 2 vCPUs).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field

import numpy as np
from scipy.stats import chi2

from bench.common import machine_info, met, say, table, write_json
from core.monitoring.drift import (
    FALSE_ALARMS_PER_CALL,
    METRICS,
    REFERENCE_SIZE,
    SHARES,
    DriftMonitor,
)

WORDS_MEAN, WORDS_SHAPE = 30.0, 4.0  # Gamma(4): sd = mean / 2
GROUNDED_P = 0.90


def clean_calls(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    return {
        "quality": np.clip(rng.normal(75.0, 12.0, n), 0.0, 100.0),
        "grounded": rng.random(n) < GROUNDED_P,
        "words_per_turn": rng.gamma(WORDS_SHAPE, WORDS_MEAN / WORDS_SHAPE, n),
        "tool_present": rng.random(n) < 0.6,
        "tool_failed": rng.random(n) < 0.05,
        "context_latency_ms": rng.lognormal(np.log(120.0), 0.6, n),
        "stale_hit": rng.random(n) < 0.03,
    }


def rows_of(c: dict[str, np.ndarray]) -> list[dict[str, object]]:
    q, g, w = c["quality"].tolist(), c["grounded"].tolist(), c["words_per_turn"].tolist()
    tp, tf, lat = c["tool_present"].tolist(), c["tool_failed"].tolist(), c["context_latency_ms"]
    st, lat_l = c["stale_hit"].tolist(), lat.tolist()
    return [
        {
            "quality": q[i],
            "grounded": g[i],
            "words_per_turn": w[i],
            "tool_failed": tf[i] if tp[i] else None,
            "context_latency_ms": lat_l[i],
            "stale_hit": st[i],
        }
        for i in range(len(q))
    ]


@dataclass
class Delays:
    name: str
    change_at: int
    target: float | None
    delays: list[int] = field(default_factory=list)
    missed: int = 0
    false_before: int = 0
    seconds: float = 0.0


def run_change(
    name: str,
    metric: str,
    direction: str,
    change_at: int,
    streams: int,
    seed: int,
    max_after: int,
    target: float | None,
) -> Delays:
    out = Delays(name, change_at, target)
    started = time.perf_counter()
    for s in range(streams):
        rng = np.random.default_rng([seed, s])
        calls = clean_calls(rng, change_at + max_after)
        if metric == "words_per_turn":
            calls["words_per_turn"][change_at:] *= 1.2
        else:
            calls["grounded"][change_at:] = rng.random(max_after) < 0.80
        mon = DriftMonitor("bench-agent", 1)
        found = None
        for i, row in enumerate(rows_of(calls)):
            for alarm in mon.update(row):
                if i >= change_at and alarm.metric == metric and alarm.direction == direction:
                    found = i - change_at + 1
                elif i < change_at:
                    out.false_before += 1
                mon.acknowledge(alarm.metric)
            if found is not None:
                break
        if found is None:
            out.missed += 1
        else:
            out.delays.append(found)
    out.seconds = time.perf_counter() - started
    return out


@dataclass
class FalseAlarms:
    streams: int
    calls: int  # monitored calls (after the first reference window)
    alarms: int
    by_detector: dict[str, int]
    update_seconds: float
    updates: int
    seconds: float


def run_clean(streams: int, calls: int, seed: int) -> FalseAlarms:
    started = time.perf_counter()
    by: dict[str, int] = dict.fromkeys(SHARES, 0)
    alarms = updates = 0
    update_s = 0.0
    for s in range(streams):
        rng = np.random.default_rng([seed, 10_000 + s])
        rows = rows_of(clean_calls(rng, REFERENCE_SIZE + calls))
        mon = DriftMonitor("bench-agent", 1)
        t0 = time.perf_counter()
        for row in rows:
            for alarm in mon.update(row):
                alarms += 1
                key = f"{alarm.metric}.{alarm.detector}"
                by[key if alarm.detector == "window" else f"{key}.{alarm.direction}"] += 1
                mon.acknowledge(alarm.metric)
        update_s += time.perf_counter() - t0
        updates += len(rows)
        if (s + 1) % max(1, streams // 10) == 0:
            say(f"clean streams {s + 1}/{streams}: {alarms} alarms so far")
    return FalseAlarms(
        streams, streams * calls, alarms, by, update_s, updates, time.perf_counter() - started
    )


def poisson_ci(k: int, level: float = 0.95) -> tuple[float, float]:
    a = (1 - level) / 2
    low = 0.0 if k == 0 else float(chi2.ppf(a, 2 * k) / 2)
    return low, float(chi2.ppf(1 - a, 2 * k + 2) / 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=20261207)
    parser.add_argument("--streams", type=int, default=200, help="streams per change scenario")
    parser.add_argument("--change-at", type=int, default=3000, help="settled change point")
    parser.add_argument("--max-after", type=int, default=3000, help="calls watched after it")
    parser.add_argument("--clean-streams", type=int, default=200)
    parser.add_argument("--clean-calls", type=int, default=10_000, help="monitored, per stream")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args()

    young = REFERENCE_SIZE + 300
    scenarios = [
        ("words per turn +20%", "words_per_turn", "up", 150.0),
        ("grounded share 90% -> 80%", "grounded", "down", 250.0),
    ]
    changes: list[Delays] = []
    for i, (name, metric, direction, target) in enumerate(scenarios):
        for j, at in enumerate((args.change_at, young)):
            say(f"{name}, change after {at} calls: {args.streams} streams")
            changes.append(
                run_change(
                    name,
                    metric,
                    direction,
                    at,
                    args.streams,
                    args.seed + 10 * i + j,
                    args.max_after,
                    target if at == args.change_at else None,
                )
            )
    say(f"clean: {args.clean_streams} streams x {args.clean_calls} monitored calls")
    clean = run_clean(args.clean_streams, args.clean_calls, args.seed + 100)

    rows = []
    for d in changes:
        arr = np.array(d.delays)
        median = float(np.median(arr)) if len(arr) else float("nan")
        p90 = float(np.percentile(arr, 90)) if len(arr) else float("nan")
        target = f"median <= {d.target:g}: {met(median <= d.target)}" if d.target else "-"
        rows.append(
            [
                d.name,
                d.change_at,
                len(d.delays) + d.missed,
                f"{len(d.delays) / max(1, len(d.delays) + d.missed):.1%}",
                f"{median:.0f}",
                f"{p90:.0f}",
                target,
            ]
        )
    delay_table = table(
        [
            "shift",
            "change after call",
            "streams",
            f"alarmed within {args.max_after}",
            "delay (calls): median",
            "p90",
            "target",
        ],
        rows,
    )
    k, n = clean.alarms, clean.calls
    low, high = poisson_ci(k)
    per10k = 1e4 * k / n
    fa_table = table(
        ["clean calls (monitored)", "streams", "false alarms", "per 10k calls", "95% CI", "target"],
        [
            [
                f"{n:,}",
                clean.streams,
                k,
                f"{per10k:.2f}",
                f"[{1e4 * low / n:.2f}, {1e4 * high / n:.2f}]",
                f"<= {1e4 * FALSE_ALARMS_PER_CALL:g}: {met(per10k <= 1e4 * FALSE_ALARMS_PER_CALL)}"
                f" (CI upper {met(1e4 * high / n <= 1e4 * FALSE_ALARMS_PER_CALL)})",
            ]
        ],
    )
    det_rows = []
    for key, share in SHARES.items():
        c = clean.by_detector.get(key, 0)
        lo, hi = poisson_ci(c)
        det_rows.append(
            [
                key,
                f"{share * 1e4 * FALSE_ALARMS_PER_CALL:.2f}",
                c,
                f"{1e4 * c / n:.2f}",
                f"[{1e4 * lo / n:.2f}, {1e4 * hi / n:.2f}]",
            ]
        )
    det_table = table(["detector", "budget per 10k", "false alarms", "per 10k", "95% CI"], det_rows)
    info = machine_info()
    us = 1e6 * clean.update_seconds / max(1, clean.updates)
    body = f"""`bench/drift_signal.py` (seed {args.seed}), {len(METRICS)} metrics and
{len(SHARES)} detectors on every stream; delays are calls from the first shifted call to the
first alarm on that metric in that direction, over {args.streams} streams per row.

{delay_table}

{fa_table}

Per detector (the budget is its share of 1 per 10,000 calls):

{det_table}

{clean.updates:,} clean `DriftMonitor.update` calls at {us:.1f} us each (threshold
calibrations included, {clean.seconds:.0f} s in all) on {info["cpus"]} x {info["cpu_model"]},
load average {info["loadavg_at_start"]} at start, {info["date"]}.
"""
    print(body)
    write_json(
        args.json,
        {
            "args": vars(args),
            "machine": info,
            "changes": [d.__dict__ for d in changes],
            "clean": clean.__dict__,
            "false_alarms_per_10k": per10k,
            "false_alarms_per_10k_ci": [1e4 * low / n, 1e4 * high / n],
            "report": body,
        },
    )


if __name__ == "__main__":
    main()
