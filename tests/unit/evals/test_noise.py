"""The STT noise model hits its word error rate over a corpus, deterministically, with the
confusions ASR makes."""

from __future__ import annotations

from pathlib import Path

import pytest

from evals.noise import corpus_wer, corrupt, normalize_words, word_error_rate, word_errors

LINES = (
    (Path(__file__).resolve().parents[2] / "fixtures" / "evals" / "caller_lines.txt")
    .read_text()
    .splitlines()
)


@pytest.mark.parametrize("target", [0.05, 0.15, 0.3])
def test_achieved_wer_is_the_target(target: float) -> None:
    pairs = [(line, corrupt(line, target, seed=seed)) for seed in range(5) for line in LINES]
    achieved = corpus_wer(pairs)
    assert abs(achieved - target) <= 0.03, achieved
    assert sum(a != b for a, b in pairs) > len(pairs) * min(1.0, target * 5) * 0.5


def test_deterministic_for_a_seed() -> None:
    line = LINES[0]
    assert corrupt(line, 0.3, seed=7) == corrupt(line, 0.3, seed=7)
    assert len({corrupt(line, 0.3, seed=s) for s in range(10)}) > 3
    assert corrupt(line, 0.0, seed=7) == line


def test_confusions_are_the_asr_kinds() -> None:
    outputs = [corrupt(line, 0.3, seed=s) for s in range(30) for line in LINES]
    words = {w for out in outputs for w in normalize_words(out)}
    joined = "\n".join(outputs)
    assert words & {"fife", "5"}  # five -> fife / 5
    assert words & {"there", "they're", "too", "won", "hour"}  # homophones
    assert any(s in joined for s in (" in to ", "to morrow", "may be", "to day", "all ready"))
    assert any(d in joined for d in ("5551", "55 ", "4155", "5550"))  # digits regrouped


def test_wer_measure() -> None:
    assert word_errors("book a table for four", "book table for 4") == 2
    assert word_errors("a b c", "a x b c") == 1
    assert word_error_rate("Call me at five.", "call me at five") == 0.0
    assert word_error_rate("one two three four", "one two") == 0.5
    assert corpus_wer([("a b", "a"), ("c d", "c d")]) == 0.25
    with pytest.raises(ValueError):
        corrupt("hello", 1.5)
