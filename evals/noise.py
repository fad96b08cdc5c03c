"""A speech-to-text noise model: what a caller's scripted line looks like after ASR at a chosen
word error rate (WER), so that a scenario can test the agent on imperfect transcripts.

:func:`corrupt` applies word-level errors of the kinds speech recognisers make:

* sound-alike and homophone substitutions ("their" -> "there", "write" -> "right");
* numbers: a number word written as digits or the other way ("five" <-> "5"), or misheard
  ("five" -> "fife", "fifteen" -> "fifty", "two" -> "too");
* short function words dropped ("a", "the", "to");
* words split or merged ("into" -> "in to", "all right" -> "alright");
* phone numbers regrouped ("555 123 4567" -> "5551 234 567", "five five" -> "55");
* a word's ending lost or added ("booked" -> "book", "table" -> "tables");
* fillers and repeated words inserted.

The target is met per line, by construction: a line of N words gets ``floor(wer * N + u)``
word errors (``u`` uniform in [0, 1), so the expectation is exactly ``wer * N``), and each edit
is kept only while the line's measured word edit distance (:func:`word_errors`) stays within
that budget, so the corpus WER lands on the target. Deterministic: the same text, rate and
seed give the same output.

WER here is the word-level Levenshtein distance over reference length, after lower-casing and
replacing punctuation with spaces (so "555-1234" is two words and "5" differs from "five").
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterable, Sequence

__all__ = [
    "corpus_wer",
    "corrupt",
    "normalize_words",
    "word_error_rate",
    "word_errors",
]

_WORD_SPLIT = re.compile(r"[^a-z0-9']+")


def normalize_words(text: str) -> list[str]:
    """The words WER is computed on: lower case, punctuation (but apostrophes) as spaces."""
    return [w.strip("'") for w in _WORD_SPLIT.split(text.lower()) if w.strip("'")]


def word_errors(reference: str | Sequence[str], hypothesis: str | Sequence[str]) -> int:
    """Word-level edit distance (substitutions + deletions + insertions)."""
    ref = normalize_words(reference) if isinstance(reference, str) else list(reference)
    hyp = normalize_words(hypothesis) if isinstance(hypothesis, str) else list(hypothesis)
    previous = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        current = [i]
        for j, h in enumerate(hyp, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (r != h)))
        previous = current
    return previous[-1]


def word_error_rate(reference: str, hypothesis: str) -> float:
    """WER of one transcript: word edits over reference words (0.0 for two empty texts)."""
    n = len(normalize_words(reference))
    errors = word_errors(reference, hypothesis)
    return errors / n if n else float(errors > 0)


def corpus_wer(pairs: Iterable[tuple[str, str]]) -> float:
    """WER over many (reference, hypothesis) pairs: total edits over total reference words."""
    errors = words = 0
    for reference, hypothesis in pairs:
        errors += word_errors(reference, hypothesis)
        words += len(normalize_words(reference))
    return errors / words if words else 0.0


HOMOPHONES: dict[str, tuple[str, ...]] = {
    "their": ("there", "they're"), "there": ("their",), "they're": ("their", "there"),
    "to": ("too", "two"), "too": ("to",), "for": ("four", "far"), "right": ("write", "rite"),
    "write": ("right",), "here": ("hear",), "hear": ("here",), "know": ("no", "now"),
    "no": ("know",), "new": ("knew",), "knew": ("new",), "by": ("buy", "bye"),
    "buy": ("by",), "weather": ("whether",), "whether": ("weather",), "wait": ("weight",),
    "week": ("weak",), "wear": ("where",), "where": ("wear", "were"), "were": ("where",),
    "our": ("hour", "are"), "hour": ("our",), "hours": ("ours",), "one": ("won",),
    "eight": ("ate",), "seen": ("scene",), "meet": ("meat",), "sale": ("sail",),
    "sell": ("cell",), "cell": ("sell",), "mail": ("male",), "pair": ("pear",),
    "dear": ("deer",), "flour": ("flower",), "fair": ("fare",), "fare": ("fair",),
    "it's": ("its",), "its": ("it's",), "your": ("you're",), "you're": ("your",),
    "then": ("than",), "than": ("then",), "can": ("can't",), "can't": ("can",),
    "booking": ("looking", "cooking"), "book": ("look", "cook"), "table": ("cable", "label"),
    "reservation": ("reservations", "preservation"), "appointment": ("a point meant",),
    "order": ("odor", "border"), "cancel": ("council", "counsel"), "refund": ("re fund",),
    "account": ("a count",), "address": ("a dress",), "delivery": ("deliver e",),
    "tomorrow": ("to borrow",), "today": ("to day",), "tonight": ("to night",),
    "thirty": ("thirteen", "dirty"), "thirteen": ("thirty",), "forty": ("fourteen",),
    "fourteen": ("forty",), "fifty": ("fifteen",), "fifteen": ("fifty", "fifteenth"),
    "sixty": ("sixteen",), "sixteen": ("sixty",), "seventy": ("seventeen",),
    "eighty": ("eighteen", "a tea"), "eighteen": ("eighty",), "ninety": ("nineteen",),
    "nineteen": ("ninety",), "five": ("fife", "fine"), "nine": ("nein", "mine"),
    "two": ("too", "to"), "four": ("for", "far"), "six": ("sex", "sick"), "ten": ("then",),
    "three": ("free", "tree"), "seven": ("heaven",), "zero": ("hero",), "oh": ("o",),
    "yes": ("yeah", "yet"), "yeah": ("yes",), "okay": ("ok", "o k"), "am": ("i'm",),
    "p.m.": ("pm",), "pm": ("p m",), "am.": ("a m",),
}  # fmt: skip

DIGIT_WORDS = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
    "nineteen",
)  # fmt: skip
TENS_WORDS = {
    "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70,
    "eighty": 80, "ninety": 90,
}  # fmt: skip
WORD_TO_NUMBER = {w: i for i, w in enumerate(DIGIT_WORDS)} | TENS_WORDS
NUMBER_TO_WORD = {str(v): k for k, v in WORD_TO_NUMBER.items()}

SPLITS: dict[str, tuple[str, str]] = {
    "into": ("in", "to"), "cannot": ("can", "not"), "anyone": ("any", "one"),
    "everyone": ("every", "one"), "someone": ("some", "one"), "maybe": ("may", "be"),
    "today": ("to", "day"), "tomorrow": ("to", "morrow"), "tonight": ("to", "night"),
    "alright": ("all", "right"), "weekend": ("week", "end"), "downtown": ("down", "town"),
    "something": ("some", "thing"), "anything": ("any", "thing"), "already": ("all", "ready"),
    "afternoon": ("after", "noon"), "without": ("with", "out"), "checkout": ("check", "out"),
    "online": ("on", "line"), "voicemail": ("voice", "mail"), "myself": ("my", "self"),
    "appointment": ("a", "pointment"), "another": ("an", "other"), "around": ("a", "round"),
}  # fmt: skip
MERGES: dict[tuple[str, str], str] = {(a, b): w for w, (a, b) in SPLITS.items()} | {
    ("a", "lot"): "alot", ("all", "right"): "alright", ("i", "am"): "i'm",
    ("do", "not"): "don't", ("can", "not"): "cannot", ("want", "to"): "wanna",
    ("going", "to"): "gonna", ("got", "to"): "gotta", ("kind", "of"): "kinda",
    ("let", "me"): "lemme", ("give", "me"): "gimme", ("what", "is"): "what's",
}  # fmt: skip
SHORT_WORDS = frozenset((
    "a", "an", "the", "to", "of", "and", "or", "in", "on", "at", "is", "it", "i", "um", "uh",
    "so", "that", "for", "with", "my", "me", "be",
))  # fmt: skip
FILLERS = ("um", "uh", "uh huh", "like", "so", "hmm")
SUFFIXES = ("s", "ed", "ing")


class _Line:
    """A line's tokens, each with whether an edit already touched it."""

    def __init__(self, text: str) -> None:
        self.tokens: list[str] = text.split()
        self.touched: list[bool] = [False] * len(self.tokens)

    def text(self) -> str:
        return " ".join(t for t in self.tokens if t)

    def copy(self) -> _Line:
        line = _Line("")
        line.tokens, line.touched = list(self.tokens), list(self.touched)
        return line

    def replace(self, start: int, end: int, new: Sequence[str]) -> None:
        self.tokens[start:end] = list(new)
        self.touched[start:end] = [True] * len(new)


