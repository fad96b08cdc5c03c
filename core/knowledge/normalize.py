"""Speech-to-text normalization for retrieval queries, applied before both retrievers.

What a caller says arrives through ASR: fillers ("um", "you know"), disfluencies ("the the",
"mon- monday"), numbers spelled out ("one forty nine dollars"), letters spelled out ("a c",
"h v a c") and sound-alike substitutions ("flash" for "flush"). This module turns that into the
words a knowledge base is written in. It is deterministic and pure (no I/O, no model), cheap
enough for the hot path (well under a millisecond), and conservative on clean text: a query
without ASR artefacts comes out with the same words, lower-cased.

Its repairs are generic rules plus a knowledge base's own vocabulary (phonetic neighbours of
words the base does not contain). It must never share a confusion list with any ASR-noise
simulator used to evaluate it: that would measure the list, not the normalizer.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from core.knowledge.text import STOPWORDS, canonical_numbers, word_set

FILLERS = word_set("um umm uhm uh uhh er erm ah ahh eh hmm hm mm mmm mhm uh-huh oh ooh huh")
HEDGES = word_set("basically actually literally honestly totally anyway")
MULTI_FILLERS: tuple[tuple[str, ...], ...] = (
    ("you", "know"),
    ("i", "mean"),
    ("let", "me", "see"),
    ("let", "me", "think"),
)
OPENERS = word_set("so well okay ok yeah yes alright right hi hello hey")
# "like" is a filler after these words ("it's like a hundred"), a verb elsewhere ("I'd like").
LIKE_FILLER_AFTER = word_set("so and it's its is was just um uh but")

# Generic ASR splits and spellings of common words (not domain specific).
PHRASES: dict[tuple[str, ...], str] = {
    ("e", "mail"): "email",
    ("e-mail",): "email",
    ("wi", "fi"): "wifi",
    ("wi-fi",): "wifi",
    ("a/c",): "ac",
    ("h", "vac"): "hvac",
    ("h-vac",): "hvac",
    ("age", "vac"): "hvac",
    ("okey", "dokey"): "okay",
    ("zip", "code"): "zipcode",
    ("per", "cent"): "percent",
}

UNITS = {
    "zero": 0, "oh": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
    "seven": 7, "eight": 8, "nine": 9,
}  # fmt: skip
TEENS = {
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19,
}  # fmt: skip
TENS = {
    "twenty": 20, "thirty": 30, "forty": 40, "fourty": 40, "fifty": 50, "sixty": 60,
    "seventy": 70, "eighty": 80, "ninety": 90,
}  # fmt: skip
ORDINALS = {
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7,
    "eighth": 8, "ninth": 9, "tenth": 10, "eleventh": 11, "twelfth": 12, "thirteenth": 13,
    "fourteenth": 14, "fifteenth": 15, "sixteenth": 16, "seventeenth": 17, "eighteenth": 18,
    "nineteenth": 19, "twentieth": 20, "thirtieth": 30,
}  # fmt: skip
SCALES = {"hundred": 100, "thousand": 1000, "million": 1_000_000}
MONTHS = word_set(
    "january february march april may june july august september october november december"
)
# "one" is a pronoun after these words ("the one I bought", "no one").
ONE_AS_PRONOUN_AFTER = word_set("the this that which any no each every some someone")

MIN_REPAIR_LETTERS = 5

_PUNCT_EDGES = re.compile(r"^[^\w$%']+|[^\w$%']+$")
_DOTTED_LETTERS = re.compile(r"^(?:[a-z]\.){2,}$")

# -- phonetic keys -------------------------------------------------------------------------

_PHONETIC_RULES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(p), r)
    for p, r in (
        (r"^kn|^gn|^pn", "n"),
        (r"^wr", "r"),
        (r"^ps", "s"),
        (r"^x", "s"),
        (r"^wh", "w"),
        (r"mb$", "m"),
        (r"ph", "f"),
        (r"tch", "X"),
        (r"sch", "sk"),
        (r"ck", "k"),
        (r"(?<=.)gh", ""),
        (r"sh|ch", "X"),  # upper case: a produced sound, not a letter later rules rewrite
        (r"th", "0"),
        (r"dg", "j"),
        (r"c(?=[eiy])", "s"),
        (r"c", "k"),
        (r"q", "k"),
        (r"x", "ks"),
        (r"z", "s"),
        (r"v", "f"),
        (r"d", "t"),
        (r"b", "p"),
        (r"g(?=[eiy])", "j"),
        (r"g", "k"),
    )
)


def phonetic_key(word: str) -> str:
    """A small Metaphone-like key: words that sound alike share it (``flush``/``flash``)."""
    w = re.sub(r"[^a-z]", "", word.lower())
    if not w:
        return ""
    for pattern, repl in _PHONETIC_RULES:
        w = pattern.sub(repl, w)
    head, rest = w[0], w[1:]
    if head in "aeiouy":
        head = "a"
    rest = re.sub(r"[aeiouy]", "", rest)
    rest = re.sub(r"h(?![aeiouy])|w(?![aeiouy])", "", rest)
    key = head + rest
    return re.sub(r"(.)\1+", r"\1", key)


def edit_distance(a: str, b: str) -> int:
    if a == b:
        return 0
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i]
        for j, cb in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def _similarity(a: str, b: str) -> float:
    return 1.0 - edit_distance(a, b) / max(len(a), len(b), 1)


_SUFFIXES = ("ings", "ing", "ers", "er", "ed", "es", "s", "ly")


def _stem(word: str) -> str:
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def _related(a: str, b: str) -> bool:
    """Forms of one word (``charge``/``charger``): a grammar difference, not a mishearing, and
    the keyword index stems those anyway."""
    return a.startswith(b) or b.startswith(a) or _stem(a) == _stem(b)


@dataclass(frozen=True)
class Vocabulary:
    """A knowledge base's words (most frequent first), indexed by phonetic key."""

    terms: frozenset[str] = frozenset()
    by_key: dict[str, tuple[str, ...]] = field(default_factory=dict)
    rank: dict[str, int] = field(default_factory=dict)
    stems: frozenset[str] = frozenset()

    def knows(self, word: str) -> bool:
        """The word, or another form of it (``clean`` for ``cleaning``), is in the base."""
        return word in self.terms or _stem(word) in self.stems

    @classmethod
    def build(cls, ordered_terms: Iterable[str]) -> Vocabulary:
        rank: dict[str, int] = {}
        by_key: dict[str, list[str]] = {}
        for term in ordered_terms:
            if term in rank or not term.isalpha() or len(term) < 3 or term in STOPWORDS:
                continue
            rank[term] = len(rank)
            by_key.setdefault(phonetic_key(term), []).append(term)
        return cls(
            frozenset(rank),
            {k: tuple(v) for k, v in by_key.items()},
            rank,
            frozenset(_stem(t) for t in rank),
        )

    def __bool__(self) -> bool:
        return bool(self.terms)

    def sound_alike(self, word: str) -> tuple[str | None, bool]:
        """The vocabulary word ``word`` was most likely heard as, and whether the match is
        exact on the phonetic key (strong enough to replace) or one edit away (add only)."""
        key = phonetic_key(word)
        if len(key) < 2:
            return None, False
        if any(_related(word, t) for t in self.by_key.get(key, ())):
            return None, False
        exact = [t for t in self.by_key.get(key, ()) if _similarity(word, t) >= 0.6]
        if exact:
            return min(exact, key=lambda t: (-_similarity(word, t), self.rank[t])), True
        near: list[str] = []
        for other_key, terms in self.by_key.items():
            if other_key[0] != key[0] or abs(len(other_key) - len(key)) > 1:
                continue
            if edit_distance(other_key, key) == 1:
                near.extend(
                    t for t in terms if _similarity(word, t) >= 0.75 and not _related(word, t)
                )
        if near:
            return min(near, key=lambda t: (-_similarity(word, t), self.rank[t])), False
        return None, False


