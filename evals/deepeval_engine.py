"""deepeval as the eval runner's judge and simulated caller, over Backline's chat model.

Optional: deepeval is not in requirements.lock (its pins of click and rich conflict with the
lock's); ``pip install --no-deps -r requirements-deepeval.txt`` adds it. In the product only
:func:`evals.adapters.eval_ports` imports this module, and only when ``BACKLINE_EVAL_DEEPEVAL``
is on, deepeval is importable and an LLM is configured; otherwise Backline's own judge and
simulated caller (``evals/judge.py``, ``evals/simulator.py``) serve.

* :class:`BacklineDeepEvalModel`: deepeval's ``DeepEvalBaseLLM`` over the ``ChatModel`` port
  (the same OpenAI-compatible client, settings, timeouts and fallback model as the rest of
  Backline). A request with a pydantic ``schema`` is sent with ``response_format`` of type
  ``json_schema`` and the answer is validated against the schema; a model that cannot follow a
  schema makes the metric fail with that reason, recorded as *not judged*.
* :class:`DeepEvalJudge`: the ``RubricJudge`` port: a scenario's ``rubric`` through
  ``ConversationalGEval``, and the conversational metrics recorded in a case's
  ``metrics["judged"]``: ``ConversationCompletenessMetric``, ``KnowledgeRetentionMetric`` and
  ``RoleAdherenceMetric``.
* :class:`DeepEvalCaller`: the ``SimulatedCaller`` port through deepeval's
  ``ConversationSimulator``: its simulator model writes each caller line from the scenario's goal
  and the persona, and its stopping controller decides when the goal is met (the caller hangs
  up). The runner keeps the turn loop, so the agent side still runs through the agent runtime
  with its traces, tool calls and ``max_turns``.

Models too small to follow deepeval's JSON schemas cannot drive these metrics; run them against
a real LLM. Against the local fake (``fakes/llm.py``) they exercise the plumbing only.

deepeval's telemetry and its ``.env`` loading are switched off before it is imported: this
module must never reach the network on its own.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, cast

os.environ.setdefault("DEEPEVAL_TELEMETRY_OPT_OUT", "1")
os.environ.setdefault("DEEPEVAL_DISABLE_DOTENV", "1")

from deepeval.dataset import ConversationalGolden, Persona
from deepeval.metrics import (
    ConversationalGEval,
    ConversationCompletenessMetric,
    KnowledgeRetentionMetric,
    RoleAdherenceMetric,
)
from deepeval.models import DeepEvalBaseLLM
from deepeval.simulator import ConversationSimulator
from deepeval.test_case import ConversationalTestCase, MultiTurnParams
from deepeval.test_case import Turn as DeepEvalTurn
from pydantic import BaseModel, ValidationError

from core.agent.llm import ChatMessage, ChatModel, ModelSettings
from core.calls.events import Turn
from core.monitoring.judge import DEFAULT_THRESHOLD, JudgeVerdict
from evals.judge import ChatModelJudge

__all__ = [
    "AGENT_ROLE",
    "ENGINE",
    "BacklineDeepEvalModel",
    "DeepEvalCaller",
    "DeepEvalJudge",
    "parse_structured",
    "to_deepeval_turns",
]

ENGINE = "deepeval"
AGENT_ROLE = "A helpful, polite phone agent for the business, speaking to a caller."
"""The role ``RoleAdherenceMetric`` holds the agent's turns to."""
_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.S | re.I)


def response_format_for(schema: type[BaseModel]) -> dict[str, Any]:
    """The chat-completions ``response_format`` asking for JSON that fits ``schema``."""
    return {
        "type": "json_schema",
        "json_schema": {"name": schema.__name__, "schema": schema.model_json_schema()},
    }


def parse_structured(text: str, schema: type[BaseModel]) -> BaseModel:
    """``schema`` validated from the model's answer (a code fence or text around the object is
    accepted); ``ValueError`` saying what is wrong otherwise."""
    fenced = _FENCE.search(text)
    candidate = fenced.group(1) if fenced else text
    start, end = candidate.find("{"), candidate.rfind("}")
    if start < 0 or end <= start:
        raise ValueError(f"the model did not answer with a JSON object for {schema.__name__}")
    try:
        return schema.model_validate_json(candidate[start : end + 1])
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:3]
        )
        raise ValueError(f"the model's JSON does not fit {schema.__name__}: {problems}") from None


