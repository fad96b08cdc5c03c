"""PII redaction for text derived from calls: transcripts, memories and logs are stored redacted.

Payment cards, national ids (US SSN, UK NI number), IBANs, e-mail addresses and phone numbers
are replaced by placeholders (phones by their masked display form); names and account or order
references are kept because memory needs them. Numbers read out as words ("four one one one ...")
are caught as well. This module must never log, print or otherwise persist its input: it is the
step that makes text safe to store, so the text it receives is not.
"""

from __future__ import annotations

import re
import string
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass

import phonenumbers
from stdnum import iban, luhn
from stdnum.us import ssn

from core.pii.phone import mask_number

__all__ = ["RedactionResult", "redact", "redact_json", "redact_text"]


@dataclass(frozen=True)
class RedactionResult:
    """Redacted text and how many items of each kind were replaced (only kinds that occurred)."""

    text: str
    counts: dict[str, int]


# Overlapping findings are resolved by this order: an IBAN or card contains digit runs that the
# phone matcher or the SSN pattern could also claim, and the more specific finding must win.
_PRIORITY = ("email", "iban", "ssn", "national_id", "card", "phone")
_PLACEHOLDER = {
    "email": "[EMAIL]",
    "iban": "[IBAN]",
    "ssn": "[SSN]",
    "national_id": "[NATIONAL_ID]",
    "card": "[CARD]",
}

# Most patterns start with a digit: the regex engine then skips the (mostly digit-free) prose
# quickly, where a leading look-behind or \b would be tried at every position.

# An address is found from its "@": the local part (at most 64 characters) is searched backwards
# from it and the domain forwards, instead of trying the local-part pattern at every position.
_EMAIL_LOCAL_RE = re.compile(r"[A-Za-z0-9._%+\-]{1,64}\Z")
_EMAIL_DOMAIN_RE = re.compile(r"@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")
# Matches from the check digits; the two country letters before them are in the look-behind.
# Loose on purpose: the candidate may run into the following word, so it is shrunk token by token
# until stdnum accepts it (the mod-97 check is what decides).
_IBAN_RE = re.compile(r"\d(?<=\b[A-Z]{2}\d)\d(?: ?[A-Z0-9]){11,30}\b", re.IGNORECASE)
# 123-45-6789 / 123 45 6789, or nine bare digits (group "bare"). Nine bare digits are only an SSN
# when the caller just said so; otherwise they are as likely an order or tracking number.
_SSN_RE = re.compile(r"\d(?<![\d-]\d)\d\d(?:([- ])\d\d\1\d{4}|(?P<bare>\d{6}))(?![\d-])")
_SSN_CONTEXT_RE = re.compile(r"\b(?:social|ssn|ss#)", re.IGNORECASE)
_SSN_CONTEXT_CHARS = 48
# python-stdnum has no UK National Insurance module, so the HMRC format rules are spelled out:
# no D, F, I, Q, U, V in the prefix, no O as second letter, some prefixes never issued.
_NINO_DIGITS_RE = re.compile(r"\d\d ?\d\d ?\d\d ?[A-D]\b", re.IGNORECASE)
_NINO_PREFIX_RE = re.compile(
    r"(?<!\w)(?!BG|GB|KN|NK|NT|TN|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?", re.IGNORECASE
)
# Digits with single spaces or dashes between them; groups are kept so that an over-long run
# (a card followed by its expiry, two numbers back to back) can be searched on group boundaries.
_DIGIT_RUN_RE = re.compile(r"\d(?<!\w\d)\d*(?:[ -]\d+)*(?!\w)")
_CARD_MIN, _CARD_MAX = 13, 19
# Stretches that could hold a phone number (seven or more digits with light punctuation). The
# phone matcher is by far the slowest detector, so it only sees these, with a little context.
_PHONE_CANDIDATE_RE = re.compile(r"\d(?:[\d \t().\-/]{0,3}\d){6,}")
_PHONE_CONTEXT_CHARS = 8

