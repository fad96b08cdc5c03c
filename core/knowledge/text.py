"""Plain text helpers shared by retrieval and the keyword indexes: tokens, stopwords, hashes.

No I/O and no state. The keyword adapters tokenize with their own engines; these helpers build
the query terms and the normalizer's vocabulary the same way everywhere.
"""

from __future__ import annotations

import hashlib
import re

_TOKEN = re.compile(r"[a-z0-9]+(?:['’][a-z]+)?")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}\b)")


def word_set(words: str) -> frozenset[str]:
    """A set from a space-separated literal (easier to read and review than a list)."""
    return frozenset(words.split())


STOPWORDS = word_set(
    """a an and are as at be been but by can could did do does doing for from had has have
    how i if in into is it its just me my of on or our please so than that the their them then
    there these they this to too us was we were what when where which who why will with would
    you your yours i'm it's what's i'd i'll you're can't don't"""
)


def tokens(text: str) -> list[str]:
    """Lower-case word tokens; apostrophes stay inside words (``don't``)."""
    return _TOKEN.findall(text.lower().replace("’", "'"))


def content_terms(text: str) -> list[str]:
    """Tokens without stopwords: what a keyword query searches for."""
    return [t for t in tokens(text) if t not in STOPWORDS]


def sha256_hex(data: bytes | str) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return hashlib.sha256(raw).hexdigest()


def collapse_ws(text: str) -> str:
    return " ".join(text.split())


def canonical_numbers(text: str) -> str:
    """``$1,850`` -> ``$1850``: queries and indexed text agree on one form of a number."""
    return _THOUSANDS.sub("", text)


def index_text(title: str, section: str, text: str) -> str:
    """What both retrievers search for a chunk: where it sits, then what it says."""
    where = " > ".join(p for p in (title, section) if p)
    return canonical_numbers(f"{where}\n{text}" if where else text)