def _core(token: str) -> tuple[str, str, str]:
    """(leading punctuation, the word in lower case, trailing punctuation)."""
    m = re.match(r"^(\W*)(.*?)(\W*)$", token)
    assert m is not None
    return m.group(1), m.group(2).lower(), m.group(3)


def _cased(original: str, word: str) -> str:
    lead, core, trail = _core(original)
    stripped = original.strip('.,!?;:"()')
    if stripped[:1].isupper() and word[:1].isalpha():
        word = word[:1].upper() + word[1:]
    return f"{lead}{word}{trail}" if core else word


Edit = Callable[[_Line, int, random.Random], bool]


def _substitute(line: _Line, i: int, rng: random.Random) -> bool:
    _, word, _ = _core(line.tokens[i])
    if word in HOMOPHONES:
        line.replace(i, i + 1, [_cased(line.tokens[i], rng.choice(HOMOPHONES[word]))])
        return True
    return False


def _number(line: _Line, i: int, rng: random.Random) -> bool:
    _, word, _ = _core(line.tokens[i])
    if word in WORD_TO_NUMBER:
        new = str(WORD_TO_NUMBER[word])
    elif word in NUMBER_TO_WORD:
        new = NUMBER_TO_WORD[word]
    else:
        return False
    line.replace(i, i + 1, [_cased(line.tokens[i], new)])
    return True


