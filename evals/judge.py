"""The LLM rubric judge of the eval runner (``RubricJudge``), over the ``ChatModel`` port.

``ChatModelJudge.judge`` grades a scenario's ``expect.rubric`` with the G-Eval-style prompt of
``core.monitoring.judge``: (passed, reason), with ``passed`` None (a skipped check, never a
pass) when the model fails or its answer is not the JSON verdict asked for.
``ChatModelJudge.metrics`` grades the fixed conversational rubrics (conversation completeness,
knowledge retention, role adherence); the runner records them in a case's metrics. Without an
LLM the runner records :func:`skipped_metrics` instead: each rubric, not judged, with the reason.
With ``BACKLINE_EVAL_DEEPEVAL`` on, ``evals/deepeval_engine.py`` grades the same names with
deepeval's metrics (``engine`` tells which judge graded).
"""

from __future__ import annotations

from typing import Any

from core.agent.llm import ChatModel, ModelSettings
from core.calls.events import Turn
from core.monitoring.judge import (
    CONVERSATIONAL_RUBRICS,
    DEFAULT_THRESHOLD,
    JudgeVerdict,
    Rubric,
    judge_call,
    judge_rubric,
)

__all__ = ["ENGINE", "ChatModelJudge", "skipped_metrics"]

ENGINE = "backline"


def skipped_metrics(reason: str) -> dict[str, Any]:
    """The conversational metrics as recorded when no judge could grade them: each one not
    judged (score and passed None), with ``reason``."""
    return {
        "engine": None,
        "model": None,
        "rubrics": {
            r.name: JudgeVerdict(r.name, None, None, reason).to_json()
            for r in CONVERSATIONAL_RUBRICS
        },
    }


class ChatModelJudge:
    engine = ENGINE

    def __init__(
        self, model: ChatModel, settings: ModelSettings, threshold: float = DEFAULT_THRESHOLD
    ) -> None:
        if not 0 <= threshold <= 1:
            raise ValueError("the pass threshold is a score from 0 to 1")
        self._model = model
        self._settings = settings
        self.threshold = threshold

    async def judge(self, rubric: str, transcript: list[Turn]) -> tuple[bool | None, str]:
        verdict = await judge_rubric(
            self._model, self._settings, Rubric("rubric", rubric), transcript, self.threshold
        )
        if verdict.score is None:
            return None, verdict.reason
        return verdict.passed, f"score {verdict.score:.2f} (pass at {self.threshold:g}): " + (
            verdict.reason
        )

    async def metrics(self, transcript: list[Turn]) -> dict[str, Any]:
        """The conversational rubrics' verdicts, as stored post-call."""
        judged = await judge_call(self._model, self._settings, transcript, (), self.threshold)
        return {"engine": ENGINE, **judged}