# -- the pipeline -----------------------------------------------------------------------------


def _words(text: str) -> list[str]:
    text = unicodedata.normalize("NFKC", text).replace("’", "'").lower()
    text = canonical_numbers(text)
    out: list[str] = []
    for raw in text.split():
        if raw.endswith("-") and len(raw) > 1 and raw[:-1].isalpha():
            continue  # a cut-off word ("mon-") the speaker restarted
        if _DOTTED_LETTERS.match(raw):
            out.extend(raw.replace(".", " ").split())
            continue
        word = _PUNCT_EDGES.sub("", raw)
        if not word:
            continue
        parts = word.split("-")
        # "forty-nine", "twenty-six": hyphenated number words become separate number words
        if len(parts) > 1 and all(p in UNITS or p in TENS or p in ORDINALS for p in parts):
            out.extend(parts)
        else:
            out.append(word)
    return out


def _drop_fillers(words: list[str]) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(words):
        w = words[i]
        multi = next(
            (m for m in MULTI_FILLERS if tuple(words[i : i + len(m)]) == m),
            None,
        )
        if multi is not None:
            i += len(multi)
            continue
        if w in FILLERS or w in HEDGES:
            i += 1
            continue
        if w == "like" and (not out or out[-1] in LIKE_FILLER_AFTER):
            i += 1
            continue
        out.append(w)
        i += 1
    while out and out[0] in OPENERS and len(out) > 1:
        out.pop(0)
    return out


