"""How many runs an eval suite needs before its regression verdict means anything.

For the verdict rules of ``evals.verdict`` (one-sided Fisher exact test at alpha 0.05, a pass
only with 80% power against the minimum effect), prints:

* runs per arm (candidate and baseline alike) needed for several falls in pass rate, by the
  exact power calculation (``evals.verdict.runs_needed``), next to the normal approximation;
* for 95% -> 80% at a few run counts: the exact power, the exact false-alarm rate when nothing
  changed (both arms at 95%), and the verdict for a candidate that passes exactly as often as
  the baseline, and for one that passes 80% of its runs against a 95% baseline.

Pure computation, no stack: it runs in a few seconds.
Run: ``.venv/bin/python -m bench.eval_statistics [--json] [--write-readme]``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import binom, norm

from bench.common import table
from evals.verdict import (
    DEFAULT_ALPHA,
    DEFAULT_POWER,
    MinimumEffect,
    Tally,
    compare,
    power,
    runs_needed,
)
from evals.verdict import _rejects as rejects

README = Path(__file__).resolve().parent / "README.md"
SECTION = "## Eval verdict statistics"
PAIRS = [(0.95, 0.80), (0.95, 0.85), (0.95, 0.90), (0.99, 0.90), (0.90, 0.70), (1.00, 0.80)]
RUN_COUNTS = [5, 10, 20, 30, 50, 67, 100]


def normal_runs(p0: float, p1: float, alpha: float, target: float) -> int:
    """The usual normal-approximation sample size (pooled variance under the null)."""
    z_a, z_b = norm.ppf(1 - alpha), norm.ppf(target)
    pbar = (p0 + p1) / 2
    spread = z_a * np.sqrt(2 * pbar * (1 - pbar)) + z_b * np.sqrt(p0 * (1 - p0) + p1 * (1 - p1))
    return int(np.ceil((spread / (p0 - p1)) ** 2))


def false_alarm_rate(n: int, p: float, alpha: float) -> float:
    """Exact chance the regression test fires when both arms truly pass at rate ``p``."""
    probs = binom.pmf(np.arange(n + 1), n, p)
    return float(probs @ rejects(n, n, alpha).astype(float) @ probs)


def results(alpha: float, target: float) -> dict[str, Any]:
    started = time.perf_counter()
    needed = [
        {
            "p0": p0,
            "p1": p1,
            "runs_per_arm": runs_needed(p0, p1, alpha, target),
            "normal_approximation": normal_runs(p0, p1, alpha, target),
        }
        for p0, p1 in PAIRS
    ]
    effect = MinimumEffect(0.95, 0.80)
    small = []
    for n in RUN_COUNTS:
        same = round(0.95 * n)
        worse = round(0.80 * n)
        small.append(
            {
                "runs_per_arm": n,
                "power": power(n, n, effect, alpha),
                "false_alarm_rate": false_alarm_rate(n, 0.95, alpha),
                "identical": f"{same}/{n} vs {same}/{n}",
                "identical_verdict": str(compare("s", Tally(same, n), Tally(same, n)).verdict),
                "fall": f"{worse}/{n} vs {same}/{n}",
                "fall_verdict": str(compare("s", Tally(worse, n), Tally(same, n)).verdict),
            }
        )
    return {
        "alpha": alpha,
        "power_target": target,
        "test": "one-sided Fisher exact",
        "runs_needed": needed,
        "at_95_to_80": small,
        "seconds": round(time.perf_counter() - started, 2),
    }


def render(data: dict[str, Any]) -> str:
    needed = table(
        ["pass rate fall", "runs per arm (exact)", "normal approximation"],
        [
            [f"{r['p0']:.0%} -> {r['p1']:.0%}", r["runs_per_arm"], r["normal_approximation"]]
            for r in data["runs_needed"]
        ],
    )
    small = table(
        [
            "runs per arm",
            "power, 95% -> 80%",
            "false alarms, both 95%",
            "same rate: verdict",
            "fall to 80%: verdict",
        ],
        [
            [
                r["runs_per_arm"],
                f"{r['power']:.1%}",
                f"{r['false_alarm_rate']:.2%}",
                f"{r['identical']}: {r['identical_verdict']}",
                f"{r['fall']}: {r['fall_verdict']}",
            ]
            for r in data["at_95_to_80"]
        ],
    )
    return f"""`bench/eval_statistics.py` (`python -m bench.eval_statistics [--json]`; pure
computation, {data["seconds"]} s). The verdict rules are `evals/verdict.py`'s (see
[docs/evals.md](../docs/evals.md#verdicts-and-exit-codes)): {data["test"]} test at alpha
{data["alpha"]}, and a scenario passes only when that test had {data["power_target"]:.0%} power
to catch the minimum effect (95% -> 80% by default); otherwise it is `inconclusive`. Runs per
arm come from the exact power (every outcome pair the test rejects, weighted by its binomial
probability); an exact test's power is a saw-tooth in n, so the smallest n reaching the target
is given. Fisher's test is conservative, hence more runs than the normal approximation.

{needed}

What the verdict says at 95% -> 80% with fewer runs. "Same rate" is a candidate that passes
exactly as often as a 95% baseline; "fall to 80%" one that passes 80% of its runs. False alarms
are the exact chance of `regressed` when both arms truly pass 95% of runs (below alpha: the
test is conservative).

{small}
"""


def write_readme(body: str, path: Path = README) -> None:
    """Replace (or append) this benchmark's section of bench/README.md."""
    text = path.read_text()
    block = f"{SECTION}\n\n{body.strip()}\n"
    if f"\n{SECTION}\n" in text:
        start = text.index(f"\n{SECTION}\n") + 1
        nxt = text.find("\n## ", start + len(SECTION))
        rest = "" if nxt < 0 else "\n" + text[nxt + 1 :]
        path.write_text(text[:start] + block + rest)
    else:
        path.write_text(text.rstrip("\n") + "\n\n" + block)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--alpha", type=float, default=DEFAULT_ALPHA)
    parser.add_argument("--power", type=float, default=DEFAULT_POWER, help="target power")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument(
        "--write-readme", action="store_true", help="rewrite this section of bench/README.md"
    )
    args = parser.parse_args()
    data = results(args.alpha, args.power)
    if args.json:
        print(json.dumps(data, indent=2))
        return
    body = render(data)
    print(body)
    if args.write_readme:
        write_readme(body)


if __name__ == "__main__":
    main()
