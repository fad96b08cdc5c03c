"""LLM-judged conversation quality, beside the deterministic scorecard.

A G-Eval-style rubric judge over the ``ChatModel`` port: the prompt gives the criteria, the
evaluation steps and the transcript, and asks for strict JSON ``{"score": 0-1, "reason": ...}``.
The answer is parsed tolerantly (a code fence or text around the object is accepted); an answer
that is not such an object, or a model that fails, gives a verdict with ``passed`` None (not
judged, with the reason), never a pass.

Three conversational metrics are fixed rubrics (:data:`CONVERSATIONAL_RUBRICS`): conversation
completeness, knowledge retention and role adherence. The eval runner's rubric checks
(``evals/judge.py``) and the post-call judged metrics use the same judge.

Post-call, a sample of scored calls is judged (``BACKLINE_JUDGE_SAMPLE_RATE``, default 0):
``sampled`` is the deterministic choice of those calls, so a replayed post-call workflow picks
the same ones. The grades are stored beside the scorecard (``CallScore.metrics["judged"]``);
the card itself stays a pure function of the call's evidence.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from core.agent.llm import ChatMessage, ChatModel, ModelSettings
from core.calls.events import Turn

DEFAULT_THRESHOLD = 0.7
JSON_INSTRUCTION = 'Return JSON: {"score": <a number from 0 to 1>, "reason": "<one sentence>"}'
"""The last line of every judge prompt (the local fake model recognises judge requests by it)."""

_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.S | re.I)


@dataclass(frozen=True)
class Rubric:
    """What a good conversation looks like (``criteria``) and how to check it (``steps``)."""

    name: str
    criteria: str
    steps: tuple[str, ...] = ()


CONVERSATIONAL_RUBRICS: tuple[Rubric, ...] = (
    Rubric(
        "conversation_completeness",
        "The agent satisfies every request the caller makes during the conversation.",
        (
            "List each request or question the caller makes.",
            "For each one, decide whether the agent answered or fulfilled it.",
            "Score the share of the caller's requests the agent satisfied.",
        ),
    ),
    Rubric(
        "knowledge_retention",
        "The agent remembers and reuses information the caller gave earlier in the "
        "conversation, and never asks again for details already given.",
        (
            "Note every detail the caller gives (names, dates, numbers, preferences).",
            "Check whether later agent turns use those details correctly.",
            "Lower the score for every detail the agent forgets, contradicts or asks for again.",
        ),
    ),
    Rubric(
        "role_adherence",
        "The agent stays in its role as a helpful, polite phone agent for the business "
        "throughout the conversation.",
        (
            "Read every agent turn.",
            "Check that each one is consistent with the role of a phone agent for the business.",
            "Lower the score for every turn out of role, rude or unrelated to the business.",
        ),
    ),
)


@dataclass(frozen=True)
class JudgeVerdict:
    """``score`` 0-1 and ``passed`` (score >= threshold), both None when the rubric could not
    be judged (``reason`` says why)."""

    name: str
    score: float | None
    passed: bool | None
    reason: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def transcript_text(turns: Sequence[Turn]) -> str:
    return "\n".join(f"{t.role}: {t.text}" for t in turns if t.text)


def judge_messages(rubric: Rubric, turns: Sequence[Turn]) -> list[ChatMessage]:
    steps = rubric.steps or (
        "Read the whole transcript.",
        "Decide how well the agent's turns meet the criteria.",
        "Give 1 when they fully meet it, 0 when not at all.",
    )
    system = "\n".join(
        [
            "You are an impartial evaluator of phone conversations between a caller and an "
            "AI agent.",
            f"Criteria: {rubric.criteria}",
            "Evaluation steps:",
            *(f"{i}. {s}" for i, s in enumerate(steps, 1)),
            "Judge only from the transcript. " + JSON_INSTRUCTION,
        ]
    )
    return [
        ChatMessage.system(system),
        ChatMessage.user(f"Transcript:\n{transcript_text(turns) or '(empty)'}"),
    ]


def parse_verdict(text: str) -> tuple[float, str]:
    """(score, reason) from the judge's answer; ``ValueError`` when it is not a JSON object
    with a numeric ``score`` between 0 and 1."""
    fenced = _FENCE.search(text)
    candidate = fenced.group(1) if fenced else text
    start, end = candidate.find("{"), candidate.rfind("}")
    if start < 0 or end <= start:
        raise ValueError("the judge did not answer with a JSON object")
    try:
        value = json.loads(candidate[start : end + 1])
    except ValueError as exc:
        raise ValueError(f"the judge's answer is not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise ValueError("the judge's answer is not a JSON object")
    score = value.get("score")
    if isinstance(score, bool) or not isinstance(score, int | float):
        raise ValueError("the judge's answer has no numeric score")
    if not 0 <= score <= 1:
        raise ValueError(f"the judge's score {score} is outside 0-1")
    return float(score), str(value.get("reason") or "")


async def judge_rubric(
    model: ChatModel,
    settings: ModelSettings,
    rubric: Rubric,
    turns: Sequence[Turn],
    threshold: float = DEFAULT_THRESHOLD,
) -> JudgeVerdict:
    """One rubric judged; never raises for the model's failures (``passed`` None instead)."""
    try:
        result = await model.complete(judge_messages(rubric, turns), settings=settings)
    except Exception as exc:
        return JudgeVerdict(rubric.name, None, None, f"not judged: {type(exc).__name__}: {exc}")
    try:
        score, reason = parse_verdict(result.content)
    except ValueError as exc:
        return JudgeVerdict(rubric.name, None, None, f"not judged: {exc}")
    return JudgeVerdict(rubric.name, score, score >= threshold, reason)


async def judge_call(
    model: ChatModel,
    settings: ModelSettings,
    turns: Sequence[Turn],
    extra: Sequence[Rubric] = (),
    threshold: float = DEFAULT_THRESHOLD,
) -> dict[str, Any]:
    """The judged metrics of one call: the conversational rubrics and ``extra`` ones, as the
    JSON stored under ``CallScore.metrics["judged"]``."""
    verdicts = await asyncio.gather(
        *(
            judge_rubric(model, settings, r, turns, threshold)
            for r in (*CONVERSATIONAL_RUBRICS, *extra)
        )
    )
    return {
        "model": settings.model,
        "threshold": threshold,
        "rubrics": {v.name: v.to_json() for v in verdicts},
    }


def sampled(agent_id: str, platform: str, call_id: str, rate: float) -> bool:
    """Whether this call falls in the judged sample: the same call always answers the same."""
    if rate <= 0:
        return False
    if rate >= 1:
        return True
    digest = hashlib.sha256(f"{agent_id}\x1f{platform}\x1f{call_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < rate
