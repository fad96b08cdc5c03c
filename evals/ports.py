"""What the eval runner needs from the rest of Backline, as ports.

The agent runtime (``core/agent/runtime.py``: ``AgentRuntime.open_call`` -> ``Conversation``)
is described here structurally so the runner depends on its shape only; ``CallTarget`` mirrors
the runtime's own. Everything else the runner cannot do deterministically is a port with an
adapter supplied by whoever runs it: seeding a caller's memory with earlier calls, the outcome
check against a sandbox tool server, an LLM judge for rubrics and an LLM playing a simulated
caller. A port left out turns the checks that need it into *skipped* checks (never passes).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

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


@dataclass(frozen=True)
class CallTarget:
    """Which call to open: the same fields as the runtime's ``CallTarget``."""

    call_id: str
    platform: str = "eval"
    caller_number: str | None = None
    label: str | None = None
    call_variables: Mapping[str, str] = field(default_factory=dict)


class ToolCallTrace(Protocol):
    name: str
    arguments: dict[str, Any]
    result: Any
    error: str | None
    latency_ms: float | None
    source: str | None


class RetrievalTrace(Protocol):
    query: str
    status: str
    chunk_ids: Sequence[str]
    outdated: Any
    texts: Sequence[str]


class TurnResult(Protocol):
    text: str
    tool_calls: Sequence[ToolCallTrace]
    retrievals: Sequence[RetrievalTrace]
    model: str | None
    usage: Any
    ttft_ms: float | None
    upstream_ms: float | None
    backline_ms: float | None
    fallback_used: bool


class Conversation(Protocol):
    served: Any
    opening: str | None

    async def respond(self, caller_text: str | None, *, history: Any = None) -> TurnResult: ...

    def transcript(self) -> list[Turn]: ...


class AgentRuntime(Protocol):
    async def open_call(self, agent: AgentInfo, target: Any) -> Conversation: ...


class PriorCallSeeder(Protocol):
    """Writes earlier conversations of ``number`` into the agent's memory of that caller."""

    async def seed_prior_calls(
        self, agent: AgentInfo, number: str | None, conversations: list[list[Turn]]
    ) -> None: ...


class OutcomeChecker(Protocol):
    """Calls ``outcome.tool`` (on ``server``) and returns its result, for ``Outcome.matches``."""

    async def call(self, outcome: Outcome, server: SandboxServer | None) -> Any: ...


class RubricJudge(Protocol):
    """(passed, reason) for a transcript against a rubric."""

    async def judge(self, rubric: str, transcript: list[Turn]) -> tuple[bool, str]: ...


class SimulatedCaller(Protocol):
    """The caller's next line towards ``goal`` (None: the caller hangs up)."""

    async def next_line(
        self, goal: str, persona: str | None, transcript: list[Turn]
    ) -> str | None: ...
