"""Numbers said as words, as speech recognition writes them: regex pieces and their values.

Used by the date-of-birth and street-address detectors, which see numbers the digit-run
rewriting in ``redact`` leaves alone ("nineteen eighty-five", "the fourteenth", "four twenty
two"). All patterns expect ASCII-lowercased text.
"""

from __future__ import annotations

import re
import string

UNITS = ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
TEENS = (
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
)
TENS = ("twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
UNIT_ORDINALS = (
    "first",
    "second",
    "third",
    "fourth",
    "fifth",
    "sixth",
    "seventh",
    "eighth",
    "ninth",
)
TEEN_ORDINALS = (
    "tenth",
    "eleventh",
    "twelfth",
    "thirteenth",
    "fourteenth",
    "fifteenth",
    "sixteenth",
    "seventeenth",
    "eighteenth",
    "nineteenth",
)
TENS_ORDINALS = ("twentieth", "thirtieth")

_VALUES: dict[str, int] = {"zero": 0, "oh": 0}
_VALUES.update({w: i + 1 for i, w in enumerate(UNITS)})
_VALUES.update({w: i + 10 for i, w in enumerate(TEENS)})
_VALUES.update({w: (i + 2) * 10 for i, w in enumerate(TENS)})
_VALUES.update({w: i + 1 for i, w in enumerate(UNIT_ORDINALS)})
_VALUES.update({w: i + 10 for i, w in enumerate(TEEN_ORDINALS)})
_VALUES.update({"twentieth": 20, "thirtieth": 30})


def alt(words: tuple[str, ...] | list[str]) -> str:
    """A non-capturing alternation, longest first, that ends on a word boundary."""
    return "(?:" + "|".join(sorted(words, key=len, reverse=True)) + r")\b"


SEP = r"[ -]"
U = alt(UNITS)
T = alt(TEENS)
X = alt(TENS)
# 1..99 as a cardinal ("twenty two", "forty-five", "seventeen", "six").
CARDINAL = rf"(?:{X}(?:{SEP}{U})?|{T}|{U})"
# 1..31 as an ordinal ("fourth", "twenty-first", "thirtieth").
ORDINAL = (
    rf"(?:{X}{SEP}{alt(UNIT_ORDINALS)}|{alt(TENS_ORDINALS)}|{alt(TEEN_ORDINALS)}"
    rf"|{alt(UNIT_ORDINALS)})"
)
# Years: "nineteen eighty-five", "nineteen oh five", "two thousand one", "twenty twelve", and a
# bare two-digit "eighty five" / "ninety".
YEAR_WORDS = (
    rf"(?:(?:nineteen|twenty){SEP}(?:hundred\b|oh{SEP}{U}|{X}(?:{SEP}{U})?|{T})"
    rf"|two thousand(?: and)?(?:{SEP}(?:{X}(?:{SEP}{U})?|{T}|{U}))?"
    rf"|{X}(?:{SEP}{U})?)"
)

_TOKEN = re.compile(r"[a-z]+")
_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def ascii_lower(text: str) -> str:
    """``text`` with only ASCII letters lower-cased: same length and offsets as the original,
    unlike ``str.lower()`` on some non-ASCII text (and as fast when the text is ASCII)."""
    return text.lower() if text.isascii() else text.translate(_ASCII_LOWER)


def value_of(phrase: str, year: bool = False) -> int | None:
    """The number a spoken phrase (or a digit string, ordinal suffix allowed) stands for.

    With ``year``, the phrase is read the way years are said: "nineteen eighty five" is 1985,
    "nineteen oh five" 1905, "two thousand one" 2001, "twenty twelve" 2012. Otherwise the words
    are summed ("twenty two", "twenty-first").
    """
    phrase = phrase.strip().lower()
    digits = re.fullmatch(r"'?(\d+)(?:st|nd|rd|th)?", phrase)
    if digits:
        return int(digits[1])
    words = [w for w in _TOKEN.findall(phrase) if w != "and"]
    if not words or any(w not in _VALUES and w not in ("hundred", "thousand") for w in words):
        return None
    if not year:
        return sum(_VALUES[w] for w in words if w in _VALUES)
    if words[:2] == ["two", "thousand"]:
        return 2000 + sum(_VALUES[w] for w in words[2:])
    if len(words) >= 2 and words[0] in ("nineteen", "twenty") and words[1] != "thousand":
        rest = words[1:]
        if rest == ["hundred"]:
            return _VALUES[words[0]] * 100
        if words[0] == "twenty" and rest[0] in UNITS:
            return 20 + _VALUES[rest[0]]  # "twenty two" is 22, not 2002
        return _VALUES[words[0]] * 100 + sum(_VALUES[w] for w in rest)
    return sum(_VALUES[w] for w in words)
