"""Redaction measured on the frozen labelled transcripts (a copy of bench/data's set).

The recall floor and the hard-negative budget are what bench/README.md reports; a change to
core/pii that loses recall on a pattern type or redacts order numbers and prices fails here.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from core.pii.redact import find_pii
from evals.pii_redaction import PATTERN_TYPES, TYPES, load_labelled, score

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "pii_transcripts.jsonl"
FROZEN_SHA256 = "20e3bcb199cdc3c554cb8f7ef47442b02336d2008857155761cbeb56ac13fbea"
RECALL_FLOOR = 0.95
ADDRESS_AND_BANK_FLOOR = 0.9
HARD_NEGATIVE_BUDGET = 2  # of 84 order numbers, prices, times and codes


def _detect(text: str, context: str) -> list[tuple[int, int, str]]:
    return [(f.start, f.end, f.kind) for f in find_pii(text, context=context)]


@pytest.fixture(scope="module")
def measured():  # type: ignore[no-untyped-def]
    return score(load_labelled(FIXTURE), _detect)


def test_labelled_set_is_the_frozen_one() -> None:
    assert hashlib.sha256(FIXTURE.read_bytes()).hexdigest() == FROZEN_SHA256


def test_the_set_has_enough_labelled_spans_of_every_type(measured) -> None:  # type: ignore[no-untyped-def]
    assert sum(measured.labelled.values()) >= 150
    assert all(measured.labelled.get(t, 0) >= 10 for t in TYPES)


@pytest.mark.parametrize("kind", PATTERN_TYPES)
def test_recall_on_pattern_types_meets_the_floor(measured, kind: str) -> None:  # type: ignore[no-untyped-def]
    missed = [m for m in measured.missed if m[1] == kind]
    assert measured.recall(kind) >= RECALL_FLOOR, missed


@pytest.mark.parametrize("kind", ["ADDR", "BANK"])
def test_recall_on_addresses_and_bank_accounts(measured, kind: str) -> None:  # type: ignore[no-untyped-def]
    missed = [m for m in measured.missed if m[1] == kind]
    assert measured.recall(kind) >= ADDRESS_AND_BANK_FLOOR, missed


def test_hard_negatives_stay_within_budget(measured) -> None:  # type: ignore[no-untyped-def]
    hit = [f for f in measured.false_positives if f[1] == "NEG"]
    assert measured.negatives == 84
    assert measured.negatives_hit <= HARD_NEGATIVE_BUDGET, hit