def _drop_repeats(words: list[str]) -> list[str]:
    """``the the`` -> ``the``; ``i want i want`` -> ``i want`` (restarts, not emphasis of
    numbers: ``five five five`` is a phone number and stays)."""
    out: list[str] = []
    for w in words:
        if out and out[-1] == w and not (w in UNITS or w in TEENS or w in TENS or w.isdigit()):
            continue
        out.append(w)
        if len(out) >= 4 and out[-2:] == out[-4:-2] and not any(x.isdigit() for x in out[-2:]):
            del out[-2:]
    return out


def _phrases(words: list[str]) -> list[str]:
    out: list[str] = []
    i = 0
    longest = max(len(k) for k in PHRASES)
    while i < len(words):
        for n in range(longest, 0, -1):
            key = tuple(words[i : i + n])
            if len(key) == n and key in PHRASES:
                out.append(PHRASES[key])
                i += n
                break
        else:
            out.append(words[i])
            i += 1
    return out


def _join_letters(words: list[str]) -> list[str]:
    """Runs of two or more single letters are an acronym spelled out: ``a c`` -> ``ac``."""
    out: list[str] = []
    run: list[str] = []

    def flush() -> None:
        if run and run[0] == "a" and len(run) >= 3:
            out.append(run.pop(0))  # "a g f c i outlet": the article, then the acronym
        if len(run) >= 2 and not all(r in {"a", "i"} for r in run):
            out.append("".join(run))
        else:
            out.extend(run)
        run.clear()

    for w in words:
        if len(w) == 1 and w.isalpha():
            run.append(w)
        else:
            flush()
            out.append(w)
    flush()
    return out


def _is_number_word(words: Sequence[str], i: int) -> bool:
    w = words[i]
    if w in TEENS or w in TENS or w in SCALES or w in ORDINALS:
        return True
    if w == "oh":
        return i > 0 and words[i - 1] in UNITS  # "four oh five"
    if w in UNITS:
        pronoun = w == "one" and (
            (i > 0 and words[i - 1] in ONE_AS_PRONOUN_AFTER)
            or (i + 1 < len(words) and words[i + 1] == "of")
        )
        return not pronoun
    if w == "a" and i + 1 < len(words) and words[i + 1] in SCALES:
        return True
    return w == "and" and 0 < i < len(words) - 1 and words[i - 1] in SCALES


def _standard_value(run: Sequence[str]) -> int:
    total = current = 0
    for w in run:
        if w in ("a", "and"):
            current += 1 if w == "a" else 0
        elif w in UNITS:
            current += UNITS[w]
        elif w in TEENS:
            current += TEENS[w]
        elif w in TENS:
            current += TENS[w]
        elif w in ORDINALS:
            current += ORDINALS[w]
        elif w == "hundred":
            current = max(current, 1) * 100
        else:
            total += max(current, 1) * SCALES[w]
            current = 0
    return total + current