_DIGIT_WORDS = {
    "zero": "0",
    "oh": "0",
    "o": "0",
    "nought": "0",
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
}
_REPEAT = {"double": 2, "triple": 3}
_WORD_ALT = "|".join(sorted(_DIGIT_WORDS, key=len, reverse=True))
# (?![\w']) keeps "o'clock" and similar contractions out of a digit run.
_TOKEN = rf"(?:(?:double|triple)[ \t-]+)?(?:{_WORD_ALT})(?![\w'])|\d+(?![\w'])"
_SEP = r"(?:[ \t]*[,-][ \t]*|[ \t]+)"
# Runs of two tokens or more: a single token is at most three digits ("triple five"). Both
# patterns run on ASCII-lowercased text, which is much faster than IGNORECASE.
_SPOKEN_RUN_RE = re.compile(rf"(?<![\w'])(?:{_TOKEN})(?:{_SEP}(?:{_TOKEN}))+")
_SPOKEN_TOKEN_RE = re.compile(
    rf"(?:(?P<rep>double|triple)[ \t-]+)?(?P<word>{_WORD_ALT})(?![\w'])|(?P<digits>\d+)"
)
_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
# "one two three" is a list, not a number; four spoken digits is the shortest thing worth reading
# as one (a PIN, the last four of a card).
_MIN_SPOKEN_DIGITS = 4
# "212 triple five 0123": a mix of written and spoken digits counts once it is as long as a
# local phone number.
_MIN_MIXED_DIGITS = 7


@dataclass(frozen=True)
class _Segment:
    work_start: int
    work_end: int
    orig_start: int
    orig_end: int
    atomic: bool  # a spoken token: any overlap maps to the whole original token


class _Working:
    """Text with spoken digits rewritten as digits, plus the map back to the original offsets."""

    def __init__(self, original: str) -> None:
        pieces: list[str] = []
        segments: list[_Segment] = []
        orig_pos = 0
        work_pos = 0

        def add(piece: str, orig_start: int, orig_end: int, atomic: bool) -> None:
            nonlocal work_pos
            pieces.append(piece)
            segments.append(_Segment(work_pos, work_pos + len(piece), orig_start, orig_end, atomic))
            work_pos += len(piece)

        # Same length and offsets as the original, unlike str.lower() on some non-ASCII text.
        lowered = original.lower() if original.isascii() else original.translate(_ASCII_LOWER)
        for run in _SPOKEN_RUN_RE.finditer(lowered):
            tokens = list(_SPOKEN_TOKEN_RE.finditer(lowered, run.start(), run.end()))
            spoken = sum(_REPEAT.get(t["rep"], 1) for t in tokens if t["word"] is not None)
            written = sum(len(t["digits"]) for t in tokens if t["digits"] is not None)
            if spoken < _MIN_SPOKEN_DIGITS and not (
                spoken and spoken + written >= _MIN_MIXED_DIGITS
            ):
                continue
            if run.start() > orig_pos:
                add(original[orig_pos : run.start()], orig_pos, run.start(), False)
            previous: re.Match[str] | None = None
            for token in tokens:
                if previous is not None:
                    between = lowered[previous.end() : token.start()]
                    # A pause marked by a comma, or a written digit group, is a group boundary
                    # the card and phone detectors rely on; plain spaces between words are not.
                    boundary = (
                        "," in between
                        or token["digits"] is not None
                        or previous["digits"] is not None
                    )
                    add(" " if boundary else "", previous.end(), token.start(), True)
                if token["digits"] is not None:
                    rendered = token["digits"]
                else:
                    rendered = _DIGIT_WORDS[token["word"]] * _REPEAT.get(token["rep"], 1)
                add(rendered, token.start(), token.end(), True)
                previous = token
            orig_pos = run.end()

        # Original spans of the rewritten tokens, in order.
        self.runs = [(s.orig_start, s.orig_end) for s in segments if s.atomic]
        self.converted = bool(segments)
        if not self.converted:
            self.text = original
            self._segments: list[_Segment] = []
            self._starts: list[int] = []
            return
        if orig_pos < len(original):
            add(original[orig_pos:], orig_pos, len(original), False)
        self.text = "".join(pieces)
        self._segments = [s for s in segments if s.work_end > s.work_start]
        self._starts = [s.work_start for s in self._segments]

    def to_original(self, start: int, end: int) -> tuple[int, int]:
        if not self.converted:
            return start, end
        first = self._segments[bisect_right(self._starts, start) - 1]
        last = self._segments[bisect_right(self._starts, end - 1) - 1]
        orig_start = (
            first.orig_start if first.atomic else first.orig_start + start - first.work_start
        )
        orig_end = last.orig_end if last.atomic else last.orig_start + end - last.work_start
        return orig_start, orig_end


