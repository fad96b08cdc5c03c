"""Drift detectors for one (agent, prompt version) stream of per-call metrics.

Pure code: no clock, no randomness, no I/O. ``DriftMonitor.update`` takes one call's metrics
and returns the alarms it raised; ``state()`` is a JSON-able dict (what a workflow stores and
the API shows) and ``DriftMonitor.from_state`` restores it exactly, so a restored monitor
raises the same alarms on the same later calls. ``bench/drift_signal.py`` drives this same
class to measure detection delays and the false-alarm rate.

Metrics (``METRICS``), each optional per call (None or absent: the call does not count):

* ``quality`` (0-100 scorecard score, continuous): watched for a fall.
* ``grounded`` (bool: every claim of the call was grounded): watched for a fall in the share.
* ``words_per_turn`` (the call's mean words per agent turn, continuous): a rise and a fall
  both matter (rambling, or clipped answers).
* ``tool_failed`` (bool: a tool call of this call failed): watched for a rise.
* ``context_latency_ms`` (context-fetch latency, continuous, heavy-tailed): watched for a
  rise on ``log(1 + ms)``.
* ``stale_hit`` (bool: the call used knowledge flagged stale): watched for a rise.

Detectors, per metric and direction:

* ``cusum`` on a continuous metric: ``S = max(0, S + z - k)`` on the value standardised by the
  reference mean and sd (``z`` capped at ``Z_CAP`` on the side that feeds ``S``, so one wild
  call cannot alarm alone), ``k = MEAN_SHIFT_SD / 2``: designed for a 0.4 sd shift.
* ``cusum`` on a Bernoulli metric: the log-likelihood-ratio CUSUM for the bad-outcome rate
  ``p0 -> p1 = min(2 p0, (1 + p0) / 2)`` (the bad rate doubling), ``p0`` from the reference.
* ``window``: every ``window_size`` calls, the window against the reference: Welch's t on a
  continuous metric (two-sided where both directions matter), Fisher's exact test (one-sided)
  on a Bernoulli one, each at ``alpha = share * budget * window_size * CALIBRATION_MARGIN``.

The false-alarm budget: ``FALSE_ALARMS_PER_CALL`` (1 per 10,000 clean calls) for the whole
monitor with every detector on, split by ``SHARES`` (a Bonferroni split: the rates add up).
Each threshold is solved for its share (times ``CALIBRATION_MARGIN``, 0.8: a margin for
non-normal data) from the detector's in-control run length with the
reference's own estimation error integrated out (``core/monitoring/drift_calibration.py``).
That error is what makes a 200-call reference expensive (the mean CUSUM's h is 41 at 200
calls, 22.0 with a known mean and sd), so the reference keeps growing: calls are added in
blocks of ``block_size`` once they are a full block old (a shift is normally caught within a
block, so the reference does not learn it), and each time the reference has doubled, up to
``MAX_REFERENCE`` calls, the detectors move to it with a recalibrated threshold (an "epoch").
An alarm discards the blocks not yet added.

Alarms latch: a detector that alarmed raises nothing more and stops accumulating until
``acknowledge`` (which zeroes it; ``rebaseline=True`` also drops the reference so the metric
learns its new normal from the next calls).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

from core.monitoring.drift_calibration import (
    bernoulli_cusum_threshold,
    llr_steps,
    mean_cusum_threshold,
)

Direction = Literal["up", "down"]
Kind = Literal["mean", "rate"]

FALSE_ALARMS_PER_CALL = 1e-4
MEAN_SHIFT_SD = 0.4
K_MEAN = MEAN_SHIFT_SD / 2
Z_CAP = 4.0
REFERENCE_SIZE = 200
WINDOW_SIZE = 250
BLOCK_SIZE = 250
MAX_REFERENCE = 6400
STATE_SCHEMA = 1
# Reference sizes at which thresholds are computed; a reference uses the largest one <= n.
EPOCH_SIZES = (100, 200, 400, 800, 1600, 3200, 6400)
# p0 is rounded to this relative grid before calibrating (so thresholds can be cached).
P0_GRID = 0.02

# Thresholds are solved for this fraction of each detector's share: the calibration assumes
# normal values (exact Bernoulli ones) and ignores the epoch switches, and the first measured
# run at the full budget came out at 0.93 per 10,000 calls (95% CI 0.80-1.07) with three of
# the four mean CUSUMs 20-40% over their shares. See docs/monitoring.md and bench/README.md.
CALIBRATION_MARGIN = 0.8

# Mean-CUSUM thresholds for k = 0.2 at a 0.8e-5 rate per call (a 0.10 share, with the margin),
# per reference size: ``mean_cusum_threshold(0.2, 0.8e-5, n)`` (100-cell Brook-Evans chain,
# 12 x 12 quadrature over the reference's mean and sd), computed once and kept here.
MEAN_CUSUM_RATE = 0.10 * FALSE_ALARMS_PER_CALL * CALIBRATION_MARGIN
MEAN_CUSUM_H: dict[int, float] = {
    200: 40.8819,
    400: 28.0050,
    800: 24.4753,
    1600: 23.1086,
    3200: 22.5012,
    6400: 22.2160,
}


@dataclass(frozen=True)
class MetricSpec:
    name: str
    kind: Kind
    directions: tuple[Direction, ...]
    # Share of FALSE_ALARMS_PER_CALL for each direction's CUSUM, and for the window test.
    cusum_share: float
    window_share: float
    log: bool = False  # watch log(1 + x)
    low: float | None = None
    high: float | None = None
    bad_when: bool = True  # rate metrics: which value is the bad outcome

    @property
    def watched(self) -> str:
        return "both" if len(self.directions) == 2 else self.directions[0]


METRICS: dict[str, MetricSpec] = {
    m.name: m
    for m in (
        MetricSpec("quality", "mean", ("down",), 0.10, 0.03, low=0.0, high=100.0),
        MetricSpec("grounded", "rate", ("down",), 0.20, 0.03, bad_when=False),
        MetricSpec("words_per_turn", "mean", ("up", "down"), 0.10, 0.04, low=0.0),
        MetricSpec("tool_failed", "rate", ("up",), 0.12, 0.03),
        MetricSpec("context_latency_ms", "mean", ("up",), 0.10, 0.03, log=True, low=0.0),
        MetricSpec("stale_hit", "rate", ("up",), 0.09, 0.03),
    )
}
SHARES: dict[str, float] = {
    f"{m.name}.cusum.{d}": m.cusum_share for m in METRICS.values() for d in m.directions
} | {f"{m.name}.window": m.window_share for m in METRICS.values()}


@dataclass(frozen=True)
class DriftAlarm:
    metric: str
    direction: Direction
    detector: Literal["cusum", "window"]
    statistic: float
    threshold: float
    calls_since_change: int  # CUSUM: calls since it last left zero; window: its length
    baseline: float  # reference mean (share for a rate metric), in the metric's own units
    recent: float  # the same over the calls since the change estimate / the window
    observation: int  # this metric's observation count when the alarm was raised
    reference_calls: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _acc() -> dict[str, float]:
    return {"n": 0, "mean": 0.0, "m2": 0.0, "bad": 0}


def _add(acc: dict[str, float], x: float) -> None:
    acc["n"] += 1
    d = x - acc["mean"]
    acc["mean"] += d / acc["n"]
    acc["m2"] += d * (x - acc["mean"])
    acc["bad"] += x  # rate metrics add 0/1; unused for means


def _merge(acc: dict[str, float], other: dict[str, float]) -> None:
    n1, n2 = acc["n"], other["n"]
    if n2 == 0:
        return
    n = n1 + n2
    d = other["mean"] - acc["mean"]
    acc["mean"] += d * n2 / n
    acc["m2"] += other["m2"] + d * d * n1 * n2 / n
    acc["n"] = n
    acc["bad"] += other["bad"]


def _epoch_n(n: float) -> int:
    return max(s for s in EPOCH_SIZES if s <= n)


def _mean_h(rate: float, n: int) -> float:
    if math.isclose(rate, MEAN_CUSUM_RATE, rel_tol=1e-9) and n in MEAN_CUSUM_H:
        return MEAN_CUSUM_H[n]
    return mean_cusum_threshold(K_MEAN, rate, n)


class _Metric:
    """One metric's reference, epoch, detectors and window (all plain floats in a dict)."""

    def __init__(self, spec: MetricSpec, s: dict[str, Any]) -> None:
        self.spec = spec
        self.s = s

    @staticmethod
    def fresh(spec: MetricSpec) -> dict[str, Any]:
        return {
            "observations": 0,
            "reference": _acc(),
            "held": _acc(),
            "pending": _acc(),
            "epoch": None,
            "cusum": {d: _cusum() for d in spec.directions},
            "window": _acc() | {"alarmed": False},
        }

    # -- value conversions -------------------------------------------------------------------
    def back(self, x: float) -> float:
        """A mean on the watched scale in the metric's units (a share as named, for rates)."""
        if self.spec.kind == "rate":
            return 1.0 - x if not self.spec.bad_when else x
        return math.expm1(x) if self.spec.log else x

    # -- the epoch ---------------------------------------------------------------------------
    def start_epoch(self, budget: float) -> None:
        ref, spec = self.s["reference"], self.spec
        n_cal = _epoch_n(ref["n"])
        rate = spec.cusum_share * budget * CALIBRATION_MARGIN
        if spec.kind == "mean":
            sd = math.sqrt(ref["m2"] / (ref["n"] - 1)) if ref["n"] > 1 else 0.0
            epoch = {
                "n": ref["n"],
                "mean": ref["mean"],
                "sd": max(sd, 1e-9 * max(1.0, abs(ref["mean"]))),
                "h": _mean_h(rate, n_cal),
            }
        else:
            raw = (ref["bad"] + 0.5) / (ref["n"] + 1)
            p0 = math.exp(round(math.log(raw) / P0_GRID) * P0_GRID)
            p0 = min(p0, 0.999)
            p1 = min(2.0 * p0, (1.0 + p0) / 2.0)
            up, down = llr_steps(p0, p1)
            epoch = {
                "n": ref["n"],
                "mean": ref["bad"] / ref["n"],
                "p0": p0,
                "p1": p1,
                "up": up,
                "down": down,
                "h": bernoulli_cusum_threshold(round(p0, 12), round(p1, 12), rate, n_cal),
            }
        self.s["epoch"] = epoch

    def reset_detectors(self) -> None:
        self.s["cusum"] = {d: _cusum() for d in self.spec.directions}
        self.s["window"] = _acc() | {"alarmed": False}

    # -- one observation ---------------------------------------------------------------------
    def update(
        self, x: float, budget: float, cfg: Mapping[str, int], call_no: int
    ) -> list[DriftAlarm]:
        s = self.s
        s["observations"] += 1
        if s["epoch"] is None:
            _add(s["reference"], x)
            if s["reference"]["n"] >= cfg["reference_size"]:
                self.start_epoch(budget)
            return []
        alarms = self._cusums(x)
        alarms += self._window(x, budget, cfg["window_size"])
        if alarms:
            s["held"], s["pending"] = _acc(), _acc()
        elif not self.latched():
            self._grow(x, budget, cfg["block_size"])
        return alarms

    def latched(self) -> bool:
        return self.s["window"]["alarmed"] or any(c["alarmed"] for c in self.s["cusum"].values())

    def _grow(self, x: float, budget: float, block: int) -> None:
        s = self.s
        if s["reference"]["n"] >= MAX_REFERENCE:
            return
        _add(s["pending"], x)
        if s["pending"]["n"] < block:
            return
        _merge(s["reference"], s["held"])
        s["held"], s["pending"] = s["pending"], _acc()
        if s["reference"]["n"] >= min(2 * s["epoch"]["n"], MAX_REFERENCE):
            self.start_epoch(budget)

    def _cusums(self, x: float) -> list[DriftAlarm]:
        e, spec = self.s["epoch"], self.spec
        out: list[DriftAlarm] = []
        if spec.kind == "mean":
            z = (x - e["mean"]) / e["sd"]
            for d, c in self.s["cusum"].items():
                if c["alarmed"]:
                    continue
                step = min(z, Z_CAP) - K_MEAN if d == "up" else -max(z, -Z_CAP) - K_MEAN
                if self._step(c, step, x, e["h"]):
                    out.append(self._alarm(d, "cusum", c["s"], e["h"], c["run"], c["run_sum"]))
        else:
            ((d, c),) = self.s["cusum"].items()
            if not c["alarmed"]:
                step = e["up"] if x else -e["down"]
                if self._step(c, step, x, e["h"]):
                    out.append(self._alarm(d, "cusum", c["s"], e["h"], c["run"], c["run_sum"]))
        return out

    @staticmethod
    def _step(c: dict[str, Any], step: float, x: float, h: float) -> bool:
        v = c["s"] + step
        if v <= 0.0:
            c["s"], c["run"], c["run_sum"] = 0.0, 0, 0.0
            return False
        c["s"] = v
        c["run"] += 1
        c["run_sum"] += x
        if v >= h:
            c["alarmed"] = True
            return True
        return False

    def _alarm(
        self,
        d: Direction,
        det: Literal["cusum", "window"],
        stat: float,
        thr: float,
        run: int,
        total: float,
    ) -> DriftAlarm:
        e = self.s["epoch"]
        return DriftAlarm(
            metric=self.spec.name,
            direction=d,
            detector=det,
            statistic=stat,
            threshold=thr,
            calls_since_change=int(run),
            baseline=self.back(e["mean"]),
            recent=self.back(total / run) if run else float("nan"),
            observation=int(self.s["observations"]),
            reference_calls=int(e["n"]),
        )

    def _window(self, x: float, budget: float, size: int) -> list[DriftAlarm]:
        w = self.s["window"]
        if w["alarmed"]:
            return []
        _add(w, x)
        if w["n"] < size:
            return []
        # scipy.stats costs ~45 MB of imports: loaded where a window test first runs, so the
        # API, which reads detector state only, never pays it.
        from scipy.stats import hypergeom
        from scipy.stats import t as student_t

        alpha = self.spec.window_share * budget * size * CALIBRATION_MARGIN
        e, spec = self.s["epoch"], self.spec
        n, mean, total = int(w["n"]), w["mean"], w["mean"] * w["n"]
        self.s["window"] = _acc() | {"alarmed": False}
        if spec.kind == "mean":
            var_w = w["m2"] / (n - 1)
            var_r = e["sd"] ** 2
            se2 = var_w / n + var_r / e["n"]
            t = (mean - e["mean"]) / math.sqrt(se2) if se2 > 0 else 0.0
            df = se2**2 / ((var_w / n) ** 2 / (n - 1) + (var_r / e["n"]) ** 2 / (e["n"] - 1))
            d: Direction = "up" if t > 0 else "down"
            if len(spec.directions) == 2:
                p = 2.0 * float(student_t.sf(abs(t), df))
            elif d in spec.directions:
                p = float(student_t.sf(abs(t), df))
            else:
                return []
            stat, thr = abs(t), float(student_t.isf(alpha / len(spec.directions), df))
        else:
            bad_w, bad_r = round(w["bad"]), round(e["mean"] * e["n"])
            total_n = int(e["n"]) + n
            p = float(hypergeom.sf(bad_w - 1, total_n, bad_r + bad_w, n))
            d = spec.directions[0]
            stat, thr = -math.log10(max(p, 1e-300)), -math.log10(alpha)
        if p >= alpha:
            return []
        self.s["window"]["alarmed"] = True
        return [self._alarm(d, "window", stat, thr, n, total)]