def _delete_short(line: _Line, i: int, rng: random.Random) -> bool:
    _, word, _ = _core(line.tokens[i])
    if word in SHORT_WORDS or (len(word) <= 3 and word.isalpha() and rng.random() < 0.5):
        line.replace(i, i + 1, [])
        return True
    return False


def _split(line: _Line, i: int, rng: random.Random) -> bool:
    _, word, _ = _core(line.tokens[i])
    if word in SPLITS:
        first, second = SPLITS[word]
        line.replace(i, i + 1, [_cased(line.tokens[i], first), second])
        return True
    return False


def _merge(line: _Line, i: int, rng: random.Random) -> bool:
    if i + 1 >= len(line.tokens) or line.touched[i + 1]:
        return False
    _, first, trail = _core(line.tokens[i])
    _, second, _ = _core(line.tokens[i + 1])
    if trail or (first, second) not in MERGES:
        return False
    line.replace(i, i + 2, [_cased(line.tokens[i + 1], MERGES[(first, second)])])
    return True


def _digits(line: _Line, i: int, rng: random.Random) -> bool:
    """Regroup a phone number's digits ("555-123-4567" -> "5551-234-567"), run two digit
    groups together ("555 0132" -> "5550132"), or fuse two spoken digits ("five five" -> "55").
    """
    token = line.tokens[i]
    groups = re.findall(r"\d+", token)
    digits = "".join(groups)
    if len(digits) >= 7 and re.fullmatch(r"[\d-]+[.,]?", token):
        k = rng.choice((1, 2))
        cuts = sorted(rng.sample(range(2, len(digits) - 1), k=k))
        parts = [digits[a:b] for a, b in zip([0, *cuts], [*cuts, len(digits)], strict=True)]
        if parts == groups:
            return False
        line.replace(i, i + 1, [rng.choice(("-", " ")).join(parts)])
        return True
    if i + 1 >= len(line.tokens) or line.touched[i + 1]:
        return False
    following = line.tokens[i + 1]
    if re.fullmatch(r"\d{2,4}", token) and re.fullmatch(r"\d{2,4}[.,]?", following):
        line.replace(i, i + 2, [token + following])
        return True
    _, word, _ = _core(token)
    _, second, trail = _core(following)
    a, b = WORD_TO_NUMBER.get(word), WORD_TO_NUMBER.get(second)
    if a is not None and b is not None and a < 10 and b < 10:
        line.replace(i, i + 2, [f"{a}{b}{trail}"])
        return True
    return False


