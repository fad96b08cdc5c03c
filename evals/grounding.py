"""Is what the agent stated grounded? The numbers and capitalised names in its turns, each
looked up in the texts it could have learnt them from (retrieved knowledge, tool results, the
caller's memory, what the caller said).

Deliberately simple and deterministic: a number is a run of digits (``1,200`` is ``1200``,
``7:30`` is ``7`` and ``30``); a named entity is a run of capitalised words that does not start
a sentence (``Elm Street``), minus a few words always capitalised (``I``, ``OK``, titles). A
fact is grounded when it appears (ignoring case and thousands separators) in a source.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["claims", "normalize_numbers", "ungrounded"]

_ALWAYS_CAPITALISED = frozenset(
    {"i", "i'm", "i'll", "i've", "i'd", "ok", "okay", "mr", "mrs", "ms", "dr", "hi", "hello"}
)
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
_WORD = re.compile(r"[A-Za-z][A-Za-z'’-]*|\d[\d,]*(?:\.\d+)?")
_NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")


def normalize_numbers(text: str) -> str:
    """Thousands separators out: ``1,200`` -> ``1200``."""
    return re.sub(r"(?<=\d),(?=\d{3}\b)", "", text)


def claims(text: str) -> list[str]:
    """The numbers and named entities stated in ``text``, in order, without repeats."""
    found: list[str] = []
    for number in _NUMBER.findall(normalize_numbers(text)):
        found.append(number.rstrip(".,"))
    for sentence in _SENTENCE.split(text):
        words = _WORD.findall(sentence)
        run: list[str] = []
        for i, word in enumerate(words):
            capital = word[0].isupper() and word.casefold() not in _ALWAYS_CAPITALISED
            if capital and (i > 0 or run):
                run.append(word)
                continue
            if run:
                found.append(" ".join(run))
            run = []
        if run:
            found.append(" ".join(run))
    return list(dict.fromkeys(found))


def _contains(source: str, claim: str) -> bool:
    if claim[0].isdigit():
        return re.search(rf"(?<![\d.]){re.escape(claim)}(?![\d]|\.\d)", source) is not None
    return " ".join(claim.split()).casefold() in " ".join(source.split()).casefold()


def ungrounded(agent_texts: Iterable[str], sources: Iterable[str]) -> list[str]:
    """The claims in ``agent_texts`` found in none of ``sources``."""
    corpus = normalize_numbers("\n".join(sources))
    missing: list[str] = []
    for text in agent_texts:
        for claim in claims(text):
            if claim not in missing and not _contains(corpus, claim):
                missing.append(claim)
    return missing