def _emails(text: str) -> Iterator[tuple[int, int]]:
    at = text.find("@")
    while at != -1:
        local = _EMAIL_LOCAL_RE.search(text, max(0, at - 64), at)
        domain = _EMAIL_DOMAIN_RE.match(text, at)
        if local and domain:
            yield local.start(), domain.end()
        at = text.find("@", at + 1)


def _ibans(text: str) -> Iterator[tuple[int, int]]:
    for m in _IBAN_RE.finditer(text):
        start = m.start() - 2
        parts = text[start : m.end()].split(" ")
        for keep in range(len(parts), 0, -1):
            candidate = " ".join(parts[:keep])
            if iban.is_valid(candidate):
                yield start, start + len(candidate)
                break


def _ssns(text: str) -> Iterator[tuple[int, int]]:
    for m in _SSN_RE.finditer(text):
        if m["bare"] is not None:
            context = text[max(0, m.start() - _SSN_CONTEXT_CHARS) : m.start()]
            if not _SSN_CONTEXT_RE.search(context):
                continue
        if ssn.is_valid(m.group().replace(" ", "").replace("-", "")):
            yield m.start(), m.end()


def _national_ids(text: str) -> Iterator[tuple[int, int]]:
    for m in _NINO_DIGITS_RE.finditer(text):
        for prefix_len in (2, 3):
            start = m.start() - prefix_len
            if start >= 0 and _NINO_PREFIX_RE.fullmatch(text, start, m.start()):
                yield start, m.end()
                break


def _cards(text: str) -> Iterator[tuple[int, int]]:
    for m in _DIGIT_RUN_RE.finditer(text):
        run = m.group()
        digits = run.replace(" ", "").replace("-", "")
        if len(digits) < _CARD_MIN:
            continue
        if len(digits) <= _CARD_MAX and luhn.is_valid(digits):
            yield m.start(), m.end()
        elif " " in run or "-" in run:
            # Written groups mark where a number ends: "4111 1111 1111 1111 12/26" is a card and
            # an expiry. A single unbroken digit string that fails Luhn is some other id.
            yield from _card_in_groups(run, m.start())


def _card_in_groups(run: str, offset: int) -> Iterator[tuple[int, int]]:
    groups = [(g.start(), g.end()) for g in re.finditer(r"\d+", run)]
    lengths = [end - start for start, end in groups]
    taken_until = 0
    for first in range(len(groups)):
        if groups[first][0] < taken_until:
            continue
        # Longest window first, so a 16-digit card wins over a 13-digit slice of it.
        for last in range(len(groups) - 1, first - 1, -1):
            size = sum(lengths[first : last + 1])
            if not _CARD_MIN <= size <= _CARD_MAX or (first == 0 and last == len(groups) - 1):
                continue
            start, end = groups[first][0], groups[last][1]
            if luhn.is_valid(re.sub(r"\D", "", run[start:end])):
                yield offset + start, offset + end
                taken_until = end
                break


