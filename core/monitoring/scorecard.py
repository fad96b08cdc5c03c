"""The deterministic per-call quality scorecard.

A pure function of the ``CallEnded`` event: no clock, no randomness, no model, no I/O, so a
replayed post-call workflow re-derives the exact same score. It must never call an LLM or read
anything but its argument; LLM-judged quality belongs elsewhere and is recorded separately.
"""

from __future__ import annotations

import re

from pydantic import BaseModel

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


class Scorecard(BaseModel):
    score: float
    parts: dict[str, float]
    notes: list[str]


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


def score_call(ended: CallEnded) -> Scorecard:
    """Score one finished call from 0 to 100.

    Each part is scored 0..1 and weighted:

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

    ``parts`` holds each part's 0..1 value and ``score`` (the same 0..100 as ``score``).
    """
    notes: list[str] = []
    values: dict[str, float | None] = {
        "completion": _completion(ended, notes),
        "escalation": _escalation(ended, notes),
        "talk_ratio": _talk_ratio(ended, notes),
        "latency": _latency(ended, notes),
        "frustration": _frustration(ended, notes),
    }
    present = {name: v for name, v in values.items() if v is not None}
    weight = sum(WEIGHTS[name] for name in present)
    score = round(100.0 * sum(WEIGHTS[n] * v for n, v in present.items()) / weight, 2)
    parts = {name: round(v, 4) for name, v in present.items()}
    parts["score"] = score
    return Scorecard(score=score, parts=parts, notes=notes)
