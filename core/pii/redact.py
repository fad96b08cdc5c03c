"""PII redaction for text derived from calls: transcripts, memories and logs are stored redacted.

Payment cards, national ids (US SSN, UK NI number), bank accounts (IBANs, US routing and account
numbers), e-mail addresses (also spoken: "dana at example dot com"), dates of birth and street
addresses are replaced by placeholders, phone numbers by their masked display form; names and
account or order references are kept because memory needs them. Numbers read out as words
("four one one one ...") are caught as well. The agent's ``PiiPolicy`` may keep street
addresses; nothing else can be kept. This module must never log, print or otherwise persist its
input: it is the step that makes text safe to store, so the text it receives is not.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass

import phonenumbers
from stdnum import iban, luhn
from stdnum.us import rtn, ssn

from core.pii.address import find_street_addresses
from core.pii.dob import asks_for_birth_date, find_dates_of_birth
from core.pii.numbers import ascii_lower
from core.pii.phone import mask_number
from core.pii.policy import DEFAULT_PII_POLICY, PiiPolicy

__all__ = [
    "Finding",
    "RedactionResult",
    "find_pii",
    "redact",
    "redact_json",
    "redact_text",
    "redact_turns",
]


@dataclass(frozen=True)
class RedactionResult:
    """Redacted text and how many items of each kind were replaced (only kinds that occurred)."""

    text: str
    counts: dict[str, int]


@dataclass(frozen=True)
class Finding:
    """One PII item: its span in the original text, its kind and what replaces it."""

    start: int
    end: int
    kind: str
    replacement: str


# Overlapping findings are resolved by this order: an IBAN or card contains digit runs that the
# phone matcher or the SSN pattern could also claim, and the more specific finding must win.
_PRIORITY = (
    "email",
    "iban",
    "bank_account",
    "ssn",
    "national_id",
    "card",
    "dob",
    "address",
    "phone",
)
_PLACEHOLDER = {
    "email": "[EMAIL]",
    "iban": "[IBAN]",
    "bank_account": "[BANK_ACCOUNT]",
    "ssn": "[SSN]",
    "national_id": "[NATIONAL_ID]",
    "card": "[CARD]",
    "dob": "[DOB]",
    "address": "[ADDRESS]",
}

# Most patterns start with a digit: the regex engine then skips the (mostly digit-free) prose
# quickly, where a leading look-behind or \b would be tried at every position.

# An address is found from its "@": the local part (at most 64 characters) is searched backwards
# from it and the domain forwards, instead of trying the local-part pattern at every position.
_EMAIL_LOCAL_RE = re.compile(r"[A-Za-z0-9._%+\-][A-Za-z0-9._%+\-']{0,63}\Z")
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
# "What are the last four of your social?" makes the four digits of the answer part of an SSN.
_LAST_FOUR_QUESTION_RE = re.compile(
    r"\blast (?:four|4)\b[^.?!]{0,40}\b(?:social|ssn|security)", re.IGNORECASE
)
_FOUR_DIGITS_RE = re.compile(r"(?<![\d-])\d{4}(?![\d-])")
_LAST_FOUR_ANSWER_CHARS = 24
# python-stdnum has no UK National Insurance module, so the HMRC format rules are spelled out:
# no D, F, I, Q, U, V in the prefix, no O as second letter, some prefixes never issued.
_NINO_DIGITS_RE = re.compile(r"\d\d ?\d\d ?\d\d ?[A-D]\b", re.IGNORECASE)
_NINO_PREFIX_RE = re.compile(
    r"(?<!\w)(?!B ?G|G ?B|K ?N|N ?K|N ?T|T ?N|Z ?Z)[A-CEGHJ-PR-TW-Z] ?[A-CEGHJ-NPR-TW-Z] ?",
    re.IGNORECASE,
)
# Digits with single spaces or dashes between them; groups are kept so that an over-long run
# (a card followed by its expiry, two numbers back to back) can be searched on group boundaries.
_DIGIT_RUN_RE = re.compile(r"\d(?<!\w\d)\d*(?:[ -]\d+)*(?!\w)")
_CARD_MIN, _CARD_MAX = 13, 19
# Stretches that could hold a phone number (seven or more digits with light punctuation). The
# phone matcher is by far the slowest detector, so it only sees these, with a little context.
_PHONE_CANDIDATE_RE = re.compile(r"\d(?:[\d \t().\-/]{0,3}\d){6,}")
_PHONE_CONTEXT_CHARS = 8
_FALLBACK_REGIONS = ("GB", "IE", "AU", "DE", "FR", "NL")
_NATIONAL_MIN, _NATIONAL_MAX = 10, 11
# E-mail addresses read out: "dana at example dot com", "j dot smith at gmail dot com",
# "r o s a dot l e e at yahoo dot com", "k underscore patel at outlook dot com". The top-level
# domain must be a common one, which keeps "meet me at the office dot" out.
_SPOKEN_TLDS = "com|net|org|io|co|uk|us|de|fr|nl|es|it|jp|in|ca|au|edu|gov|info|biz|me|ai|ch|ie|nz"
# Bounded repeats: a long run of single letters ("a a a a ...") must not make this quadratic.
_SPOKEN_LOCAL_TOKEN = r"(?:[a-z](?:\s+[a-z]\b){1,30}|(?!(?:at|dot)\b)[a-z0-9]{1,40})"
_SPOKEN_LOCAL_SEP = r"(?:\s+(?:dot|underscore|dash|hyphen|period)\s+|[._-])"
_SPOKEN_LABEL = r"(?!(?:at|dot)\b)[a-z0-9][a-z0-9-]*"
_SPOKEN_DOT = r"(?:\s+dot\s+|\.)"
_SPOKEN_EMAIL_RE = re.compile(
    rf"(?<![\w'.@]){_SPOKEN_LOCAL_TOKEN}(?:{_SPOKEN_LOCAL_SEP}{_SPOKEN_LOCAL_TOKEN}){{0,8}}"
    rf"\s+at\s+{_SPOKEN_LABEL}(?:\s+{_SPOKEN_LABEL})?(?:{_SPOKEN_DOT}{_SPOKEN_LABEL})*"
    rf"{_SPOKEN_DOT}(?:{_SPOKEN_TLDS})\b"
)
# US bank accounts: a routing number (nine digits with a valid ABA checksum) right after a
# routing word, and an account number right after "account (number)" in a text that is about a
# bank ("checking", "routing", "deposit"...). Without the bank words an account number is the
# caller's account with the business, which memory keeps.
_ROUTING_CUE_RE = re.compile(r"\b(?:routing|aba|transit)\b[^.?!\d]{0,30}\Z", re.IGNORECASE)
_ACCOUNT_CUE_RE = re.compile(
    r"\baccount(?:\s+(?:number|no\.?|#))?(?:\s+is)?[\s:#,]*\Z", re.IGNORECASE
)
_BANK_WORDS_RE = re.compile(
    r"\b(?:routing|checking|savings|bank|deposit|iban|sort code|wire)\b", re.IGNORECASE
)
_ACCOUNT_MIN, _ACCOUNT_MAX = 6, 17
_CUE_WINDOW = 40

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

        lowered = ascii_lower(original)
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


def _spoken_emails(lowered: str) -> Iterator[tuple[int, int]]:
    for m in _SPOKEN_EMAIL_RE.finditer(lowered):
        yield m.start(), m.end()


def _bank_accounts(text: str) -> Iterator[tuple[int, int]]:
    about_a_bank = _BANK_WORDS_RE.search(text) is not None
    for m in _DIGIT_RUN_RE.finditer(text):
        digits = m.group().replace(" ", "").replace("-", "")
        before = text[max(0, m.start() - _CUE_WINDOW) : m.start()]
        if len(digits) == 9 and _ROUTING_CUE_RE.search(before):
            # Said after "routing": a routing number even when a misheard digit breaks the
            # checksum. Without the word, only a valid checksum and a bank context will do.
            yield m.start(), m.end()
        elif about_a_bank and (
            (len(digits) == 9 and rtn.is_valid(digits))
            or (_ACCOUNT_MIN <= len(digits) <= _ACCOUNT_MAX and _ACCOUNT_CUE_RE.search(before))
        ):
            yield m.start(), m.end()


def _ibans(text: str) -> Iterator[tuple[int, int]]:
    for m in _IBAN_RE.finditer(text):
        start = m.start() - 2
        parts = text[start : m.end()].split(" ")
        for keep in range(len(parts), 0, -1):
            candidate = " ".join(parts[:keep])
            if iban.is_valid(candidate):
                yield start, start + len(candidate)
                break


def _ssns(text: str, asked: bool = False) -> Iterator[tuple[int, int]]:
    for m in _SSN_RE.finditer(text):
        if m["bare"] is not None and not asked:
            context = text[max(0, m.start() - _SSN_CONTEXT_CHARS) : m.start()]
            if not _SSN_CONTEXT_RE.search(context):
                continue
        if ssn.is_valid(m.group().replace(" ", "").replace("-", "")):
            yield m.start(), m.end()


def _national_ids(text: str) -> Iterator[tuple[int, int]]:
    for m in _NINO_DIGITS_RE.finditer(text):
        for prefix_len in (2, 3, 4):
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
        # Windows no longer than a card, longest first, so a 16-digit card wins over a 13-digit
        # slice of it. Bounding them keeps a long run of single digits linear, not cubic.
        windows: list[int] = []
        size = 0
        for last in range(first, len(groups)):
            size += lengths[last]
            if size > _CARD_MAX:
                break
            windows.append(last)
        for last in reversed(windows):
            size = sum(lengths[first : last + 1])
            if size < _CARD_MIN or (first == 0 and last == len(groups) - 1):
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
        matched = False
        for m in phonenumbers.PhoneNumberMatcher(window, region):
            matched = True
            e164 = phonenumbers.format_number(m.number, phonenumbers.PhoneNumberFormat.E164)
            yield offset + m.start, offset + m.end, mask_number(e164)
        if not matched:
            yield from _foreign_phone(text, candidate, region)


def _foreign_phone(
    text: str, candidate: re.Match[str], region: str
) -> Iterator[tuple[int, int, str]]:
    """A national number with a trunk 0 ("07700 900123") said to an agent in another region.

    Such a number is never valid where the leading 0 is not a trunk prefix (the US, Canada), so
    it is read in the regions whose numbers callers most often give from abroad, and kept only
    when one of them finds it valid.
    """
    digits = re.sub(r"\D", "", candidate.group())
    if not digits.startswith("0") or not _NATIONAL_MIN <= len(digits) <= _NATIONAL_MAX:
        return
    if candidate.start() and text[candidate.start() - 1] == "+":
        return
    # Digits glued to a word are part of an id ("4b0138603162ab", "INV0123456789"), not a number
    # someone said.
    before = text[candidate.start() - 1] if candidate.start() else " "
    after = text[candidate.end()] if candidate.end() < len(text) else " "
    if before.isalnum() or after.isalnum():
        return
    for other in _FALLBACK_REGIONS:
        if other == region:
            continue
        try:
            number = phonenumbers.parse(digits, other)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
            yield candidate.start(), candidate.end(), mask_number(e164)
            return


@dataclass(frozen=True)
class _Asked:
    """What the turn before asked for, which makes a bare answer in this turn that item."""

    ssn: bool = False
    last_four: bool = False
    birth_date: bool = False

    @classmethod
    def by(cls, context: str) -> _Asked:
        if not context:
            return _NOTHING_ASKED
        return cls(
            ssn=_SSN_CONTEXT_RE.search(context) is not None,
            last_four=_LAST_FOUR_QUESTION_RE.search(context) is not None,
            birth_date=asks_for_birth_date(ascii_lower(context)),
        )


_NOTHING_ASKED = _Asked()


def _last_four(text: str) -> Iterator[tuple[int, int]]:
    m = _FOUR_DIGITS_RE.search(text, 0, _LAST_FOUR_ANSWER_CHARS)
    if m:
        yield m.start(), m.end()


def _find(
    text: str, region: str, asked: _Asked = _NOTHING_ASKED
) -> list[tuple[int, int, str, str]]:
    found: list[tuple[int, int, str, str]] = []
    if asked.last_four:
        found.extend((s, e, "ssn", _PLACEHOLDER["ssn"]) for s, e in _last_four(text))
    for start, end in _emails(text):
        found.append((start, end, "email", _PLACEHOLDER["email"]))
    for start, end in _ibans(text):
        found.append((start, end, "iban", _PLACEHOLDER["iban"]))
    for start, end in _bank_accounts(text):
        found.append((start, end, "bank_account", _PLACEHOLDER["bank_account"]))
    for start, end in _ssns(text, asked.ssn):
        found.append((start, end, "ssn", _PLACEHOLDER["ssn"]))
    for start, end in _national_ids(text):
        found.append((start, end, "national_id", _PLACEHOLDER["national_id"]))
    for start, end in _cards(text):
        found.append((start, end, "card", _PLACEHOLDER["card"]))
    for start, end, masked in _phones(text, region, found):
        found.append((start, end, "phone", masked))
    return found


def _find_in_words(
    lowered: str, policy: PiiPolicy, asked: _Asked
) -> list[tuple[int, int, str, str]]:
    """Findings that need the words around the numbers: spoken e-mails, dates, addresses."""
    found = [(s, e, "email", _PLACEHOLDER["email"]) for s, e in _spoken_emails(lowered)]
    found.extend(
        (s, e, "dob", _PLACEHOLDER["dob"])
        for s, e in find_dates_of_birth(lowered, asked.birth_date)
    )
    if not policy.keeps_addresses:
        found.extend(
            (s, e, "address", _PLACEHOLDER["address"]) for s, e in find_street_addresses(lowered)
        )
    return found


def _lines_around(text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    lines: list[tuple[int, int]] = []
    for start, end in spans:
        if lines and start < lines[-1][1]:
            continue
        line_end = text.find("\n", end)
        lines.append((text.rfind("\n", 0, start) + 1, len(text) if line_end == -1 else line_end))
    return lines


def find_pii(
    text: str,
    policy: PiiPolicy = DEFAULT_PII_POLICY,
    default_region: str = "US",
    context: str = "",
) -> list[Finding]:
    """Every PII item in ``text`` under ``policy``, in order, without overlaps.

    ``context`` is the turn before (the question this turn answers): after "What's your date
    of birth?" a bare "June second" is one, after "the last four of your social?" so are four
    digits. It is only read, never redacted or returned.
    """
    if not text:
        return []
    asked = _Asked.by(context)
    working = _Working(text)
    findings = [
        (*working.to_original(start, end), kind, replacement)
        for start, end, kind, replacement in _find(working.text, default_region, asked)
    ]
    # A spoken word next to a written number ("... 0123, oh and one more thing") changes the
    # digits the detectors see, so the lines holding a spoken run are also searched as written.
    for line_start, line_end in _lines_around(text, working.runs):
        findings.extend(
            (line_start + start, line_start + end, kind, replacement)
            for start, end, kind, replacement in _find(
                text[line_start:line_end], default_region, asked
            )
        )
    lowered = ascii_lower(text)
    findings.extend(_find_in_words(lowered, policy, asked))
    findings.sort(key=lambda f: (_PRIORITY.index(f[2]), f[0], f[0] - f[1]))
    accepted: list[Finding] = []
    for orig_start, orig_end, kind, replacement in findings:
        if any(orig_start < a.end and a.start < orig_end for a in accepted):
            continue
        accepted.append(Finding(orig_start, orig_end, kind, replacement))
    accepted.sort(key=lambda f: f.start)
    return accepted


def redact_text(
    text: str,
    default_region: str = "US",
    policy: PiiPolicy = DEFAULT_PII_POLICY,
    context: str = "",
) -> RedactionResult:
    """Replace every PII item in ``text`` and count the replacements by kind.

    ``context``: the turn before, see :func:`find_pii`."""
    accepted = find_pii(text, policy, default_region, context)
    if not accepted:
        return RedactionResult(text=text, counts={})
    out: list[str] = []
    counts: dict[str, int] = {}
    pos = 0
    for finding in accepted:
        out.append(text[pos : finding.start])
        out.append(finding.replacement)
        counts[finding.kind] = counts.get(finding.kind, 0) + 1
        pos = finding.end
    out.append(text[pos:])
    return RedactionResult(text="".join(out), counts=counts)


def redact(text: str, policy: PiiPolicy = DEFAULT_PII_POLICY, context: str = "") -> str:
    """Redacted form of ``text`` (see :func:`redact_text`)."""
    return redact_text(text, policy=policy, context=context).text


def redact_turns(texts: list[str], policy: PiiPolicy = DEFAULT_PII_POLICY) -> list[str]:
    """Redacted turns of one conversation, each read with the turn before as its context."""
    return [redact(text, policy, context=texts[i - 1] if i else "") for i, text in enumerate(texts)]


def redact_json(value: object, policy: PiiPolicy = DEFAULT_PII_POLICY) -> object:
    """Copy of a JSON-like value with every string inside it redacted; dict keys are kept."""
    if isinstance(value, str):
        return redact(value, policy)
    if isinstance(value, dict):
        return {key: redact_json(item, policy) for key, item in value.items()}
    if isinstance(value, list):
        return [redact_json(item, policy) for item in value]
    if isinstance(value, tuple):
        return tuple(redact_json(item, policy) for item in value)
    return value
