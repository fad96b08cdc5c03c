"""Signal quality of the canary guard: how fast a bad prompt is rolled back, how rarely a good
one is.

A seeded simulation of call streams on the 0-100 quality score (per-call SD 15, clipped to the
scale). Calls arrive one at a time; each goes to the canary with the current step's weight
(5% -> 25% -> 50% -> 100%, the default plan); every ``--look-every`` calls the guard looks,
calling ``core.prompts.sequential.evaluate_guards`` with the default guards and alpha, exactly
as the rollout's check activity does. A step ends on a look that tested the guards (verdict
``ok``) once it has its minimum canary calls (holds are time in production; here the call count
stands for them); the 100% step compares with the control calls of the earlier steps.
Scenarios:

* the candidate is ``--delta`` points worse: canary calls until the rollback (target: median
  <= 200);
* no difference: the share of rollouts wrongly rolled back (target <= 1%), with its exact
  (Clopper-Pearson) 95% confidence interval.

Run: ``.venv/bin/python -m bench.rollout_signal [--write-readme]``.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import numpy as np
from scipy.stats import beta

from bench.common import machine_info, met, say, table
from bench.prompt_readme import write_subsection
from core.prompts.schemas import DEFAULT_STEPS
from core.prompts.sequential import DEFAULT_ALPHA, DEFAULT_MIN_SAMPLES, ArmStats, evaluate_guards

MEAN = 70.0
SD = 15.0
PLAN = [(s.weight, s.min_canary_calls) for s in DEFAULT_STEPS]


@dataclass
class Outcome:
    rolled_back: bool
    canary_calls: int
    looks: int


@dataclass
class Scenario:
    name: str
    delta: float
    outcomes: list[Outcome]
    seconds: float
    sd_realized: float

    @property
    def rollbacks(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.rolled_back]


def simulate(rng: np.random.Generator, delta: float, look_every: int) -> tuple[Outcome, float]:
    sums = {True: [0, 0.0, 0.0], False: [0, 0.0, 0.0]}
    canary_calls = looks = 0
    for weight, min_calls in PLAN:
        step_calls = 0
        passed = False
        while not passed:
            is_canary = rng.random(look_every) < weight
            scores = rng.normal(MEAN, SD, look_every) - delta * is_canary
            scores = np.clip(scores, 0.0, 100.0)
            for arm in (True, False):
                xs = scores[is_canary == arm]
                s = sums[arm]
                s[0] += len(xs)
                s[1] += float(xs.sum())
                s[2] += float((xs * xs).sum())
            new = int(is_canary.sum())
            step_calls += new
            canary_calls += new
            looks += 1
            report = evaluate_guards(
                {"score": ArmStats.from_sums(*sums[True])},  # type: ignore[arg-type]
                {"score": ArmStats.from_sums(*sums[False])},  # type: ignore[arg-type]
            )
            if report.verdict == "breach":
                return Outcome(True, canary_calls, looks), _sd(sums)
            # Like the workflow: enough canary calls, and this very look tested the guards.
            passed = step_calls >= min_calls and report.verdict == "ok"
    return Outcome(False, canary_calls, looks), _sd(sums)


def _sd(sums: dict[bool, list[float]]) -> float:
    n, total, sq = sums[False]
    return float(np.sqrt(max(sq - total * total / n, 0.0) / (n - 1))) if n > 1 else float("nan")


def run(name: str, delta: float, rollouts: int, seed: int, look_every: int) -> Scenario:
    rng = np.random.default_rng(seed)
    started = time.perf_counter()
    outcomes, sds = [], []
    for _ in range(rollouts):
        outcome, sd = simulate(rng, delta, look_every)
        outcomes.append(outcome)
        sds.append(sd)
    return Scenario(name, delta, outcomes, time.perf_counter() - started, float(np.nanmean(sds)))


def clopper_pearson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    a = (1 - level) / 2
    low = 0.0 if k == 0 else float(beta.ppf(a, k, n - k + 1))
    high = 1.0 if k == n else float(beta.ppf(1 - a, k + 1, n - k))
    return low, high


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=20261124)
    parser.add_argument("--degraded-rollouts", type=int, default=1000)
    parser.add_argument("--null-rollouts", type=int, default=2000)
    parser.add_argument("--deltas", type=float, nargs="+", default=[10.0, 5.0])
    parser.add_argument("--look-every", type=int, default=10, help="calls between guard looks")
    parser.add_argument(
        "--dense-look-every",
        type=int,
        default=0,
        help="also run the no-difference case with looks this often (e.g. 1)",
    )
    parser.add_argument("--write-readme", action="store_true")
    args = parser.parse_args()

    say(f"plan {PLAN}, mean {MEAN}, sd {SD}, looks every {args.look_every} calls")
    degraded = [
        run(
            f"candidate {d:g} points worse",
            d,
            args.degraded_rollouts,
            args.seed + i,
            args.look_every,
        )
        for i, d in enumerate(args.deltas)
    ]
    nulls = [run("no difference", 0.0, args.null_rollouts, args.seed + 100, args.look_every)]
    if args.dense_look_every:
        nulls.append(
            run(
                f"no difference, a look every {args.dense_look_every} call(s)",
                0.0,
                args.null_rollouts // 2,
                args.seed + 200,
                args.dense_look_every,
            )
        )

    rows = []
    for sc in degraded:
        calls = np.array([o.canary_calls for o in sc.rollbacks])
        detected = len(calls) / len(sc.outcomes)
        median = float(np.median(calls)) if len(calls) else float("nan")
        target = f"median <= 200: {met(median <= 200)}" if sc.delta >= 10 else "(sensitivity)"
        rows.append(
            [
                sc.name,
                len(sc.outcomes),
                f"{detected:.1%}",
                f"{median:.0f}",
                f"{np.percentile(calls, 90):.0f}" if len(calls) else "-",
                f"{calls.max():.0f}" if len(calls) else "-",
                target,
            ]
        )
    detect_table = table(
        [
            "scenario",
            "rollouts",
            "rolled back",
            "canary calls to rollback: median",
            "p90",
            "max",
            "target",
        ],
        rows,
    )
    null_rows = []
    for sc in nulls:
        k, n = len(sc.rollbacks), len(sc.outcomes)
        low, high = clopper_pearson(k, n)
        null_rows.append(
            [
                sc.name,
                n,
                k,
                f"{k / n:.2%}",
                f"[{low:.2%}, {high:.2%}]",
                f"<= 1%: {met(k / n <= 0.01)} (CI upper {met(high <= 0.01)})",
            ]
        )
    null_table = table(
        ["scenario", "rollouts", "false rollbacks", "rate", "95% CI (Clopper-Pearson)", "target"],
        null_rows,
    )
    looks = sum(o.looks for sc in [*degraded, *nulls] for o in sc.outcomes)
    seconds = sum(sc.seconds for sc in [*degraded, *nulls])
    info = machine_info()
    plan = ", ".join(f"{w:.0%} (min {m} canary calls)" for w, m in PLAN)
    body = f"""`bench/rollout_signal.py` (seed {args.seed}): simulated quality scores
N({MEAN:g}, {SD:g}) clipped to 0-100 (realized control SD {nulls[0].sd_realized:.1f}); the
candidate's calls are shifted down by the scenario's delta. Plan: the default steps {plan}; a
guard look every {args.look_every} calls; the default guards (family alpha {DEFAULT_ALPHA},
half of it to the quality score; at least {DEFAULT_MIN_SAMPLES} calls per arm before a look
counts; a step ends only on a look that tested, never on `insufficient`). Test: mixture SPRT
(normal mixture, tau 8 points on the score), always valid under repeated looks; each arm's
variance is the larger of its own and the pooled estimate.

{detect_table}

{null_table}

{looks:,} guard decisions in {seconds:.1f} s ({1e6 * seconds / max(looks, 1):.0f} us each, the
production function) on {info["cpus"]} x {info["cpu_model"]}, shared with other jobs at the
time (load average {info["loadavg_at_start"]}), {info["date"]}.
"""
    print(body)
    if args.write_readme:
        write_subsection("Signal quality (bench/rollout_signal.py)", body)
        say("bench/README.md updated (Prompt rollouts section)")


if __name__ == "__main__":
    main()
