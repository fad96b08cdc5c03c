"""Sticky caller assignment: the split matches the weights and a growing canary keeps its
callers."""

from __future__ import annotations

import pytest

from core.pii.phone import caller_hash
from core.prompts.assignment import Variant, assign, bucket, choose

# Callers as the edge keys them: keyed hashes of 10,000 distinct phone numbers.
CALLERS = [caller_hash("test-secret-key", f"+1415{i:07d}") for i in range(10_000)]
EXPERIMENT = "experiment-42"
CANARY, CONTROL = 7, 3


def _split(weight: float) -> dict[str, int]:
    variants = (Variant(CANARY, weight), Variant(CONTROL, 1 - weight))
    return {c: assign(EXPERIMENT, c, variants).version for c in CALLERS}


@pytest.mark.parametrize("weight", [0.05, 0.25, 0.5, 0.9])
def test_ten_thousand_callers_split_within_one_point_of_the_weight(weight: float) -> None:
    share = sum(v == CANARY for v in _split(weight).values()) / len(CALLERS)
    assert abs(share - weight) < 0.01, share


def test_no_caller_changes_variant_when_the_canary_weight_grows() -> None:
    previous = _split(0.0)
    assert set(previous.values()) == {CONTROL}
    for weight in (0.05, 0.25, 0.5, 1.0):
        current = _split(weight)
        moved_back = [c for c in CALLERS if previous[c] == CANARY and current[c] != CANARY]
        assert moved_back == [], f"{len(moved_back)} canary callers left at weight {weight}"
        previous = current
    assert set(previous.values()) == {CANARY}


def test_assignment_is_sticky_per_caller_and_independent_across_experiments() -> None:
    variants = (Variant(CANARY, 0.5), Variant(CONTROL, 0.5))
    first = [assign(EXPERIMENT, c, variants).version for c in CALLERS[:2000]]
    again = [assign(EXPERIMENT, c, variants).version for c in CALLERS[:2000]]
    other = [assign("experiment-43", c, variants).version for c in CALLERS[:2000]]
    assert first == again
    agreement = sum(a == b for a, b in zip(first, other, strict=True)) / len(first)
    assert 0.45 < agreement < 0.55  # a new experiment reshuffles callers


def test_buckets_are_in_the_unit_interval_and_weights_are_normalized() -> None:
    points = [bucket(EXPERIMENT, c) for c in CALLERS]
    assert min(points) >= 0.0 and max(points) < 1.0
    three = (Variant(1, 2.0), Variant(2, 1.0), Variant(3, 1.0))
    assert choose(three, 0.49).version == 1
    assert choose(three, 0.51).version == 2
    assert choose(three, 0.99).version == 3
    assert choose((Variant(1, 0.0), Variant(2, 0.0)), 0.3).version == 2
