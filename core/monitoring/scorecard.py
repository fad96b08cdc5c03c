"""The deterministic per-call quality scorecard: four layers (infrastructure, agent execution,
caller reaction, business outcome).

A pure function of its argument, a ``CallEvidence`` (the ``CallEnded`` event plus what the call
recorded: context fetches, tool invocations, retrievals, memory facts, the prompt version's
compliance checks) or a bare ``CallEnded``: no clock, no randomness, no model, no I/O, so a
replayed post-call workflow re-derives the exact same card. It must never call an LLM or read
anything but its argument; LLM-judged quality belongs elsewhere and is recorded separately.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field

from core.calls.events import CallEnded, Turn

WEIGHTS: dict[str, float] = {
    "completion": 0.35,
    "escalation": 0.15,
    "talk_ratio": 0.15,
    "latency": 0.15,
    "frustration": 0.20,
}

LATENCY_FULL_MS = 800.0
LATENCY_ZERO_MS = 4000.0
TALK_RATIO_BEST = (0.35, 0.60)
TALK_RATIO_ZERO = (0.05, 0.95)
NEAR_SILENT_WORDS = 20
FRUSTRATION_PENALTY = 0.25
HUMAN_REQUEST_PENALTY = 0.2
TRANSFER_PENALTY = 0.6


# The evidence parts join the five above only when the call's evidence was gathered
# (``CallEvidence.gathered``), and only when measurable (a part with nothing to measure, such as
# grounding in a call whose agent stated no number or name, is left out); the weights of the
# parts present are renormalized to sum to 1, so a bare ``CallEnded`` scores exactly as before.
EVIDENCE_WEIGHTS: dict[str, float] = {
    "context_fetch": 0.05,
    "tools": 0.10,
    "grounding": 0.15,
    "compliance": 0.10,
    "repetition": 0.05,
    "monologue": 0.05,
    "interruptions": 0.05,
}

LAYER_OF: dict[str, str] = {
    "latency": "infrastructure",
    "context_fetch": "infrastructure",
    "tools": "infrastructure",
    "talk_ratio": "execution",
    "grounding": "execution",
    "compliance": "execution",
    "repetition": "execution",
    "monologue": "execution",
    "frustration": "reaction",
    "interruptions": "reaction",
    "completion": "outcome",
    "escalation": "outcome",
}
LAYERS = ("infrastructure", "execution", "reaction", "outcome")

CONTEXT_FULL_MS = 300.0
CONTEXT_ZERO_MS = 2000.0
TOOL_LATENCY_FULL_MS = 1000.0
TOOL_LATENCY_ZERO_MS = 5000.0
MONOLOGUE_FULL_WORDS = 60
MONOLOGUE_ZERO_WORDS = 200
REPETITION_PENALTY = 0.34
REPETITION_MIN_WORDS = 4
REPETITION_SIMILARITY = 0.8
INTERRUPTION_PENALTY = 0.15
MAX_LISTED_CLAIMS = 10

# Tool statuses whose answer to the caller is the tool's fallback message.
FALLBACK_STATUSES = frozenset(
    {"timeout", "breaker_open", "unavailable", "malformed_result", "rate_limited"}
)


@dataclass(frozen=True)
class ToolUse:
    """One tool invocation the call made (a ``tool_call`` event)."""

    name: str
    status: str
    ok: bool
    latency_ms: float | None = None
    result: str = ""  # the (redacted) answer: evidence for what the agent says next

    @property
    def fallback_spoken(self) -> bool:
        return not self.ok and self.status in FALLBACK_STATUSES


@dataclass(frozen=True)
class Retrieval:
    """One knowledge retrieval (a ``knowledge_retrieval`` event) and the texts it served."""

    chunk_texts: tuple[str, ...] = ()
    stale_hits: int = 0  # chunks withheld as outdated, or served while their source fails


@dataclass(frozen=True)
class ComplianceCheck:
    """A check a prompt version declares: ``must_say`` (some agent turn matches) or
    ``must_not_say`` (no agent turn matches); patterns are case-insensitive regexes."""

    name: str
    must_say: str | None = None
    must_not_say: str | None = None


@dataclass(frozen=True)
class CallEvidence:
    """What the scorecard judges: the end-of-call event and what the call recorded.

    ``gathered`` is False for a bare ``CallEnded`` (nothing but the event is known): the
    evidence parts are then reported where the transcript allows but left out of the score.
    ``instructions`` is what the agent was told (the served version's prompt and first
    message): a number stated there is grounded too.
    """

    ended: CallEnded
    context_fetch_ms: tuple[float, ...] = ()
    tools: tuple[ToolUse, ...] = ()
    retrievals: tuple[Retrieval, ...] = ()
    memory_facts: tuple[str, ...] = ()
    compliance: tuple[ComplianceCheck, ...] = ()
    instructions: tuple[str, ...] = ()
    prompt_version: str | None = None
    gathered: bool = True


class Scorecard(BaseModel):
    score: float
    parts: dict[str, float]
    notes: list[str]
    layers: dict[str, dict[str, Any]] = Field(default_factory=dict)
    metrics: dict[str, Any] = Field(default_factory=dict)


_ERROR_REASON = re.compile(r"error|fail|pipeline|exception|crash")
_SILENCE_REASON = re.compile(
    r"silence|timed-out|timeout|inactivity|no-answer|busy|voicemail|max-duration|"
    r"exceeded|did-not-answer|dial-|no-input|not-give"
)
_TRANSFER_REASON = re.compile(r"forward|transfer")
_NORMAL_REASON = re.compile(
    r"customer-ended|assistant-ended|user-hangup|agent-hangup|hangup|hung-up|completed|"
    r"end-call-phrase|said-end-call|ended-call"
)

_HUMAN_REQUEST = re.compile(
    r"\b(?:speak|talk|transfer me|connect me|put me through)\b[^.?!]{0,30}?"
    r"\b(?:human|person|agent|manager|supervisor|representative|rep|operator|someone real)\b"
    r"|\breal (?:person|human)\b|\b(?:representative|operator)\b[.!?]*$"
)

_FRUSTRATION_CUES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (label, re.compile(pattern))
    for label, pattern in (
        ("ridiculous", r"\bridiculous\b"),
        ("not what I asked", r"\bnot what i (?:asked|said|wanted|meant)\b"),
        ("not listening", r"\bare you (?:even )?listening\b|\byou(?:'re| are) not listening\b"),
        (
            "asked for a human",
            r"\b(?:speak|talk) (?:to|with) (?:a |an )?(?:real )?(?:human|person)",
        ),
        (
            "repeating themselves",
            r"\bi (?:already )?(?:told|said) (?:you|that)\b|\bhow many times\b",
        ),
        ("frustrated", r"\b(?:frustrat\w*|annoy\w*|unacceptable|useless|pointless|waste of)"),
        ("not understood", r"\byou(?: don't|'re not| do not| are not) (?:understand|getting it)"),
        (
            "profanity",
            r"\b(?:damn\w*|hell|crap\w*|wtf|bs|bullshit|shit\w*|fuck\w*|stupid|pissed)\b",
        ),
    )
)
_HELLO_PROBE = re.compile(r"\bhello\s*\?")


def _words(turns: list[Turn], role: str) -> int:
    return sum(len(t.text.split()) for t in turns if t.role == role)


def _completion(ended: CallEnded, notes: list[str]) -> float:
    if ended.platform_success is not None:
        notes.append(f"completion from the platform's success flag ({ended.platform_success})")
        return 1.0 if ended.platform_success else 0.0
    reason = (ended.ended_reason or "").lower().replace("_", "-")
    said = ended.platform_ended_reason or ended.ended_reason
    # Error beats everything else: "pipeline-error-... customer-ended" is still a failure.
    if not reason:
        notes.append("no ended reason reported: completion scored neutral")
        value = 0.5
    elif _ERROR_REASON.search(reason):
        notes.append(f"call ended on an error ({said})")
        value = 0.0
    elif _SILENCE_REASON.search(reason):
        notes.append(f"call ended on silence or a timeout ({said})")
        value = 0.25
    elif _TRANSFER_REASON.search(reason):
        value = 0.6
    elif _NORMAL_REASON.search(reason):
        value = 1.0
    else:
        notes.append(f"unrecognized ended reason ({said}): completion neutral")
        value = 0.5
    if not any(t.role == "caller" and t.text.strip() for t in ended.turns):
        notes.append("the caller never spoke")
        value = min(value, 0.25)
    return value


def _escalation(ended: CallEnded, notes: list[str]) -> float:
    value = 1.0
    reason = (ended.ended_reason or "").lower()
    if ended.transferred or _TRANSFER_REASON.search(reason):
        notes.append("call was transferred to a human")
        value -= TRANSFER_PENALTY
    requests = sum(
        1 for t in ended.turns if t.role == "caller" and _HUMAN_REQUEST.search(t.text.lower())
    )
    if requests:
        notes.append(f"caller asked for a human {requests} time(s)")
        value -= HUMAN_REQUEST_PENALTY * requests
    return max(0.0, value)


def _talk_ratio(ended: CallEnded, notes: list[str]) -> float:
    agent = _words(ended.turns, "agent")
    total = agent + _words(ended.turns, "caller")
    if total == 0:
        notes.append("no words were exchanged")
        return 0.0
    ratio = agent / total
    low_best, high_best = TALK_RATIO_BEST
    low_zero, high_zero = TALK_RATIO_ZERO
    if ratio < low_best:
        value = max(0.0, (ratio - low_zero) / (low_best - low_zero))
    elif ratio > high_best:
        value = max(0.0, (high_zero - ratio) / (high_zero - high_best))
    else:
        value = 1.0
    if value < 1.0:
        side = "monologue" if ratio > high_best else "near-silent agent"
        notes.append(f"agent talk ratio {ratio:.2f} ({side})")
    if total < NEAR_SILENT_WORDS:
        notes.append(f"near-silent call ({total} words)")
        value *= total / NEAR_SILENT_WORDS
    return value


def _latency(ended: CallEnded, notes: list[str]) -> float | None:
    if ended.turn_latency_ms is None:
        notes.append("turn latency not reported: latency left out and the weights renormalized")
        return None
    ms = ended.turn_latency_ms
    if ms > LATENCY_FULL_MS:
        notes.append(f"turn latency {ms:.0f} ms is above {LATENCY_FULL_MS:.0f} ms")
    span = LATENCY_ZERO_MS - LATENCY_FULL_MS
    return min(1.0, max(0.0, (LATENCY_ZERO_MS - ms) / span))


def _frustration(ended: CallEnded, notes: list[str]) -> float:
    hits: list[str] = []
    hellos = 0
    for turn in ended.turns:
        if turn.role != "caller":
            continue
        text = turn.text.lower().replace("\u2019", "'")
        for label, pattern in _FRUSTRATION_CUES:
            hits.extend(label for _ in pattern.finditer(text))
        hellos += len(_HELLO_PROBE.findall(text))
    # One "hello?" opens a call; each further one means the caller thinks nobody is there.
    hits.extend("repeated hello" for _ in range(max(0, hellos - 1)))
    if hits:
        notes.append(f"caller frustration cues: {', '.join(hits)}")
    return max(0.0, 1.0 - FRUSTRATION_PENALTY * len(hits))


# -- grounding ------------------------------------------------------------------------------

_UNITS = {
    "zero": 0, "oh": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
    "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13,
    "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18,
    "nineteen": 19,
}  # fmt: skip
_TENS = {
    "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70,
    "eighty": 80, "ninety": 90,
}  # fmt: skip
_NUMBER_WORD = "|".join(sorted([*_UNITS, *_TENS, "hundred"], key=len, reverse=True))
_NUMBER_PHRASE = re.compile(
    rf"\b(?:{_NUMBER_WORD})(?:[\s-]+(?:and[\s-]+)?(?:{_NUMBER_WORD}))*\b", re.IGNORECASE
)
# In the agent's own words a number word is a claim only with a unit or as a compound ("twenty
# five"): "one moment" or "no one" state nothing.
_CLAIM_UNIT = re.compile(
    r"^\s*(?:dollars?|bucks|cents?|percent|%|am|pm|a\.m\.|p\.m\.|o'?clock|minutes?|hours?|"
    r"days?|weeks?|months?|years?|euros?|pounds?)\b",
    re.IGNORECASE,
)
_TIME = re.compile(
    r"\b(\d{1,2})(?::(\d{2}))?\s*(a\.?m\.?|p\.?m\.?|o'?clock)(?![a-z])|\b(\d{1,2}):(\d{2})\b",
    re.IGNORECASE,
)
_NUMBER = re.compile(r"\d+(?:,\d{3})*(?:\.\d+)?")
_NAME = re.compile(r"\b[A-Z][a-zA-Z'&.-]*[a-z][a-zA-Z'&-]*(?:\s+[A-Z][a-zA-Z'&.-]*[a-zA-Z])+")
# Capitalized only because they open a sentence or greet: never part of a named entity.
_NAME_STOP = frozenset(
    {
        "a", "an", "and", "are", "at", "but", "can", "could", "did", "do", "does", "for", "good",
        "great", "hello", "hi", "how", "i", "if", "in", "is", "it", "it's", "i'm", "i'll", "let",
        "may", "my", "no", "of", "oh", "ok", "okay", "on", "or", "our", "perfect", "please", "so",
        "sorry", "sure", "thank", "thanks", "that", "the", "then", "there", "this", "to", "we",
        "we're", "what", "when", "where", "which", "who", "why", "will", "with", "yes", "you",
        "your", "you're", "dear", "mr", "mrs", "ms", "dr",
    }
)  # fmt: skip


_SENTENCE_END = re.compile(r"[.!?:;]\s*$")


def _words_to_number(phrase: str) -> int | None:
    total, current = 0, 0
    for word in re.split(r"[\s-]+", phrase.lower()):
        if word == "and" or not word:
            continue
        if word in _UNITS:
            current += _UNITS[word]
        elif word in _TENS:
            current += _TENS[word]
        elif word == "hundred":
            current = max(current, 1) * 100
        else:
            return None
    return total + current


def _spell_numbers(text: str, *, claims_only: bool) -> str:
    """Number words as digits; with ``claims_only``, only compounds or numbers with a unit."""

    def repl(m: re.Match[str]) -> str:
        phrase = m.group(0)
        compound = len(re.split(r"[\s-]+", phrase.strip())) > 1
        if claims_only and not compound and not _CLAIM_UNIT.match(text[m.end() :]):
            return phrase
        value = _words_to_number(phrase)
        return phrase if value is None else str(value)

    return _NUMBER_PHRASE.sub(repl, text)


def _time_key(hour: str, minute: str | None) -> str:
    h = int(hour) % 12 or 12
    return f"{h}:{int(minute or 0):02d}"


def _numeric_keys(text: str, *, claims_only: bool) -> list[str]:
    """Times as ``h:mm`` on a 12-hour clock ("9am", "9:00", "21:00" and "nine o'clock" agree),
    every other number without separators, trailing zeros or currency ("$25" ~ "25 dollars")."""
    text = _spell_numbers(text.replace("\u2019", "'"), claims_only=claims_only)
    keys: list[str] = []
    rest: list[str] = []
    last = 0
    for m in _TIME.finditer(text):
        if m.group(1) is not None:
            keys.append(_time_key(m.group(1), m.group(2)))
        else:
            keys.append(_time_key(m.group(4), m.group(5)))
        rest.append(text[last : m.start()])
        last = m.end()
    rest.append(text[last:])
    for chunk in rest:
        for m in _NUMBER.finditer(chunk):
            value = m.group(0).replace(",", "")
            if "." in value:
                value = value.rstrip("0").rstrip(".")
            keys.append(value.lstrip("0") or "0")
    return keys


def _name_claims(text: str) -> list[str]:
    names: list[str] = []
    for m in _NAME.finditer(text):
        words = m.group(0).split()
        stripped = 0
        while words and words[0].lower().strip(".") in _NAME_STOP:
            words.pop(0)
            stripped += 1
        opens_sentence = not text[: m.start()].strip() or bool(
            _SENTENCE_END.search(text[: m.start()])
        )
        if opens_sentence and not stripped and len(words) >= 3:
            # "Unfortunately Sarah Lee...": the first word is capitalized by the sentence.
            words.pop(0)
        if len(words) >= 2:
            names.append(" ".join(words))
    return names


def _flat(text: str) -> str:
    return " ".join(re.sub(r"[^\w'&]+", " ", text.lower().replace("\u2019", "'")).split())


@dataclass(frozen=True)
class Grounding:
    claims: int
    grounded: int
    ungrounded: tuple[str, ...]

    @property
    def ratio(self) -> float:
        return 1.0 if self.claims == 0 else self.grounded / self.claims


def extract_claims(text: str) -> list[tuple[str, str]]:
    """(kind, claim) pairs an agent turn states: ``number`` keys (times, prices, dates,
    quantities; see ``_numeric_keys``) and capitalized multiword ``name``s."""
    claims = [("number", k) for k in _numeric_keys(text, claims_only=True)]
    claims.extend(("name", n) for n in _name_claims(text))
    return claims


def ground(agent_texts: list[str], evidence_texts: list[str]) -> Grounding:
    """Each number and name the agent stated, checked against the evidence (retrieved chunks,
    tool results, memory facts, the prompt, the caller's own words)."""
    numbers: set[str] = set()
    for text in evidence_texts:
        numbers.update(_numeric_keys(text, claims_only=False))
    flat_evidence = " " + " ".join(_flat(t) for t in evidence_texts) + " "
    total, grounded = 0, 0
    missing: list[str] = []
    for text in agent_texts:
        for kind, claim in extract_claims(text):
            total += 1
            ok = claim in numbers if kind == "number" else f" {_flat(claim)} " in flat_evidence
            if ok:
                grounded += 1
            elif claim not in missing:
                missing.append(claim)
    return Grounding(total, grounded, tuple(missing))


# -- execution: repetition, monologues ------------------------------------------------------


def _runs(turns: list[Turn]) -> list[tuple[str, str]]:
    """Consecutive turns of one speaker merged: a platform may split one answer in pieces."""
    runs: list[tuple[str, str]] = []
    for t in turns:
        text = t.text.strip()
        if not text:
            continue
        if runs and runs[-1][0] == t.role:
            runs[-1] = (t.role, f"{runs[-1][1]} {text}")
        else:
            runs.append((t.role, text))
    return runs


def repeated_turns(agent_texts: list[str]) -> int:
    """Agent turns (of 4+ words) that say again what an earlier agent turn said: their sets
    of words overlap with an earlier turn's by a Jaccard similarity of 0.8 or more."""
    seen: list[set[str]] = []
    repeats = 0
    for text in agent_texts:
        words = _flat(text).split()
        if len(words) < REPETITION_MIN_WORDS:
            continue
        grams = set(words)
        if any(len(grams & s) / len(grams | s) >= REPETITION_SIMILARITY for s in seen):
            repeats += 1
        seen.append(grams)
    return repeats


_CUT_OFF = re.compile(r"(?:-|\u2014|\u2013|\.\.\.|\u2026)\s*$")
_TERMINAL = re.compile(r"[.!?\"')\]]\s*$")


def interruptions(turns: list[Turn]) -> int:
    """Agent turns the caller cut into: an agent turn ending mid-sentence (a dash, an
    ellipsis, or no closing punctuation) right before a caller turn, and caller turns that end
    cut off themselves (a dash or an ellipsis)."""
    runs = _runs(turns)
    count = 0
    for i, (role, text) in enumerate(runs):
        if role == "caller":
            count += bool(_CUT_OFF.search(text))
        elif i + 1 < len(runs) and (_CUT_OFF.search(text) or not _TERMINAL.search(text)):
            count += 1
    return count


def _compliance(
    checks: tuple[ComplianceCheck, ...], agent_texts: list[str]
) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    for check in checks:
        if check.must_say is not None:
            pattern = re.compile(check.must_say, re.IGNORECASE)
            passed = any(pattern.search(t) for t in agent_texts)
            rule = "must_say"
        else:
            pattern = re.compile(check.must_not_say or "(?!)", re.IGNORECASE)
            passed = not any(pattern.search(t) for t in agent_texts)
            rule = "must_not_say"
        results.append({"name": check.name, "rule": rule, "passed": passed})
    return results


def _linear(value: float, full: float, zero: float) -> float:
    return min(1.0, max(0.0, (zero - value) / (zero - full)))


def p95(values: list[float]) -> float | None:
    """Nearest-rank 95th percentile."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def _infrastructure(ev: CallEvidence, notes: list[str]) -> tuple[dict[str, Any], dict[str, float]]:
    tools = ev.tools
    failures = sum(not t.ok for t in tools)
    fallbacks = sum(t.fallback_spoken for t in tools)
    latencies = [t.latency_ms for t in tools if t.latency_ms is not None]
    tool_p95 = p95(latencies)
    context_ms = max(ev.context_fetch_ms) if ev.context_fetch_ms else None
    reason = ev.ended.ended_reason
    layer: dict[str, Any] = {
        "turn_latency_ms": ev.ended.turn_latency_ms,
        "context_fetch_ms": context_ms,
        "tool_calls": len(tools),
        "tool_failures": failures,
        "tool_p95_ms": tool_p95,
        "fallbacks_spoken": fallbacks,
        "failed_tools": sorted({t.name for t in tools if not t.ok}),
        "call_error": reason == "error",
        "stale_hits": sum(r.stale_hits for r in ev.retrievals),
    }
    parts: dict[str, float] = {}
    if not ev.gathered:
        return layer, parts
    if context_ms is not None:
        parts["context_fetch"] = _linear(context_ms, CONTEXT_FULL_MS, CONTEXT_ZERO_MS)
        if context_ms > CONTEXT_FULL_MS:
            notes.append(f"context fetch took {context_ms:.0f} ms")
    if tools:
        latency = (
            1.0
            if tool_p95 is None
            else _linear(tool_p95, TOOL_LATENCY_FULL_MS, TOOL_LATENCY_ZERO_MS)
        )
        parts["tools"] = 0.7 * (1 - failures / len(tools)) + 0.3 * latency
        if failures:
            notes.append(
                f"{failures} of {len(tools)} tool call(s) failed "
                f"({', '.join(layer['failed_tools'])}); {fallbacks} fallback(s) spoken"
            )
        if tool_p95 is not None and tool_p95 > TOOL_LATENCY_FULL_MS:
            notes.append(f"tool latency p95 {tool_p95:.0f} ms")
    if layer["stale_hits"]:
        notes.append(f"{layer['stale_hits']} outdated knowledge chunk(s) met")
    return layer, parts


def _execution(ev: CallEvidence, notes: list[str]) -> tuple[dict[str, Any], dict[str, float]]:
    runs = _runs(ev.ended.turns)
    agent_texts = [text for role, text in runs if role == "agent"]
    agent_words = [len(t.split()) for t in agent_texts]
    repeats = repeated_turns(agent_texts)
    longest = max(agent_words, default=0)
    layer: dict[str, Any] = {
        "words_per_agent_turn": round(sum(agent_words) / len(agent_words), 2)
        if agent_words
        else 0.0,
        "repeated_agent_turns": repeats,
        "longest_monologue_words": longest,
        "claims": None,
        "grounded": None,
        "grounded_ratio": None,
        "all_grounded": None,
        "ungrounded": [],
        "compliance": [],
    }
    parts: dict[str, float] = {}
    if not ev.gathered:
        return layer, parts
    evidence = [c for r in ev.retrievals for c in r.chunk_texts]
    evidence += [t.result for t in ev.tools if t.result]
    evidence += list(ev.memory_facts) + list(ev.instructions)
    evidence += [text for role, text in runs if role == "caller"]
    grounding = ground(agent_texts, evidence)
    layer.update(
        claims=grounding.claims,
        grounded=grounding.grounded,
        grounded_ratio=round(grounding.ratio, 4),
        all_grounded=grounding.grounded == grounding.claims,
        ungrounded=list(grounding.ungrounded[:MAX_LISTED_CLAIMS]),
    )
    if grounding.claims:
        parts["grounding"] = grounding.ratio
        if grounding.ungrounded:
            shown = ", ".join(grounding.ungrounded[:MAX_LISTED_CLAIMS])
            notes.append(
                f"{grounding.claims - grounding.grounded} of {grounding.claims} stated "
                f"numbers/names not found in the call's evidence: {shown}"
            )
    results = _compliance(ev.compliance, agent_texts)
    layer["compliance"] = results
    if results:
        parts["compliance"] = sum(r["passed"] for r in results) / len(results)
        failed = [r["name"] for r in results if not r["passed"]]
        if failed:
            notes.append(f"prompt compliance checks failed: {', '.join(failed)}")
    parts["repetition"] = max(0.0, 1.0 - REPETITION_PENALTY * repeats)
    if repeats:
        notes.append(f"the agent repeated itself {repeats} time(s)")
    parts["monologue"] = _linear(longest, MONOLOGUE_FULL_WORDS, MONOLOGUE_ZERO_WORDS)
    if longest > MONOLOGUE_FULL_WORDS:
        notes.append(f"longest agent monologue {longest} words")
    return layer, parts


def _reaction(ev: CallEvidence, notes: list[str]) -> tuple[dict[str, Any], dict[str, float]]:
    caller = [t.text.lower() for t in ev.ended.turns if t.role == "caller"]
    cut = interruptions(ev.ended.turns)
    layer: dict[str, Any] = {
        "human_requests": sum(1 for text in caller if _HUMAN_REQUEST.search(text)),
        "interruptions": cut,
    }
    parts: dict[str, float] = {}
    if ev.gathered:
        parts["interruptions"] = max(0.0, 1.0 - INTERRUPTION_PENALTY * cut)
        if cut:
            notes.append(f"{cut} interrupted turn(s)")
    return layer, parts


def _outcome(ev: CallEvidence) -> dict[str, Any]:
    ended = ev.ended
    transferred = ended.transferred or ended.ended_reason == "transferred"
    return {
        "end_reason": ended.ended_reason,
        "platform_success": ended.platform_success,
        "transferred": transferred,
        "contained": not transferred,
    }


def _layer_score(parts: dict[str, float]) -> float | None:
    weights = {**WEIGHTS, **EVIDENCE_WEIGHTS}
    total = sum(weights[p] for p in parts)
    if not total:
        return None
    return round(sum(weights[p] * v for p, v in parts.items()) / total, 4)


def score_call(evidence: CallEvidence | CallEnded) -> Scorecard:
    """Score one finished call from 0 to 100, with a four-layer card.

    ``parts`` keeps the five original parts, each 0..1 and weighted:

    - ``completion`` (0.35): ``platform_success`` when the platform reports it (1 or 0);
      otherwise the ended reason: normal hang-ups by either side 1.0, transfers 0.6, unknown
      or missing 0.5, silence/timeouts/no-answer 0.25, errors (assistant-error, pipeline
      errors) 0. Capped at 0.25 when the caller never spoke.
    - ``escalation`` (0.15): 1.0, minus 0.6 when the call was transferred (flag, or a reason
      mentioning forward/transfer), minus 0.2 per caller turn asking for a human, manager or
      representative; floored at 0.
    - ``talk_ratio`` (0.15): agent words / all words; 1.0 between 0.35 and 0.60, falling
      linearly to 0 at 0.05 (near-silent agent) and 0.95 (monologue); scaled down further
      when the whole call has under 20 words.
    - ``latency`` (0.15): ``turn_latency_ms`` at or under 800 ms is 1.0, falling linearly to
      0 at 4000 ms. When not reported the part is left out and the other weights are
      renormalized to sum to 1 (a note says so).
    - ``frustration`` (0.20): 1.0 minus 0.25 per caller frustration cue ("this is
      ridiculous", "not what I asked", "are you even listening", "speak to a human", mild
      profanity, each "hello?" after the first...); floored at 0. Asking for a human counts
      here and in ``escalation`` on purpose: it is both a containment miss and a sign of
      frustration.

    With gathered evidence, ``EVIDENCE_WEIGHTS`` parts join them (each when measurable):
    ``context_fetch`` (slowest context fetch, 1.0 at or under 300 ms, 0 at 2000 ms),
    ``tools`` (0.7 x the share of tool calls that succeeded + 0.3 x the p95 tool latency, 1.0
    at or under 1000 ms, 0 at 5000 ms), ``grounding`` (the share of stated numbers and names
    found in the evidence), ``compliance`` (the share of the version's checks passed),
    ``repetition`` (1.0 minus 0.34 per repeated agent turn), ``monologue`` (longest agent
    turn, 1.0 at or under 60 words, 0 at 200) and ``interruptions`` (1.0 minus 0.15 per
    interrupted turn). All parts present are renormalized, so the score stays in 0..100.

    ``layers`` groups the parts and their raw measures: ``infrastructure`` (latency, context
    fetch, tools), ``execution`` (talk ratio, grounding, compliance, repetition, monologue),
    ``reaction`` (frustration, human requests, interruptions) and ``outcome`` (completion,
    escalation, containment, end reason); each has a ``score`` (0..1, the weighted mean of its
    parts present, None when it has none) and its ``parts``. ``metrics`` holds the per-call
    numbers the drift monitor and the per-version aggregates read.
    """
    ev = evidence if isinstance(evidence, CallEvidence) else CallEvidence(evidence, gathered=False)
    ended = ev.ended
    notes: list[str] = []
    values: dict[str, float | None] = {
        "completion": _completion(ended, notes),
        "escalation": _escalation(ended, notes),
        "talk_ratio": _talk_ratio(ended, notes),
        "latency": _latency(ended, notes),
        "frustration": _frustration(ended, notes),
    }
    present = {name: v for name, v in values.items() if v is not None}
    infra, infra_parts = _infrastructure(ev, notes)
    execution, exec_parts = _execution(ev, notes)
    reaction, reaction_parts = _reaction(ev, notes)
    outcome = _outcome(ev)
    extra = {**infra_parts, **exec_parts, **reaction_parts}
    every = {**present, **extra}
    weights = {**WEIGHTS, **EVIDENCE_WEIGHTS}
    weight = sum(weights[name] for name in every)
    score = round(100.0 * sum(weights[n] * v for n, v in every.items()) / weight, 2)
    parts = {name: round(v, 4) for name, v in present.items()}
    parts["score"] = score
    layers: dict[str, dict[str, Any]] = {}
    for name, measures in zip(LAYERS, (infra, execution, reaction, outcome), strict=True):
        mine = {p: round(v, 4) for p, v in every.items() if LAYER_OF[p] == name}
        layers[name] = {"score": _layer_score(mine), "parts": mine, **measures}
    metrics: dict[str, Any] = {
        "words_per_agent_turn": execution["words_per_agent_turn"],
        "all_grounded": execution["all_grounded"],
        "grounded_ratio": execution["grounded_ratio"],
        "tool_failures": infra["tool_failures"],
        "tool_calls": infra["tool_calls"],
        "context_fetch_ms": infra["context_fetch_ms"],
        "stale_hits": infra["stale_hits"],
        "contained": outcome["contained"],
        "longest_monologue_words": execution["longest_monologue_words"],
        "repeated_agent_turns": execution["repeated_agent_turns"],
        "evidence_gathered": ev.gathered,
        **{f"{name}_score": layers[name]["score"] for name in LAYERS},
    }
    return Scorecard(score=score, parts=parts, notes=notes, layers=layers, metrics=metrics)
