"""Canary-vs-control guard decisions: a mixture sequential probability ratio test (mSPRT).

Pure functions of summary statistics: no clock, no randomness, no I/O. The rollout activity
and the signal-quality benchmark (``bench/rollout_signal.py``) call the same ``evaluate_guards``,
so what the benchmark measures is what production decides. Nothing here may read a database or
the time; callers pass everything in.

Why mSPRT (Johari, Pekelis & Walsh, "Always valid inference", 2017) rather than a
group-sequential design (O'Brien-Fleming / Pocock alpha spending): a rollout looks at its data
at times nobody plans in advance. Checks run every few seconds or minutes during each hold,
traffic arrives at its own pace, operators pause and resume, a worker restart adds looks, and
a step can be extended when data is missing. Alpha-spending boundaries need the information
fraction of every look relative to a planned maximum sample; the mixture likelihood ratio
needs nothing of the kind. Under the null it is a non-negative martingale, so by Ville's
inequality P(it ever exceeds 1/alpha) <= alpha, however many looks are taken and whenever we
stop: the false-rollback rate holds under continuous monitoring.

The statistic, for an estimated harm ``d`` (control minus canary, signed so that positive
means the canary is worse) with variance ``v`` and a normal mixing distribution N(0, tau^2)
over the true effect::

    Lambda = sqrt(v / (v + tau^2)) * exp(tau^2 d^2 / (2 v (v + tau^2)))

A guard breaches when ``Lambda >= 1 / alpha_guard`` and ``d > 0`` (only harm rolls back).
Several guards share the family-wise alpha by a weighted Bonferroni split: the primary quality
score gets half, the secondary guards share the other half, so adding guards never raises the
overall false-rollback rate. The variance is a plug-in (Welch) estimate, which makes the
guarantee approximate at small samples; ``min_samples`` per arm keeps the earliest, noisiest
looks out, and the benchmark measures the realized false-rollback rate.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

Verdict = Literal["ok", "breach", "insufficient"]
Kind = Literal["mean", "rate"]

DEFAULT_ALPHA = 0.01
DEFAULT_MIN_SAMPLES = 20
PRIMARY_ALPHA_SHARE = 0.5


@dataclass(frozen=True)
class ArmStats:
    """n, mean and sample variance of one metric in one arm (canary or control)."""

    n: int = 0
    mean: float = 0.0
    var: float = 0.0

    @classmethod
    def from_values(cls, values: Iterable[float]) -> ArmStats:
        xs = [float(x) for x in values]
        n = len(xs)
        if n == 0:
            return cls()
        mean = math.fsum(xs) / n
        var = math.fsum((x - mean) ** 2 for x in xs) / (n - 1) if n > 1 else 0.0
        return cls(n=n, mean=mean, var=var)

    @classmethod
    def from_sums(cls, n: int, total: float, total_sq: float) -> ArmStats:
        """From running sums (the benchmark keeps these instead of every value)."""
        if n == 0:
            return cls()
        mean = total / n
        var = max(total_sq - n * mean * mean, 0.0) / (n - 1) if n > 1 else 0.0
        return cls(n=n, mean=mean, var=var)


@dataclass(frozen=True)
class Guard:
    """One guard metric. ``tau`` is the mixing scale in the metric's own unit: roughly the size
    of effect worth catching quickly (smaller tau reacts to smaller harms but needs more data
    for large ones)."""

    name: str
    label: str
    higher_is_better: bool
    tau: float
    kind: Kind = "mean"
    primary: bool = False


_NO_DATA = ArmStats()

DEFAULT_GUARDS: tuple[Guard, ...] = (
    Guard("score", "quality score (0-100)", True, tau=8.0, primary=True),
    Guard("completion", "task completion (scorecard part)", True, tau=0.15),
    Guard("escalation", "escalation (scorecard part)", True, tau=0.15),
    Guard("talk_ratio", "talk ratio (scorecard part)", True, tau=0.15),
    Guard("frustration", "caller frustration (scorecard part)", True, tau=0.15),
    Guard("tool_failure", "tool-failure rate", False, tau=0.10, kind="rate"),
    Guard("transferred", "transfer rate", False, tau=0.10, kind="rate"),
    Guard("latency_ms", "turn latency (ms)", False, tau=300.0),
)


@dataclass(frozen=True)
class GuardResult:
    name: str
    label: str
    canary: ArmStats
    control: ArmStats
    harm: float | None  # positive = canary worse, in the metric's unit
    ci_low: float | None  # always-valid CI of the harm
    ci_high: float | None
    log_lr: float | None
    threshold: float  # log(1 / alpha_guard)
    alpha: float
    breached: bool
    tested: bool


@dataclass(frozen=True)
class GuardReport:
    verdict: Verdict
    results: tuple[GuardResult, ...]
    reason: str
    breached: tuple[str, ...] = field(default_factory=tuple)

    def result(self, name: str) -> GuardResult | None:
        return next((r for r in self.results if r.name == name), None)


def guard_alphas(guards: Sequence[Guard], alpha: float) -> dict[str, float]:
    """Weighted Bonferroni: primaries share ``PRIMARY_ALPHA_SHARE`` of alpha, the rest the
    remainder; the shares always sum to ``alpha`` (all of it when one group is empty)."""
    primary = [g for g in guards if g.primary]
    secondary = [g for g in guards if not g.primary]
    if not primary or not secondary:
        return {g.name: alpha / len(guards) for g in guards}
    out = {g.name: alpha * PRIMARY_ALPHA_SHARE / len(primary) for g in primary}
    out.update({g.name: alpha * (1 - PRIMARY_ALPHA_SHARE) / len(secondary) for g in secondary})
    return out


def msprt_log_lr(harm: float, var: float, tau: float) -> float:
    """log Lambda of the normal-mixture SPRT for an estimate ``harm`` with variance ``var``."""
    tau2 = tau * tau
    return 0.5 * math.log(var / (var + tau2)) + tau2 * harm * harm / (2 * var * (var + tau2))


def always_valid_halfwidth(var: float, tau: float, alpha: float) -> float:
    """Half-width of the confidence sequence that inverts the mSPRT at level ``alpha``: valid
    simultaneously over every look, unlike a fixed-sample interval."""
    tau2 = tau * tau
    bound = math.log(1 / alpha) + 0.5 * math.log((var + tau2) / var)
    return math.sqrt(2 * var * (var + tau2) / tau2 * bound)


def _rate_var(stats: ArmStats) -> float:
    # Jeffreys-smoothed proportion: an arm with no events yet still has a usable variance.
    p = (stats.mean * stats.n + 0.5) / (stats.n + 1)
    return p * (1 - p)


def difference_variance(canary: ArmStats, control: ArmStats, guard: Guard) -> float:
    """Variance of (control mean - canary mean), Welch style, with a floor so identical
    constant arms do not divide by zero."""
    if guard.kind == "rate":
        vc, vt = _rate_var(canary), _rate_var(control)
    else:
        floor = (guard.tau * 1e-3) ** 2
        # A small canary's own variance is a noisy estimate, and underestimating it is what
        # turns noise into a false rollback; each arm uses the larger of its own and the
        # pooled variance (conservative under the null, nearly free when the arms agree).
        dof = canary.n + control.n - 2
        pooled = ((canary.n - 1) * canary.var + (control.n - 1) * control.var) / max(dof, 1)
        vc = max(canary.var, pooled, floor)
        vt = max(control.var, pooled, floor)
    return vc / canary.n + vt / control.n


def evaluate_guard(
    guard: Guard, canary: ArmStats, control: ArmStats, alpha: float, min_samples: int
) -> GuardResult:
    threshold = math.log(1 / alpha)
    if canary.n < min_samples or control.n < min_samples:
        return GuardResult(
            guard.name, guard.label, canary, control, None, None, None, None,
            threshold, alpha, breached=False, tested=False,
        )  # fmt: skip
    sign = 1.0 if guard.higher_is_better else -1.0
    harm = sign * (control.mean - canary.mean)
    var = difference_variance(canary, control, guard)
    log_lr = msprt_log_lr(harm, var, guard.tau)
    half = always_valid_halfwidth(var, guard.tau, alpha)
    return GuardResult(
        name=guard.name,
        label=guard.label,
        canary=canary,
        control=control,
        harm=harm,
        ci_low=harm - half,
        ci_high=harm + half,
        log_lr=log_lr,
        threshold=threshold,
        alpha=alpha,
        breached=log_lr >= threshold and harm > 0,
        tested=True,
    )


def evaluate_guards(
    canary: Mapping[str, ArmStats],
    control: Mapping[str, ArmStats],
    *,
    guards: Sequence[Guard] = DEFAULT_GUARDS,
    alpha: float = DEFAULT_ALPHA,
    min_samples: int = DEFAULT_MIN_SAMPLES,
) -> GuardReport:
    """One look: compare every guard; ``breach`` if any crosses its boundary in the harmful
    direction, ``insufficient`` if none could be tested yet, else ``ok``."""
    alphas = guard_alphas(guards, alpha)
    results = tuple(
        evaluate_guard(
            g,
            canary.get(g.name, _NO_DATA),
            control.get(g.name, _NO_DATA),
            alphas[g.name],
            min_samples,
        )
        for g in guards
    )
    breached = tuple(r.name for r in results if r.breached)
    if breached:
        worst = [r for r in results if r.breached]
        reason = "; ".join(
            f"{r.label}: canary {r.canary.mean:.3g} vs control {r.control.mean:.3g} "
            f"(harm {r.harm:.3g}, always-valid CI [{r.ci_low:.3g}, {r.ci_high:.3g}], "
            f"log LR {r.log_lr:.2f} >= {r.threshold:.2f})"
            for r in worst
        )
        return GuardReport("breach", results, f"guard breached: {reason}", breached)
    if not any(r.tested for r in results):
        n_c = max((r.canary.n for r in results), default=0)
        n_t = max((r.control.n for r in results), default=0)
        return GuardReport(
            "insufficient",
            results,
            f"not enough calls to compare yet (canary {n_c}, control {n_t}; "
            f"{min_samples} per arm needed)",
        )
    tested = sum(r.tested for r in results)
    return GuardReport("ok", results, f"{tested} guard(s) tested, none breached")


# -- experiment read-outs ------------------------------------------------------------------

ExperimentVerdict = Literal["better", "worse", "no difference yet", "insufficient data"]


@dataclass(frozen=True)
class Comparison:
    """A variant against control on one metric, with an always-valid CI of the difference
    (variant minus control, in the metric's unit; positive = higher)."""

    diff: float | None
    ci_low: float | None
    ci_high: float | None
    verdict: ExperimentVerdict


def compare(
    variant: ArmStats,
    control: ArmStats,
    guard: Guard,
    alpha: float = 0.05,
    min_samples: int = DEFAULT_MIN_SAMPLES,
) -> Comparison:
    """Two-sided: 'better' / 'worse' once the always-valid CI excludes zero (safe to read on a
    dashboard that refreshes every few seconds)."""
    if variant.n < min_samples or control.n < min_samples:
        return Comparison(None, None, None, "insufficient data")
    diff = variant.mean - control.mean
    var = difference_variance(variant, control, guard)
    half = always_valid_halfwidth(var, guard.tau, alpha)
    low, high = diff - half, diff + half
    verdict: ExperimentVerdict = "no difference yet"
    if low > 0 or high < 0:
        improved = (low > 0) == guard.higher_is_better
        verdict = "better" if improved else "worse"
    return Comparison(diff, low, high, verdict)


def mean_ci95(stats: ArmStats) -> tuple[float | None, float | None]:
    """Fixed-sample 95% normal interval of one arm's mean (descriptive only)."""
    if stats.n < 2:
        return None, None
    half = 1.959964 * math.sqrt(stats.var / stats.n)
    return stats.mean - half, stats.mean + half
