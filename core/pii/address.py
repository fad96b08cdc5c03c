"""Street addresses in call transcripts: a house number, a street name and a street type.

"4127 Juniper Street", "four twenty two Oak Lane", "88 Baker Street, Apartment 4B",
"Flat 2, 14 Kensington Gardens Square", "1600 Pennsylvania Avenue Northwest". The city, state
and postcode are not part of the span: a city is a fact memory keeps. Input is
ASCII-lowercased text (same length as the original).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from core.pii.numbers import CARDINAL, SEP, U, alt, ascii_lower

__all__ = ["find_street_addresses", "street_addresses"]

_STREET_TYPES = (
    "street",
    "st",
    "avenue",
    "ave",
    "road",
    "rd",
    "boulevard",
    "blvd",
    "lane",
    "ln",
    "drive",
    "dr",
    "court",
    "ct",
    "way",
    "place",
    "pl",
    "terrace",
    "circle",
    "parkway",
    "pkwy",
    "highway",
    "hwy",
    "square",
    "loop",
    "trail",
    "crescent",
    "close",
    "gardens",
    "walk",
    "alley",
    "plaza",
    "pike",
    "row",
    "mews",
)
_DIRECTIONS = (
    "north",
    "south",
    "east",
    "west",
    "northeast",
    "northwest",
    "southeast",
    "southwest",
    "ne",
    "nw",
    "se",
    "sw",
)
# Words that never sit between a house number and the street type ("3 kids on the way").
_NOT_A_STREET_WORD = (
    "the",
    "a",
    "an",
    "on",
    "of",
    "my",
    "your",
    "our",
    "their",
    "in",
    "at",
    "to",
    "for",
    "and",
    "or",
    "is",
    "it",
    "by",
    "from",
    "with",
    "this",
    "that",
    "me",
    "you",
    "we",
    "they",
    "i",
    "am",
    "are",
    "was",
    "be",
    "will",
    "per",
    "each",
    "every",
    "more",
    "some",
    "all",
    "minutes",
    "hours",
    "days",
    "weeks",
    "items",
    "people",
)
# "four twenty two", "seventeen oh five", "two thirty one", "nine oh nine", "seventy two"
_SPOKEN_HOUSE = rf"(?:{CARDINAL}|oh{SEP}{U}|{U})(?:{SEP}(?:{CARDINAL}|oh{SEP}{U}|hundred\b)){{0,3}}"
_HOUSE = rf"(?:\d{{1,6}}[a-z]?\b(?:-\d{{1,4}}\b)?|{_SPOKEN_HOUSE})"
_NAME_WORD = rf"(?!{alt(_NOT_A_STREET_WORD)})(?:[a-z][a-z'.-]*|\d{{1,3}}(?:st|nd|rd|th))"
_UNIT_WORD = r"(?:apartment|apt|unit|suite|ste|flat|number|no|#)\.?"
_UNIT_ID = rf"(?:[a-z]?\d{{1,5}}[a-z]?\b|{CARDINAL}(?:\s+[a-z]\b)?|[a-z]\b)"
_ADDRESS = re.compile(
    rf"(?<![\w'])(?:(?:flat|apartment|apt|unit|suite)\s+{_UNIT_ID},?\s+)?"
    rf"{_HOUSE}\s+(?:{_NAME_WORD}\s+){{1,3}}{alt(_STREET_TYPES)}"
    rf"(?:\s+{alt(_DIRECTIONS)})?"
    rf"(?:,?\s+{_UNIT_WORD}\s*{_UNIT_ID})?"
)


def find_street_addresses(text: str) -> Iterator[tuple[int, int]]:
    """Spans of ``text`` (ASCII-lowercased) that are street addresses."""
    for m in _ADDRESS.finditer(text):
        yield m.start(), m.end()


def street_addresses(text: str) -> list[str]:
    """The street addresses in ``text`` (any case), as written there."""
    return [text[s:e] for s, e in find_street_addresses(ascii_lower(text))]
