"""What the eval runner needs from the rest of Backline, as ports.

The agent runtime (``core/agent/runtime.py``: ``AgentRuntime.open_call`` -> ``Conversation``)
is described here structurally so the runner depends on its shape only; ``CallTarget`` is
the runtime's own. Everything else the runner cannot do deterministically is a port with an
adapter supplied by whoever runs it: seeding a caller's memory with earlier calls, the outcome
check against a sandbox tool server, an LLM judge for rubrics and an LLM playing a simulated
caller. A port left out turns the checks that need it into *skipped* checks (never passes).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from core.agent.runtime import CallTarget
from core.calls.events import Turn
from core.tenancy.agent_info import AgentInfo
from evals.scenarios import Outcome, SandboxServer

__all__ = [
    "AgentRuntime",
    "CallTarget",
    "Conversation",
    "OutcomeChecker",
    "PriorCallSeeder",
    "RetrievalTrace",
    "RubricJudge",
    "SimulatedCaller",
    "ToolCallTrace",
    "TurnResult",
]


class ToolCallTrace(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def arguments(self) -> dict[str, Any]: ...

    @property
    def result(self) -> Any: ...

    @property
    def error(self) -> str | None: ...

    @property
    def latency_ms(self) -> float | None: ...

    @property
    def source(self) -> str | None: ...


class RetrievalTrace(Protocol):
    @property
    def query(self) -> str: ...

    @property
    def status(self) -> str: ...

    @property
    def chunk_ids(self) -> Sequence[str]: ...

    @property
    def outdated(self) -> Any: ...

    @property
    def texts(self) -> Sequence[str]: ...


class TurnResult(Protocol):
    @property
    def text(self) -> str: ...

    @property
    def tool_calls(self) -> Sequence[ToolCallTrace]: ...

    @property
    def retrievals(self) -> Sequence[RetrievalTrace]: ...

    @property
    def model(self) -> str | None: ...

    @property
    def usage(self) -> Any: ...

    @property
    def ttft_ms(self) -> float | None: ...

    @property
    def upstream_ms(self) -> float | None: ...

    @property
    def backline_ms(self) -> float | None: ...

    @property
    def fallback_used(self) -> bool: ...


class Conversation(Protocol):
    @property
    def served(self) -> Any: ...

    @property
    def opening(self) -> str | None: ...

    async def respond(self, caller_text: str | None, *, history: Any = None) -> TurnResult: ...

    def transcript(self) -> list[Turn]: ...


class AgentRuntime(Protocol):
    async def open_call(self, agent: AgentInfo, target: CallTarget) -> Conversation: ...


class PriorCallSeeder(Protocol):
    """Writes earlier conversations of ``number`` into the agent's memory of that caller."""

    async def seed_prior_calls(
        self, agent: AgentInfo, number: str | None, conversations: list[list[Turn]]
    ) -> None: ...


class OutcomeChecker(Protocol):
    """Calls ``outcome.tool`` (on ``server``) and returns its result, for ``Outcome.matches``."""

    async def call(self, outcome: Outcome, server: SandboxServer | None) -> Any: ...


class RubricJudge(Protocol):
    """(passed, reason) for a transcript against a rubric; ``passed`` None: not judged (the
    model failed or its answer was unusable), a skipped check, never a pass."""

    async def judge(self, rubric: str, transcript: list[Turn]) -> tuple[bool | None, str]: ...


class SimulatedCaller(Protocol):
    """The caller's next line towards ``goal`` (None: the caller hangs up)."""

    async def next_line(
        self, goal: str, persona: str | None, transcript: list[Turn]
    ) -> str | None: ...
