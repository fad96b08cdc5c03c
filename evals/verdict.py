"""Regression verdicts: did a candidate (a new prompt, model or tool setup) pass fewer runs of a
scenario than the baseline, and were there enough runs to tell?

Each scenario is run ``n`` times against the candidate and against the baseline; a run passes
or fails. Per scenario the counts are compared with a **one-sided Fisher exact test** (the
conditional test on the 2x2 table; the p-value is a hypergeometric tail, the same number as
``scipy.stats.fisher_exact`` with ``alternative="less"`` or ``"greater"``) at ``alpha`` (0.05):

* ``regressed``: the candidate passes significantly less often than the baseline;
* ``improved``: it passes significantly more often;
* ``pass``: neither, **and** the test had at least ``power`` (80%) to detect the minimum effect
  of interest (by default a fall from 95% to 80%) with these run counts;
* ``inconclusive``: neither, and the runs were too few for that power. An underpowered
  comparison is never reported as a pass.

Fisher's test is conservative (its real false-alarm rate is below ``alpha``), which a release
gate wants: a false "regressed" blocks a good change. The power is computed exactly, by summing
the binomial probabilities of every outcome the test rejects, not from a normal approximation.

A scenario is ``flaky`` when its baseline outcomes are mixed (0 < pass rate < 1): the verdict
still holds, but the scenario (or the agent) is nondeterministic and needs more runs.

The suite's verdict: any ``regressed`` -> ``regressed``; else any ``inconclusive`` ->
``inconclusive``; else any ``improved`` -> ``improved``; else ``pass``. Exit codes for a
command line: :data:`EXIT_PASS` 0 (pass or improved), :data:`EXIT_FAILED` 1 (regressed, or runs
failed outright), :data:`EXIT_USAGE` 2, :data:`EXIT_INCONCLUSIVE` 3.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

import numpy as np
from scipy.special import gammaln

__all__ = [
    "DEFAULT_ALPHA",
    "DEFAULT_POWER",
    "EXIT_FAILED",
    "EXIT_INCONCLUSIVE",
    "EXIT_PASS",
    "EXIT_USAGE",
    "MIN_EFFECT",
    "MinimumEffect",
    "ScenarioVerdict",
    "SuiteVerdict",
    "Tally",
    "Verdict",
    "compare",
    "exit_code",
    "p_value_fewer",
    "p_value_more",
    "power",
    "runs_needed",
    "suite_verdict",
]

EXIT_PASS = 0
"""Every scenario passed (or improved) with enough runs to tell."""
EXIT_FAILED = 1
"""A scenario regressed, or the runs failed outright."""
EXIT_USAGE = 2
"""Bad arguments or an invalid suite (nothing was run)."""
EXIT_INCONCLUSIVE = 3
"""No regression found, but some scenario had too few runs to rule one out."""

DEFAULT_ALPHA = 0.05
DEFAULT_POWER = 0.80
_TOLERANCE = 1e-9  # p-values equal to alpha up to float error count as significant


class Verdict(StrEnum):
    """A scenario's (or a suite's) verdict."""

    PASS = "pass"
    REGRESSED = "regressed"
    IMPROVED = "improved"
    INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True)
class MinimumEffect:
    """The smallest regression worth catching: the pass rate falling from ``p0`` to ``p1``."""

    p0: float = 0.95
    p1: float = 0.80

    def __post_init__(self) -> None:
        if not 0.0 <= self.p1 < self.p0 <= 1.0:
            raise ValueError(f"need 0 <= p1 < p0 <= 1, got p0={self.p0}, p1={self.p1}")


MIN_EFFECT = MinimumEffect()
"""The default minimum effect of interest: 95% -> 80%."""


@dataclass(frozen=True)
class Tally:
    """Runs of one scenario on one side: ``passed`` of ``runs``."""

    passed: int
    runs: int

    def __post_init__(self) -> None:
        if self.runs < 0 or not 0 <= self.passed <= self.runs:
            raise ValueError(f"need 0 <= passed <= runs, got {self.passed}/{self.runs}")

    @property
    def rate(self) -> float:
        """The pass rate; NaN without runs."""
        return self.passed / self.runs if self.runs else float("nan")

    @property
    def mixed(self) -> bool:
        """Some runs passed and some failed."""
        return 0 < self.passed < self.runs

    @classmethod
    def of(cls, outcomes: Iterable[bool]) -> Tally:
        """Count a sequence of pass/fail outcomes."""
        results = [bool(o) for o in outcomes]
        return cls(sum(results), len(results))


@dataclass(frozen=True)
class ScenarioVerdict:
    """One scenario's comparison, with the numbers behind it."""

    scenario: str
    verdict: Verdict
    candidate: Tally
    baseline: Tally
    p_regressed: float
    """One-sided Fisher p-value for "the candidate passes less often"."""
    p_improved: float
    """One-sided Fisher p-value for "the candidate passes more often"."""
    power: float
    """Power of the regression test at these run counts against the minimum effect."""
    flaky: bool
    """The baseline's outcomes are mixed (0 < pass rate < 1)."""
    reason: str
    """One sentence for a report."""