def _ending(line: _Line, i: int, rng: random.Random) -> bool:
    """A word's ending lost ("booked" -> "book") or a plural "s" heard that was not said."""
    _, word, _ = _core(line.tokens[i])
    if not word.isalpha() or len(word) < 4 or word in WORD_TO_NUMBER or word in SPLITS:
        return False
    for suffix in SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            new = word[: -len(suffix)]
            break
    else:
        if word.endswith(("e", "y", "h", "x", "z")):
            return False
        new = word + "s"
    line.replace(i, i + 1, [_cased(line.tokens[i], new)])
    return True


def _insert(line: _Line, i: int, rng: random.Random) -> bool:
    """A filler before the word, or the word said twice."""
    if rng.random() < 0.5:
        filler = rng.choice([f for f in FILLERS if " " not in f])
        line.replace(i, i, [filler])
    else:
        lead, word, trail = _core(line.tokens[i])
        if not word:
            return False
        line.replace(i, i, [line.tokens[i][len(lead) : len(line.tokens[i]) - len(trail)]])
    return True


EDITS: tuple[tuple[Edit, float], ...] = (
    (_substitute, 4.0),
    (_number, 3.0),
    (_digits, 2.0),
    (_delete_short, 2.5),
    (_split, 2.0),
    (_merge, 1.5),
    (_ending, 1.5),
    (_insert, 1.5),
)
"""Each kind of edit with its weight; a kind that does not apply to a word is skipped."""


def _weighted_order(kinds: list[Edit], weights: list[float], rng: random.Random) -> list[Edit]:
    """The kinds of edit in a random order, heavier ones likelier to come first."""
    keys = [rng.random() ** (1.0 / w) for w in weights]
    return [k for _, k in sorted(zip(keys, kinds, strict=True), key=lambda p: -p[0])]


def corrupt(text: str, wer: float, seed: int | str = 0) -> str:
    """``text`` as an ASR transcript with about ``wer`` word error rate (see the module doc).

    Deterministic for (text, wer, seed). ``wer`` is in [0, 1]; 0 returns the text unchanged.
    """
    if not 0.0 <= wer <= 1.0:
        raise ValueError(f"wer must be within [0, 1], got {wer}")
    reference = normalize_words(text)
    if wer == 0.0 or not reference:
        return text
    rng = random.Random(f"{seed}\x00{wer}\x00{text}")
    budget = min(len(reference), int(wer * len(reference) + rng.random()))
    line = _Line(text)
    errors = 0
    attempts = 0
    kinds = [edit for edit, _ in EDITS]
    weights = [w for _, w in EDITS]
    while errors < budget and attempts < 10 * (budget + 2):
        attempts += 1
        free = [i for i, t in enumerate(line.touched) if not t]
        if not free:
            break
        i = rng.choice(free)
        for edit in _weighted_order(kinds, weights, rng):
            trial = line.copy()
            if not edit(trial, i, rng):
                continue
            measured = word_errors(reference, trial.text())
            if errors < measured <= budget:
                line, errors = trial, measured
                break
    if errors < budget:  # rare: every kind tried missed; fall back to plain substitutions
        for i in [i for i, t in enumerate(line.touched) if not t]:
            trial = line.copy()
            if not _ending(trial, i, rng) and not _insert(trial, i, rng):
                continue
            measured = word_errors(reference, trial.text())
            if errors < measured <= budget:
                line, errors = trial, measured
            if errors >= budget:
                break
    return line.text()