def _cusum() -> dict[str, Any]:
    return {"s": 0.0, "run": 0, "run_sum": 0.0, "alarmed": False}


def _value(spec: MetricSpec, raw: object) -> float:
    """The watched value of one call's metric, or ValueError naming the metric."""
    name = spec.name
    if spec.kind == "rate":
        if isinstance(raw, bool) or (isinstance(raw, int) and raw in (0, 1)):
            return 1.0 if bool(raw) is spec.bad_when else 0.0
        raise ValueError(f"{name}: expected a bool (or 0/1), got {raw!r}")
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise ValueError(f"{name}: expected a number, got {type(raw).__name__} {raw!r}")
    x = float(raw)
    if not math.isfinite(x):
        raise ValueError(f"{name}: expected a finite number, got {raw!r}")
    if spec.low is not None and x < spec.low:
        raise ValueError(f"{name}: {x!r} is below {spec.low:g}")
    if spec.high is not None and x > spec.high:
        raise ValueError(f"{name}: {x!r} is above {spec.high:g}")
    return math.log1p(x) if spec.log else x


class DriftMonitor:
    """Every detector for one (agent, prompt version) stream; see the module docstring."""

    def __init__(
        self,
        agent_id: str,
        prompt_version: int | str,
        *,
        metrics: tuple[str, ...] | None = None,
        reference_size: int = REFERENCE_SIZE,
        window_size: int = WINDOW_SIZE,
        block_size: int = BLOCK_SIZE,
        baseline: Mapping[str, Mapping[str, float]] | None = None,
    ) -> None:
        names = tuple(METRICS) if metrics is None else metrics
        unknown = [m for m in names if m not in METRICS]
        if unknown:
            raise ValueError(f"unknown metric(s): {', '.join(unknown)}")
        if reference_size < EPOCH_SIZES[0] or window_size < 20 or block_size < 1:
            raise ValueError(f"reference_size must be >= {EPOCH_SIZES[0]}, window_size >= 20")
        self.agent_id = agent_id
        self.prompt_version = prompt_version
        self.config = {
            "reference_size": reference_size,
            "window_size": window_size,
            "block_size": block_size,
        }
        self.budget = FALSE_ALARMS_PER_CALL
        self.calls = 0
        self.metrics = {m: _Metric(METRICS[m], _Metric.fresh(METRICS[m])) for m in names}
        for name, ref in (baseline or {}).items():
            if name not in self.metrics:
                raise ValueError(f"baseline for an unwatched metric: {name}")
            self._set_reference(name, ref)

    def _set_reference(self, name: str, ref: Mapping[str, float]) -> None:
        m = self.metrics[name]
        acc = _acc() | {k: ref[k] for k in ("n", "mean", "m2", "bad") if k in ref}
        if acc["n"] < EPOCH_SIZES[0]:
            raise ValueError(f"{name}: a baseline needs >= {EPOCH_SIZES[0]} calls")
        m.s["reference"] = acc
        m.start_epoch(self.budget)

    def baseline(self) -> dict[str, dict[str, float]]:
        """Each metric's reference (for the next version's monitor: ``baseline=``)."""
        return {n: dict(m.s["reference"]) for n, m in self.metrics.items() if m.s["epoch"]}

    def update(self, call_metrics: Mapping[str, object]) -> list[DriftAlarm]:
        if not isinstance(call_metrics, Mapping):
            raise ValueError(f"call metrics must be a mapping, got {type(call_metrics).__name__}")
        values: list[tuple[_Metric, float]] = []
        for name, raw in call_metrics.items():
            spec = METRICS.get(name)
            if spec is None:
                raise ValueError(f"unknown metric: {name!r}")
            if raw is None or name not in self.metrics:
                continue
            values.append((self.metrics[name], _value(spec, raw)))
        self.calls += 1
        alarms: list[DriftAlarm] = []
        for metric, x in values:
            alarms += metric.update(x, self.budget, self.config, self.calls)
        return alarms

    def acknowledge(self, metric: str | None = None, *, rebaseline: bool = False) -> None:
        """Clear latched alarms (of one metric or all) and zero their detectors; with
        ``rebaseline`` the reference is dropped and rebuilt from the next calls."""
        for name, m in self.metrics.items():
            if metric is not None and name != metric:
                continue
            if rebaseline:
                m.s = _Metric.fresh(m.spec) | {"observations": m.s["observations"]}
                continue
            for c in m.s["cusum"].values():
                if c["alarmed"]:
                    c.update(_cusum())
            if m.s["window"]["alarmed"]:
                m.s["window"] = _acc() | {"alarmed": False}

    def state(self) -> dict[str, Any]:
        return {
            "schema": STATE_SCHEMA,
            "agent_id": self.agent_id,
            "prompt_version": self.prompt_version,
            "config": dict(self.config),
            "budget_per_call": self.budget,
            "calls": self.calls,
            "metrics": {n: _copy(m.s) for n, m in self.metrics.items()},
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> DriftMonitor:
        if state.get("schema") != STATE_SCHEMA:
            raise ValueError(f"unsupported drift state schema: {state.get('schema')!r}")
        mon = cls(
            state["agent_id"],
            state["prompt_version"],
            metrics=tuple(state["metrics"]),
            reference_size=int(state["config"]["reference_size"]),
            window_size=int(state["config"]["window_size"]),
            block_size=int(state["config"]["block_size"]),
        )
        mon.calls = int(state["calls"])
        for name, s in state["metrics"].items():
            mon.metrics[name].s = _copy(s)
        return mon

    def summary(self) -> dict[str, Any]:
        """A readable view: per metric its phase, reference, detectors and how close each is
        to its threshold (``statistic / threshold``; 1 alarms)."""
        out: dict[str, Any] = {}
        for name, m in self.metrics.items():
            e = m.s["epoch"]
            if e is None:
                out[name] = {
                    "phase": "reference",
                    "reference_calls": m.s["reference"]["n"],
                    "needed": self.config["reference_size"],
                }
                continue
            out[name] = {
                "phase": "alarmed" if m.latched() else "watching",
                "baseline": m.back(e["mean"]),
                "reference_calls": e["n"],
                "cusum": {
                    d: {
                        "statistic": c["s"],
                        "threshold": e["h"],
                        "fraction": c["s"] / e["h"],
                        "alarmed": c["alarmed"],
                        "calls_since_change": c["run"],
                    }
                    for d, c in m.s["cusum"].items()
                },
                "window": {"calls": m.s["window"]["n"], "of": self.config["window_size"]},
            }
        return out


def _copy(s: Any) -> Any:
    if isinstance(s, dict):
        return {k: _copy(v) for k, v in s.items()}
    return s