@dataclass(frozen=True)
class SuiteVerdict:
    """The suite's verdict over its scenarios."""

    verdict: Verdict
    scenarios: tuple[ScenarioVerdict, ...]

    @property
    def exit_code(self) -> int:
        return exit_code(self.verdict)

    def counts(self) -> dict[Verdict, int]:
        """How many scenarios got each verdict."""
        out = dict.fromkeys(Verdict, 0)
        for s in self.scenarios:
            out[s.verdict] += 1
        return out


def p_value_fewer(candidate: Tally, baseline: Tally) -> float:
    """One-sided Fisher exact p-value that the candidate passes less often than the baseline.

    With the margins fixed, the candidate's passes follow a hypergeometric law; the p-value is
    P(X <= candidate.passed). Equals ``fisher_exact([[c, n_c - c], [b, n_b - b]], "less")``.
    """
    total = candidate.runs + baseline.runs
    passes = candidate.passed + baseline.passed
    if candidate.runs == 0 or baseline.runs == 0:
        return 1.0
    from scipy.stats import hypergeom  # scipy.stats costs ~45 MB: loaded when a verdict is due

    return float(min(1.0, hypergeom.cdf(candidate.passed, total, passes, candidate.runs)))


def p_value_more(candidate: Tally, baseline: Tally) -> float:
    """One-sided Fisher exact p-value that the candidate passes more often than the baseline."""
    total = candidate.runs + baseline.runs
    passes = candidate.passed + baseline.passed
    if candidate.runs == 0 or baseline.runs == 0:
        return 1.0
    from scipy.stats import hypergeom

    return float(min(1.0, hypergeom.sf(candidate.passed - 1, total, passes, candidate.runs)))


@lru_cache(maxsize=256)
def _rejects(n_candidate: int, n_baseline: int, alpha: float) -> np.ndarray:
    """Boolean matrix [candidate passes, baseline passes]: does the regression test reject?

    For every total of passes t the conditional law of the candidate's passes is
    hypergeometric; its CDF is built once per t from log-binomials (much faster than calling
    ``hypergeom.cdf`` on every cell, and exact to float precision in the lower tail).
    """
    total = n_candidate + n_baseline
    c = np.arange(n_candidate + 1)[None, :]
    t = np.arange(total + 1)[:, None]
    b = t - c
    valid = (b >= 0) & (b <= n_baseline)
    with np.errstate(invalid="ignore"):
        log_pmf = (
            _log_choose(n_candidate, c)
            + _log_choose(n_baseline, np.where(valid, b, 0))
            - _log_choose(total, t)
        )
    cdf = np.cumsum(np.where(valid, np.exp(log_pmf), 0.0), axis=1)  # [t, c]
    cc, bb = np.meshgrid(np.arange(n_candidate + 1), np.arange(n_baseline + 1), indexing="ij")
    rejects: np.ndarray = cdf[cc + bb, cc] <= alpha * (1 + _TOLERANCE)
    return rejects


def _log_choose(n: int | np.ndarray, k: np.ndarray) -> np.ndarray:
    result: np.ndarray = gammaln(n + 1) - gammaln(k + 1) - gammaln(n - k + 1)
    return result


def power(
    n_candidate: int,
    n_baseline: int | None = None,
    effect: MinimumEffect = MIN_EFFECT,
    alpha: float = DEFAULT_ALPHA,
) -> float:
    """Exact power of the one-sided Fisher test to flag a regression from ``effect.p0`` (the
    baseline's true pass rate) to ``effect.p1`` (the candidate's), with these run counts.

    The sum, over every pair of outcomes the test rejects, of their binomial probabilities.
    """
    n_baseline = n_candidate if n_baseline is None else n_baseline
    if n_candidate <= 0 or n_baseline <= 0:
        return 0.0
    rejects = _rejects(n_candidate, n_baseline, alpha)
    from scipy.stats import binom

    pc = binom.pmf(np.arange(n_candidate + 1), n_candidate, effect.p1)
    pb = binom.pmf(np.arange(n_baseline + 1), n_baseline, effect.p0)
    return float(min(1.0, pc @ rejects.astype(float) @ pb))


