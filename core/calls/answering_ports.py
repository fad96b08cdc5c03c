"""The ports the answering service (``core.calls.answering``) needs from outside.

Adapters implement them (``connectors/answering.py``, ``connectors/tool_routing.py``,
``orchestration/starters.py``); a composition root (the API's ``AppState``) builds them and
hands them to ``AnsweringService``. Synchronous ports run in a worker thread, inside the one
unit of work (``EventRecorder.unit``) the service opens per event.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Protocol

from sqlmodel import Session

from core.calls.events import ToolCallBatch
from core.calls.service import CallsService
from core.knowledge.schemas import KnowledgeAnswer
from core.memory.schemas import CallerContext
from core.memory.service import MemoryService
from core.prompts.serving import ServedPrompt
from core.tenancy.agent_info import AgentInfo
from core.tools.schemas import GatewayResult


class PromptSource(Protocol):
    """The prompt version served to one caller, from memory (no database round trip)."""

    def serve(
        self,
        agent: AgentInfo,
        *,
        caller_key: str,
        context: CallerContext,
        now: datetime,
        label: str | None = None,
        call_variables: Mapping[str, str] | None = None,
        version: int | None = None,
    ) -> ServedPrompt | None:
        """``version``: serve exactly that version number (evals), or None when it does not
        exist; otherwise ``label``, else the normal resolution (experiment, production)."""
        ...


class CallerMemory(Protocol):
    """Caller memory (context lookup, ``memory_search``) in the answer's unit of work."""

    def service(self, session: Session) -> MemoryService: ...


class KnowledgeSearch(Protocol):
    """Retrieval over an agent's knowledge bases."""

    def search(
        self, session: Session, agent_id: str, query: str, *, k: int = 5
    ) -> KnowledgeAnswer: ...


class ToolRouter(Protocol):
    """Runs a batch's non-built-in tool calls (the MCP gateway), keyed by position in the batch;
    calls it has no tool for are left out. Never raises for a tool's failure."""

    async def route(self, agent: AgentInfo, batch: ToolCallBatch) -> dict[int, GatewayResult]: ...


class EventRecorder(Protocol):
    """Where an answer's reads and writes happen: one unit of work per event, the call records
    (``CallsService``) and the trace of routed tool calls. The service commits."""

    def unit(self) -> AbstractContextManager[Session]: ...

    def calls(self, session: Session) -> CallsService: ...

    def record_tool_results(self, session: Session, results: Iterable[GatewayResult]) -> None: ...

    def caller_hash(self, number: str | None) -> str | None:
        """The keyed hash of a caller's number as given (None without one); unlike
        ``CallsService.caller_hash`` it does not judge whether the number names anyone."""
        ...


class PostCallStarter(Protocol):
    """Starts an inbox row's PostCallWorkflow (once per workflow id)."""

    async def start(
        self, *, inbox_id: int, platform: str, call_id: str, revision: int, workflow_id: str
    ) -> bool | None:
        """True when started now, False when it already ran or runs; None when no workflow
        engine is reachable right now. Raises when the start failed."""
        ...