def _phones(
    text: str, region: str, claimed: list[tuple[int, int, str, str]]
) -> Iterator[tuple[int, int, str]]:
    for candidate in _PHONE_CANDIDATE_RE.finditer(text):
        # Digits already claimed as a card, IBAN or SSN win over a phone anyway, and the matcher
        # is slowest on exactly those long digit runs.
        if any(s <= candidate.start() and candidate.end() <= e for s, e, _, _ in claimed):
            continue
        # The context lets the matcher see a leading "+" or "(" and reject numbers glued to words.
        offset = max(0, candidate.start() - _PHONE_CONTEXT_CHARS)
        window = text[offset : candidate.end() + _PHONE_CONTEXT_CHARS]
        for m in phonenumbers.PhoneNumberMatcher(window, region):
            e164 = phonenumbers.format_number(m.number, phonenumbers.PhoneNumberFormat.E164)
            yield offset + m.start, offset + m.end, mask_number(e164)


def _find(text: str, region: str) -> list[tuple[int, int, str, str]]:
    found: list[tuple[int, int, str, str]] = []
    for start, end in _emails(text):
        found.append((start, end, "email", _PLACEHOLDER["email"]))
    for start, end in _ibans(text):
        found.append((start, end, "iban", _PLACEHOLDER["iban"]))
    for start, end in _ssns(text):
        found.append((start, end, "ssn", _PLACEHOLDER["ssn"]))
    for start, end in _national_ids(text):
        found.append((start, end, "national_id", _PLACEHOLDER["national_id"]))
    for start, end in _cards(text):
        found.append((start, end, "card", _PLACEHOLDER["card"]))
    for start, end, masked in _phones(text, region, found):
        found.append((start, end, "phone", masked))
    return found


def _lines_around(text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    lines: list[tuple[int, int]] = []
    for start, end in spans:
        if lines and start < lines[-1][1]:
            continue
        line_end = text.find("\n", end)
        lines.append((text.rfind("\n", 0, start) + 1, len(text) if line_end == -1 else line_end))
    return lines


def redact_text(text: str, default_region: str = "US") -> RedactionResult:
    """Replace every PII item in ``text`` and count the replacements by kind."""
    if not text:
        return RedactionResult(text=text, counts={})
    working = _Working(text)
    findings = [
        (*working.to_original(start, end), kind, replacement)
        for start, end, kind, replacement in _find(working.text, default_region)
    ]
    # A spoken word next to a written number ("... 0123, oh and one more thing") changes the
    # digits the detectors see, so the lines holding a spoken run are also searched as written.
    for line_start, line_end in _lines_around(text, working.runs):
        findings.extend(
            (line_start + start, line_start + end, kind, replacement)
            for start, end, kind, replacement in _find(text[line_start:line_end], default_region)
        )
    findings.sort(key=lambda f: (_PRIORITY.index(f[2]), f[0], f[0] - f[1]))
    accepted: list[tuple[int, int, str, str]] = []
    for orig_start, orig_end, kind, replacement in findings:
        if any(orig_start < a_end and a_start < orig_end for a_start, a_end, _, _ in accepted):
            continue
        accepted.append((orig_start, orig_end, kind, replacement))
    if not accepted:
        return RedactionResult(text=text, counts={})
    accepted.sort()
    out: list[str] = []
    counts: dict[str, int] = {}
    pos = 0
    for start, end, kind, replacement in accepted:
        out.append(text[pos:start])
        out.append(replacement)
        counts[kind] = counts.get(kind, 0) + 1
        pos = end
    out.append(text[pos:])
    return RedactionResult(text="".join(out), counts=counts)


def redact(text: str) -> str:
    """Redacted form of ``text`` (see :func:`redact_text`)."""
    return redact_text(text).text


def redact_json(value: object) -> object:
    """Copy of a JSON-like value with every string inside it redacted; dict keys are kept."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: redact_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [redact_json(item) for item in value]
    if isinstance(value, tuple):
        return tuple(redact_json(item) for item in value)
    return value