def _normal_approximation(p0: float, p1: float, alpha: float, target: float) -> float:
    from scipy.stats import norm

    z_a, z_b = norm.ppf(1 - alpha), norm.ppf(target)
    pbar = (p0 + p1) / 2
    spread = z_a * np.sqrt(2 * pbar * (1 - pbar)) + z_b * np.sqrt(p0 * (1 - p0) + p1 * (1 - p1))
    return float((spread / (p0 - p1)) ** 2)


def runs_needed(
    p0: float = 0.95,
    p1: float = 0.80,
    alpha: float = DEFAULT_ALPHA,
    power_target: float = DEFAULT_POWER,
    max_runs: int = 5000,
) -> int:
    """Runs per arm (candidate and baseline alike) for the one-sided Fisher test at ``alpha`` to
    detect a fall in pass rate from ``p0`` to ``p1`` with ``power_target`` power.

    The smallest ``n`` whose exact power (:func:`power`) reaches the target. Exact tests' power
    is a saw-tooth in ``n``, so a few counts just above the answer may dip below the target by
    a point or two. The scan starts at half the normal-approximation answer (below it the power
    is far from the target); 95% -> 90% (about 370 runs) takes a second or two.
    Raises ValueError when ``max_runs`` is not enough.
    """
    effect = MinimumEffect(p0, p1)
    start = max(2, int(_normal_approximation(p0, p1, alpha, power_target) * 0.5))
    for n in range(start, max_runs + 1):
        if power(n, n, effect, alpha) >= power_target:
            return n
    raise ValueError(f"more than {max_runs} runs per arm needed for {p0} -> {p1}")


def compare(
    scenario: str,
    candidate: Tally,
    baseline: Tally,
    effect: MinimumEffect = MIN_EFFECT,
    alpha: float = DEFAULT_ALPHA,
    power_target: float = DEFAULT_POWER,
) -> ScenarioVerdict:
    """The verdict for one scenario: candidate's passes against the baseline's."""
    p_fewer = p_value_fewer(candidate, baseline)
    p_more = p_value_more(candidate, baseline)
    achieved = power(candidate.runs, baseline.runs, effect, alpha)
    counts = f"{candidate.passed}/{candidate.runs} vs baseline {baseline.passed}/{baseline.runs}"
    if p_fewer <= alpha * (1 + _TOLERANCE):
        verdict, reason = Verdict.REGRESSED, f"{counts}: fewer passes (p={p_fewer:.3g})"
    elif p_more <= alpha * (1 + _TOLERANCE):
        verdict, reason = Verdict.IMPROVED, f"{counts}: more passes (p={p_more:.3g})"
    elif achieved < power_target:
        verdict = Verdict.INCONCLUSIVE
        try:
            needed = f"about {runs_needed(effect.p0, effect.p1, alpha, power_target)} runs each"
        except ValueError:
            needed = "more runs than can be run"
        reason = (
            f"{counts}: no significant change, but these runs have {achieved:.0%} power to "
            f"catch {effect.p0:.0%} -> {effect.p1:.0%} (need {power_target:.0%}: {needed})"
        )
    else:
        verdict = Verdict.PASS
        reason = f"{counts}: no significant change ({achieved:.0%} power)"
    return ScenarioVerdict(
        scenario=scenario,
        verdict=verdict,
        candidate=candidate,
        baseline=baseline,
        p_regressed=p_fewer,
        p_improved=p_more,
        power=achieved,
        flaky=baseline.mixed,
        reason=reason,
    )


def suite_verdict(verdicts: Iterable[ScenarioVerdict]) -> SuiteVerdict:
    """Any regressed -> regressed; else any inconclusive -> inconclusive; else any improved ->
    improved; else pass. No verdicts at all is inconclusive: nothing was shown to pass."""
    scenarios = tuple(verdicts)
    if not scenarios:
        return SuiteVerdict(Verdict.INCONCLUSIVE, scenarios)
    found = {s.verdict for s in scenarios}
    for verdict in (Verdict.REGRESSED, Verdict.INCONCLUSIVE, Verdict.IMPROVED):
        if verdict in found:
            return SuiteVerdict(verdict, scenarios)
    return SuiteVerdict(Verdict.PASS, scenarios)


def exit_code(verdict: Verdict) -> int:
    """The command-line exit code for a suite verdict."""
    return {
        Verdict.PASS: EXIT_PASS,
        Verdict.IMPROVED: EXIT_PASS,
        Verdict.REGRESSED: EXIT_FAILED,
        Verdict.INCONCLUSIVE: EXIT_INCONCLUSIVE,
    }[verdict]