class BacklineDeepEvalModel(DeepEvalBaseLLM):  # type: ignore[misc,no-untyped-call,unused-ignore]
    """deepeval's model interface over a ``ChatModel``; structured output through
    ``response_format`` (json_schema), validated against the schema deepeval passes."""

    def __init__(self, model: ChatModel, settings: ModelSettings) -> None:
        self._chat = model
        self._settings = settings
        super().__init__(settings.model)

    def load_model(self, *args: Any, **kwargs: Any) -> Any:
        return self._chat

    def get_model_name(self, *args: Any, **kwargs: Any) -> str:
        return self._settings.model

    def supports_structured_outputs(self) -> bool:
        return True

    def supports_json_mode(self) -> bool:
        return True

    async def a_generate(
        self, prompt: Any, schema: type[BaseModel] | None = None, **kwargs: Any
    ) -> Any:
        settings = self._settings
        if schema is not None:
            settings = replace(settings, response_format=response_format_for(schema))
        result = await self._chat.complete([ChatMessage.user(str(prompt))], settings=settings)
        if schema is None:
            return result.content
        return parse_structured(result.content, schema)

    def generate(self, prompt: Any, schema: type[BaseModel] | None = None, **kwargs: Any) -> Any:
        """The synchronous form deepeval may call outside an event loop; Backline itself only
        uses the async path (inside a loop this raises rather than block it)."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self.a_generate(prompt, schema))
        raise RuntimeError("generate() was called inside an event loop: use a_generate()")


def to_deepeval_turns(transcript: Sequence[Turn]) -> list[DeepEvalTurn]:
    """The caller's turns as deepeval's ``user``, the agent's as ``assistant``; empty turns and
    other roles are left out."""
    roles = {"caller": "user", "agent": "assistant"}
    return [
        DeepEvalTurn(role=roles[t.role], content=t.text)
        for t in transcript
        if t.role in roles and t.text and t.text.strip()
    ]


async def _measure(name: str, metric: Any, case: ConversationalTestCase, threshold: float) -> Any:
    """One metric's verdict; never raises for the model's failures (``passed`` None)."""
    try:
        score = await metric.a_measure(case, _show_indicator=False)
    except Exception as exc:
        return JudgeVerdict(name, None, None, f"not judged: {type(exc).__name__}: {exc}")
    if metric.error or score is None:
        return JudgeVerdict(name, None, None, f"not judged: {metric.error or 'no score'}")
    value = float(score)
    return JudgeVerdict(name, value, value >= threshold, str(metric.reason or ""))


class DeepEvalJudge(ChatModelJudge):
    """``RubricJudge`` through deepeval's conversational metrics (the same model, settings and
    threshold as Backline's own judge; only the grading differs)."""

    engine = ENGINE

    def __init__(
        self, model: ChatModel, settings: ModelSettings, threshold: float = DEFAULT_THRESHOLD
    ) -> None:
        super().__init__(model, settings, threshold)
        self._llm = BacklineDeepEvalModel(model, settings)

    def _case(self, transcript: Sequence[Turn]) -> ConversationalTestCase:
        return ConversationalTestCase(turns=to_deepeval_turns(transcript), chatbot_role=AGENT_ROLE)

    async def judge(self, rubric: str, transcript: list[Turn]) -> tuple[bool | None, str]:
        metric = ConversationalGEval(
            name="rubric",
            criteria=rubric,
            evaluation_params=[MultiTurnParams.ROLE, MultiTurnParams.CONTENT],
            model=self._llm,
            threshold=self.threshold,
            async_mode=True,
        )
        verdict = await _measure("rubric", metric, self._case(transcript), self.threshold)
        if verdict.score is None:
            return None, f"deepeval ConversationalGEval {verdict.reason}"
        return verdict.passed, (
            f"deepeval ConversationalGEval score {verdict.score:.2f} "
            f"(pass at {self.threshold:g}): {verdict.reason}"
        )

    async def metrics(self, transcript: list[Turn]) -> dict[str, Any]:
        """The conversational metrics' verdicts, in the shape of ``core.monitoring.judge``'s
        ``judge_call`` plus the engine's name."""
        case = self._case(transcript)
        common: dict[str, Any] = {
            "model": self._llm,
            "threshold": self.threshold,
            "async_mode": True,
        }
        metrics = {
            "conversation_completeness": ConversationCompletenessMetric(**common),
            "knowledge_retention": KnowledgeRetentionMetric(**common),
            "role_adherence": RoleAdherenceMetric(**common),
        }
        verdicts = await asyncio.gather(
            *(_measure(name, m, case, self.threshold) for name, m in metrics.items())
        )
        return {
            "engine": ENGINE,
            "model": self._settings.model,
            "threshold": self.threshold,
            "rubrics": {v.name: v.to_json() for v in verdicts},
        }


async def _agent_side_unused(input: str) -> DeepEvalTurn:
    raise RuntimeError("the eval runner plays the agent side; the simulator only writes lines")


class DeepEvalCaller:
    """``SimulatedCaller`` through deepeval's ``ConversationSimulator``."""

    engine = ENGINE

    def __init__(self, model: ChatModel, settings: ModelSettings) -> None:
        self._simulator = ConversationSimulator(
            model_callback=cast(Any, _agent_side_unused),
            simulator_model=BacklineDeepEvalModel(model, settings),
            async_mode=True,
        )

    async def next_line(self, goal: str, persona: str | None, transcript: list[Turn]) -> str | None:
        golden = ConversationalGolden(
            scenario=goal,
            expected_outcome=goal,
            persona=Persona(characteristics=persona or "An ordinary caller."),
        )
        turns = to_deepeval_turns(transcript)
        if any(t.role == "user" for t in turns):
            controller = self._simulator.stopping_controller
            if await controller.a_check_expected_outcome(turns, golden):
                return None
            line = await self._simulator.a_generate_next_user_input(golden, turns)
        elif turns:
            line = await self._simulator.a_generate_next_user_input(golden, turns)
        else:
            line = await self._simulator.a_generate_first_user_input(golden)
        text = str(line or "").strip()
        return text or None
