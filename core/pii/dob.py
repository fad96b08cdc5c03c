"""Dates of birth in call transcripts, written or spoken.

A date is a date of birth when it has a year no later than ``LATEST_BIRTH_YEAR`` (callers read
out their own birth dates; a date with an old year is rarely anything else on a service call),
or when a birth word ("born", "birthday", "date of birth", "DOB") comes shortly before it or in
the turn it answers, in which case a day and month without a year are enough ("my birthday is
June second"). Dates without a year and without such a word (appointments, deliveries) and
recent dates (orders, invoices) are kept.
Input is ASCII-lowercased text (same length as the original).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from core.pii.numbers import CARDINAL, ORDINAL, SEP, YEAR_WORDS, U, alt, value_of

__all__ = ["LATEST_BIRTH_YEAR", "asks_for_birth_date", "find_dates_of_birth"]

LATEST_BIRTH_YEAR = 2010
_BIRTH_CUE = re.compile(r"\b(?:birth|born|dob|d\.o\.b|birthday|b-day|bday)\b")
_CUE_CHARS = 60

_MONTHS = (
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
)
_MONTH_ABBR = {
    "jan": 1,
    "feb": 2,
    "mar": 3,
    "apr": 4,
    "jun": 6,
    "jul": 7,
    "aug": 8,
    "sep": 9,
    "sept": 9,
    "oct": 10,
    "nov": 11,
    "dec": 12,
}
_MONTH_NUMBER = {m: i + 1 for i, m in enumerate(_MONTHS)} | _MONTH_ABBR
_MONTH = alt([*_MONTHS, *_MONTH_ABBR]) + r"\.?"
_DAY = rf"(?:\d{{1,2}}(?:st|nd|rd|th)?\b|{ORDINAL}|{CARDINAL})"
_YEAR = rf"(?:\d{{4}}\b|'\d\d\b|{YEAR_WORDS})"
_COMMA = r"(?:\s*,\s*|\s+)"

# "March fourth, nineteen eighty-two", "July 4th, 1976", "Oct 12, 1962", "June second"
_MONTH_FIRST = re.compile(
    rf"\b(?P<month>{_MONTH})\s+(?:the\s+)?(?P<day>{_DAY})(?:{_COMMA}(?P<year>{_YEAR}))?"
)
# "the fourteenth of March, nineteen eighty-five", "2nd June 1968", "23 November 1971"
_DAY_FIRST = re.compile(
    rf"(?:\bthe\s+)?(?<![\w'])(?P<day>{_DAY})\s+(?:of\s+)?(?P<month>{_MONTH})"
    rf"(?:{_COMMA}(?P<year>{_YEAR}))?"
)
# 03/14/1985, 30/06/1975, 10-02-1994, 1/8/1957, 1985-03-14
_NUMERIC = re.compile(
    r"(?<![\w/.-])(?:(?P<a>\d{1,2})(?P<s>[/.-])(?P<b>\d{1,2})(?P=s)(?P<year>\d{4}|\d\d)"
    r"|(?P<iso_year>\d{4})-(?P<iso_month>\d\d)-(?P<iso_day>\d\d))(?![\w/-]|\.\d)"
)
# Month, day and year all said as numbers: "oh three fourteen eighty five", "twelve twelve
# ninety", "eleven oh four nineteen seventy-seven".
_SPOKEN_MONTH = rf"(?:oh{SEP}{U}|{alt(('ten', 'eleven', 'twelve'))}|{U})"
_SPOKEN_DAY = rf"(?:oh{SEP}{U}|{CARDINAL})"
_SPOKEN_NUMERIC = re.compile(
    rf"(?<![\w'])(?P<month>{_SPOKEN_MONTH}){_COMMA}(?P<day>{_SPOKEN_DAY}){_COMMA}"
    rf"(?P<year>{YEAR_WORDS})"
)


def _year(raw: str | None) -> int | None:
    if raw is None:
        return None
    value = value_of(raw, year=True)
    if value is None:
        return None
    if value < 100:  # "'85", "eighty five", "90"
        value += 2000 if value <= LATEST_BIRTH_YEAR - 2000 else 1900
    return value


def _plausible(month: int, day: int) -> bool:
    return 1 <= month <= 12 and 1 <= day <= 31


def asks_for_birth_date(text: str) -> bool:
    """Whether ``text`` (ASCII-lowercased), the turn before an answer, asks for a birth date.

    It mentions one and gives none: "I was born on May 5th, 1966" answers, it does not ask, and
    the next turn's "we shipped it on March 2nd" is not a birth date.
    """
    return _BIRTH_CUE.search(text) is not None and next(_candidates(text), None) is None


def _is_birth_date(text: str, start: int, year: int | None, asked: bool) -> bool:
    if year is not None and 1900 <= year <= LATEST_BIRTH_YEAR:
        return True
    cue = asked or _BIRTH_CUE.search(text, max(0, start - _CUE_CHARS), start) is not None
    return cue and (year is None or year >= 1900)


def _candidates(text: str) -> Iterator[tuple[int, int, int | None, bool]]:
    """(start, end, year, plausible month/day) for every date-shaped phrase."""
    for pattern in (_MONTH_FIRST, _DAY_FIRST):
        for m in pattern.finditer(text):
            month = _MONTH_NUMBER[m["month"].rstrip(".")]
            day = value_of(m["day"])
            yield m.start(), m.end(), _year(m["year"]), day is not None and _plausible(month, day)
    for m in _NUMERIC.finditer(text):
        if m["iso_year"] is not None:
            month, day = int(m["iso_month"]), int(m["iso_day"])
            yield m.start(), m.end(), int(m["iso_year"]), _plausible(month, day)
            continue
        a, b = int(m["a"]), int(m["b"])
        yield m.start(), m.end(), _year(m["year"]), _plausible(a, b) or _plausible(b, a)
    for m in _SPOKEN_NUMERIC.finditer(text):
        spoken_month, spoken_day = value_of(m["month"]), value_of(m["day"])
        ok = spoken_month is not None and spoken_day is not None
        ok = ok and _plausible(spoken_month or 0, spoken_day or 0)
        yield m.start(), m.end(), _year(m["year"]), ok


def find_dates_of_birth(text: str, asked: bool = False) -> Iterator[tuple[int, int]]:
    """Spans of ``text`` (ASCII-lowercased) that are dates of birth.

    ``asked``: the turn before asked for one ("What's your date of birth?"), so a date without a
    year in this answer is one too.
    """
    for start, end, year, plausible in _candidates(text):
        if plausible and _is_birth_date(text, start, year, asked):
            yield start, end
