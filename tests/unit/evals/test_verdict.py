"""Regression verdicts: one-sided Fisher exact test, never a pass without the power to see a
95% -> 80% fall."""

from __future__ import annotations

import pytest
from scipy.stats import fisher_exact

from evals.verdict import (
    EXIT_FAILED,
    EXIT_INCONCLUSIVE,
    EXIT_PASS,
    EXIT_USAGE,
    Tally,
    Verdict,
    compare,
    p_value_fewer,
    p_value_more,
    power,
    runs_needed,
    suite_verdict,
)


def test_clear_regression_at_80_runs_each() -> None:
    result = compare("book", Tally(56, 80), Tally(76, 80))  # 70% against 95%
    assert result.verdict is Verdict.REGRESSED
    assert result.p_regressed < 0.001
    assert result.flaky  # the baseline failed 4 of its runs


def test_five_runs_each_is_inconclusive_even_when_identical() -> None:
    result = compare("book", Tally(5, 5), Tally(5, 5))
    assert result.verdict is Verdict.INCONCLUSIVE
    assert result.power < 0.05
    assert "power" in result.reason
    assert not result.flaky
    # a fall to 4/5 is not significant either, and is not a pass
    assert compare("book", Tally(4, 5), Tally(5, 5)).verdict is Verdict.INCONCLUSIVE


def test_identical_with_enough_runs_passes() -> None:
    result = compare("book", Tally(76, 80), Tally(76, 80))
    assert result.verdict is Verdict.PASS
    assert result.power >= 0.8
    assert compare("book", Tally(80, 80), Tally(80, 80)).verdict is Verdict.PASS


def test_no_baseline_runs_is_inconclusive() -> None:
    assert compare("book", Tally(80, 80), Tally(0, 0)).verdict is Verdict.INCONCLUSIVE


def test_improvement() -> None:
    assert compare("book", Tally(78, 80), Tally(50, 80)).verdict is Verdict.IMPROVED


def test_a_drastic_fall_is_a_regression_even_with_few_runs() -> None:
    assert compare("book", Tally(0, 5), Tally(5, 5)).verdict is Verdict.REGRESSED


@pytest.mark.parametrize(("c", "nc", "b", "nb"), [(7, 10, 10, 10), (30, 37, 50, 52), (3, 3, 1, 9)])
def test_p_values_are_fishers(c: int, nc: int, b: int, nb: int) -> None:
    table = [[c, nc - c], [b, nb - b]]
    less = fisher_exact(table, alternative="less").pvalue
    greater = fisher_exact(table, alternative="greater").pvalue
    assert p_value_fewer(Tally(c, nc), Tally(b, nb)) == pytest.approx(less, rel=1e-9)
    assert p_value_more(Tally(c, nc), Tally(b, nb)) == pytest.approx(greater, rel=1e-9)


def test_runs_needed_for_95_to_80() -> None:
    n = runs_needed(0.95, 0.80)
    assert 55 <= n <= 80
    assert power(n) >= 0.8 > power(n - 1)
    assert runs_needed(0.95, 0.85) > n > runs_needed(1.0, 0.80)


def test_flaky_needs_mixed_baseline() -> None:
    assert compare("s", Tally(40, 80), Tally(41, 80)).flaky
    assert not compare("s", Tally(0, 80), Tally(0, 80)).flaky


def test_suite_aggregation_and_exit_codes() -> None:
    reg = compare("a", Tally(56, 80), Tally(76, 80))
    inc = compare("b", Tally(5, 5), Tally(5, 5))
    imp = compare("c", Tally(78, 80), Tally(50, 80))
    ok = compare("d", Tally(76, 80), Tally(76, 80))
    assert suite_verdict([ok, inc, reg, imp]).verdict is Verdict.REGRESSED
    assert suite_verdict([ok, inc, imp]).verdict is Verdict.INCONCLUSIVE
    assert suite_verdict([ok, imp]).verdict is Verdict.IMPROVED
    assert suite_verdict([ok]).verdict is Verdict.PASS
    assert suite_verdict([]).verdict is Verdict.INCONCLUSIVE
    assert suite_verdict([ok, imp]).exit_code == EXIT_PASS == 0
    assert suite_verdict([reg]).exit_code == EXIT_FAILED == 1
    assert suite_verdict([inc]).exit_code == EXIT_INCONCLUSIVE == 3
    assert EXIT_USAGE == 2
    assert suite_verdict([ok, inc, reg]).counts()[Verdict.REGRESSED] == 1


def test_tally_rejects_impossible_counts() -> None:
    with pytest.raises(ValueError):
        Tally(6, 5)
    assert Tally.of([True, False, True]) == Tally(2, 3)
