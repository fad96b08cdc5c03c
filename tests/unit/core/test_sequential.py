"""The mSPRT guard decision: breaches on real harm, never on improvement or noise-free ties,
and keeps its family-wise alpha."""

from __future__ import annotations

import math
import random

import pytest

from core.prompts.sequential import (
    DEFAULT_GUARDS,
    ArmStats,
    always_valid_halfwidth,
    compare,
    evaluate_guards,
    guard_alphas,
    msprt_log_lr,
)

SCORE = next(g for g in DEFAULT_GUARDS if g.name == "score")


def _arm(mean: float, sd: float, n: int, seed: int) -> ArmStats:
    rng = random.Random(seed)
    return ArmStats.from_values(rng.gauss(mean, sd) for _ in range(n))


def test_alpha_is_split_across_guards_and_sums_to_the_family_alpha() -> None:
    alphas = guard_alphas(DEFAULT_GUARDS, 0.01)
    assert math.isclose(sum(alphas.values()), 0.01)
    assert alphas["score"] == pytest.approx(0.005)


def test_a_ten_point_drop_breaches_and_names_the_guard() -> None:
    report = evaluate_guards({"score": _arm(60, 15, 80, 1)}, {"score": _arm(70, 15, 1500, 2)})
    assert report.verdict == "breach"
    assert report.breached == ("score",)
    assert "quality score" in report.reason
    result = report.result("score")
    assert result is not None and result.ci_low is not None and result.ci_low > 0


def test_an_improvement_never_breaches_however_large() -> None:
    report = evaluate_guards({"score": _arm(90, 15, 500, 3)}, {"score": _arm(60, 15, 500, 4)})
    assert report.verdict == "ok"


def test_too_few_calls_is_insufficient_not_a_verdict() -> None:
    report = evaluate_guards({"score": _arm(10, 15, 5, 5)}, {"score": _arm(90, 15, 500, 6)})
    assert report.verdict == "insufficient"
    assert "per arm needed" in report.reason


def test_identical_constant_arms_do_not_divide_by_zero() -> None:
    same = ArmStats(n=100, mean=1.0, var=0.0)
    report = evaluate_guards({"completion": same}, {"completion": same})
    assert report.verdict == "ok"


def test_a_rate_guard_catches_tool_failures_from_zero_events() -> None:
    canary = ArmStats.from_values([1.0] * 20 + [0.0] * 30)
    control = ArmStats.from_values([0.0] * 400)
    report = evaluate_guards({"tool_failure": canary}, {"tool_failure": control})
    assert report.breached == ("tool_failure",)


def test_running_sums_match_values_and_the_lr_grows_with_evidence() -> None:
    values = [55.0, 70.0, 62.5, 80.0]
    direct = ArmStats.from_values(values)
    summed = ArmStats.from_sums(len(values), sum(values), sum(v * v for v in values))
    assert summed.mean == pytest.approx(direct.mean)
    assert summed.var == pytest.approx(direct.var)
    assert msprt_log_lr(5.0, 1.0, 8.0) > msprt_log_lr(5.0, 4.0, 8.0)
    assert always_valid_halfwidth(1.0, 8.0, 0.05) > 1.96  # wider than a fixed-n interval


def test_compare_reads_better_and_worse_in_the_metrics_own_direction() -> None:
    latency = next(g for g in DEFAULT_GUARDS if g.name == "latency_ms")
    fast, slow = _arm(700, 100, 300, 7), _arm(1200, 100, 300, 8)
    assert compare(fast, slow, latency).verdict == "better"
    assert compare(slow, fast, latency).verdict == "worse"
    assert compare(_arm(70, 15, 300, 9), _arm(70, 15, 300, 10), SCORE).verdict in (
        "no difference yet",
    )