def _segments(run: Sequence[str]) -> list[list[str]]:
    """Split colloquial runs: ``one forty nine`` -> [one] [forty nine] (a price, 149);
    ``nineteen ninety nine`` -> [nineteen] [ninety nine]; ``nine four six`` -> digits."""
    segs: list[list[str]] = []
    for w in run:
        if not segs:
            segs.append([w])
            continue
        prev = segs[-1][-1]
        starts_new = (
            (w in TENS or w in TEENS) and (prev in UNITS or prev in TEENS or prev in TENS)
        ) or (w in UNITS and (prev in UNITS or prev in TEENS))
        if starts_new and not any(s in SCALES for s in segs[-1]):
            segs.append([w])
        else:
            segs[-1].append(w)
    return segs


def _number_text(run: list[str], after_month: bool) -> str:
    if run[-1] in ORDINALS and not after_month and len(run) == 1:
        return run[0]  # "second visit", "first time": not a date
    if any(w in SCALES for w in run) or len(run) == 1:
        return str(_standard_value(run))
    segs = _segments(run)
    if len(segs) == 1:
        return str(_standard_value(segs[0]))
    parts = [str(_standard_value(segs[0]))]
    for seg in segs[1:]:
        value = _standard_value(seg)
        parts.append(str(value) if seg[0] in UNITS else f"{value:02d}")
    return "".join(parts)


def _numbers(words: list[str]) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(words):
        if not _is_number_word(words, i) or words[i] in ("and", "oh"):
            out.append(words[i])
            i += 1
            continue
        j = i
        while j < len(words) and _is_number_word(words, j):
            j += 1
        while j > i and words[j - 1] == "and":
            j -= 1
        run = words[i:j]
        if run == ["a"]:
            out.append("a")
            i += 1
            continue
        after_month = bool(out) and out[-1] in MONTHS
        out.append(_number_text(run, after_month))
        i = j
    return out


def _repair(words: list[str], vocabulary: Vocabulary) -> list[str]:
    """Merge split words the base knows (``tank less`` -> ``tankless``), and repair words the
    base does not contain by their sound (``flash`` -> ``flush``)."""
    merged: list[str] = []
    i = 0
    while i < len(words):
        if i + 1 < len(words) and words[i] + words[i + 1] in vocabulary.terms:
            merged.append(words[i] + words[i + 1])
            i += 2
            continue
        merged.append(words[i])
        i += 1
    out: list[str] = []
    for w in merged:
        # Short words have many sound-alikes, so a phonetic match is weak evidence there
        # ("need" ~ "noted", "like" ~ "line"): only words of five letters or more are repaired.
        if vocabulary.knows(w) or w in STOPWORDS or len(w) < MIN_REPAIR_LETTERS or not w.isalpha():
            out.append(w)
            continue
        match, exact = vocabulary.sound_alike(w)
        if match is None:
            out.append(w)
        elif exact:
            out.append(match)
        else:
            out.extend((w, match))
    return out


def normalize(text: str, vocabulary: Vocabulary | None = None) -> str:
    """The query as the knowledge base would have written it (lower case)."""
    words = _words(text)
    words = _drop_fillers(words)
    words = _drop_repeats(words)
    words = _phrases(words)
    words = _join_letters(words)
    words = _numbers(words)
    if vocabulary:
        words = _repair(words, vocabulary)
    return " ".join(words)


def vocabulary_terms(texts: Iterable[str], limit: int = 20_000) -> list[str]:
    """A knowledge base's words, most frequent first: what ``Vocabulary.build`` takes."""
    counts: dict[str, int] = {}
    for text in texts:
        for word in re.findall(r"[a-z]+", text.lower()):
            if len(word) >= 3 and word not in STOPWORDS:
                counts[word] = counts.get(word, 0) + 1
    return [w for w, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]]
