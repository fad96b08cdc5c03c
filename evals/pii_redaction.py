"""Scoring PII redaction against labelled call transcripts.

The labelled set is JSON lines, one call each: ``{"id": ..., "turns": [[role, text], ...]}``
where every labelled span is written inline as ``[[TYPE|text]]`` (types below; ``NEG`` marks a
hard negative that must survive: an order number, a price, a time). A detector is any function
from a turn's text (and the turn before it, the question it may answer) to the spans it would
redact, with a kind for each.

* A labelled span is **caught** when every letter and digit in it lies inside some detected
  span (of any kind: what matters is that it does not survive). Recall is per labelled type.
* A detected span is **correct** when it overlaps a labelled span of the type its kind maps to.
  Precision is per detected type.
* A hard negative is **hit** when any detected span overlaps it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "KIND_TO_TYPE",
    "LabelledTurn",
    "Score",
    "load_labelled",
    "score",
]

TYPES = ("CARD", "NATID", "BANK", "EMAIL", "PHONE", "PHONEW", "DOB", "ADDR")
PATTERN_TYPES = ("CARD", "NATID", "EMAIL", "PHONE", "PHONEW", "DOB")
"""Types held to the recall floor; addresses and bank accounts are reported but not held."""

KIND_TO_TYPE: dict[str, tuple[str, ...]] = {
    "card": ("CARD",),
    "ssn": ("NATID",),
    "national_id": ("NATID",),
    "iban": ("BANK",),
    "bank_account": ("BANK",),
    "email": ("EMAIL",),
    "phone": ("PHONE", "PHONEW"),
    "dob": ("DOB",),
    "address": ("ADDR",),
}
"""Which labelled types a detected kind counts as correct for."""

_LABEL = re.compile(r"\[\[([A-Z]+)\|(.*?)\]\]")

Detector = Callable[[str, str], Iterable[tuple[int, int, str]]]
"""(turn text, the turn before it) -> detected (start, end, kind) spans in the turn text."""


@dataclass(frozen=True)
class LabelledTurn:
    call_id: str
    role: str
    text: str
    spans: tuple[tuple[int, int, str], ...]


def parse_turn(call_id: str, role: str, marked: str) -> LabelledTurn:
    pieces: list[str] = []
    spans: list[tuple[int, int, str]] = []
    pos = 0
    length = 0
    for m in _LABEL.finditer(marked):
        before = marked[pos : m.start()]
        pieces.append(before)
        length += len(before)
        spans.append((length, length + len(m[2]), m[1]))
        pieces.append(m[2])
        length += len(m[2])
        pos = m.end()
    pieces.append(marked[pos:])
    return LabelledTurn(call_id, role, "".join(pieces), tuple(spans))


def load_labelled(path: Path) -> list[LabelledTurn]:
    turns: list[LabelledTurn] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        call = json.loads(line)
        turns.extend(parse_turn(call["id"], role, text) for role, text in call["turns"])
    return turns


@dataclass
class Score:
    labelled: dict[str, int] = field(default_factory=dict)
    caught: dict[str, int] = field(default_factory=dict)
    detected: dict[str, int] = field(default_factory=dict)
    correct: dict[str, int] = field(default_factory=dict)
    negatives: int = 0
    negatives_hit: int = 0
    missed: list[tuple[str, str, str]] = field(default_factory=list)
    false_positives: list[tuple[str, str, str]] = field(default_factory=list)

    def recall(self, kind: str) -> float:
        return self.caught.get(kind, 0) / self.labelled[kind] if self.labelled.get(kind) else 1.0

    def precision(self, kind: str) -> float:
        return self.correct.get(kind, 0) / self.detected[kind] if self.detected.get(kind) else 1.0

    def as_dict(self) -> dict[str, object]:
        return {
            "recall": {t: round(self.recall(t), 4) for t in TYPES},
            "labelled": self.labelled,
            "caught": self.caught,
            "precision": {t: round(self.precision(t), 4) for t in TYPES if self.detected.get(t)},
            "detected": self.detected,
            "correct": self.correct,
            "hard_negatives": self.negatives,
            "hard_negatives_redacted": self.negatives_hit,
            "missed": [list(m) for m in self.missed],
            "false_positives": [list(f) for f in self.false_positives],
        }


def _covered(text: str, start: int, end: int, found: list[tuple[int, int, str]]) -> bool:
    return all(any(s <= i < e for s, e, _ in found) for i in range(start, end) if text[i].isalnum())


def score(turns: list[LabelledTurn], detect: Detector) -> Score:
    result = Score()
    previous: LabelledTurn | None = None
    for turn in turns:
        context = previous.text if previous is not None and previous.call_id == turn.call_id else ""
        previous = turn
        found = sorted(detect(turn.text, context))
        for start, end, kind in turn.spans:
            if kind == "NEG":
                result.negatives += 1
                if any(s < end and start < e for s, e, _ in found):
                    result.negatives_hit += 1
                    result.false_positives.append((turn.call_id, "NEG", turn.text[start:end]))
                continue
            result.labelled[kind] = result.labelled.get(kind, 0) + 1
            if _covered(turn.text, start, end, found):
                result.caught[kind] = result.caught.get(kind, 0) + 1
            else:
                result.missed.append((turn.call_id, kind, turn.text[start:end]))
        for s, e, kind in found:
            targets = KIND_TO_TYPE.get(kind, ())
            # Precision is reported under the first type the kind maps to (phone: PHONE).
            shown = targets[0] if targets else kind
            result.detected[shown] = result.detected.get(shown, 0) + 1
            if any(t in targets and start < e and s < end for start, end, t in turn.spans):
                result.correct[shown] = result.correct.get(shown, 0) + 1
            elif not any(start < e and s < end for start, end, _ in turn.spans):
                result.false_positives.append((turn.call_id, kind, turn.text[s:e]))
    return result
