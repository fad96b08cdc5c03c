"""The answering service outside any web request: built from its ports alone (the SQL recorder
and stand-ins for the rest), it answers canonical events, records them, and inboxes an end of
call once, handing its workflow's start to the drainer behind the post-call port."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any, cast

from sqlmodel import Session, select

from connectors.answering import SqlEventRecorder, StoredMemory
from core.calls.answering import AnsweringService
from core.calls.events import (
    CallEnded,
    CallRef,
    ContextRequest,
    ToolCall,
    ToolCallBatch,
    TranscriptUpdate,
)
from core.calls.models import CallEvent, WebhookInbox
from core.db import make_engine
from core.knowledge.schemas import KnowledgeAnswer
from core.memory.schemas import CallerContext
from core.ports import Embedder, VectorStore
from core.prompts.serving import ServedPrompt
from core.tenancy.agent_info import AgentInfo
from core.tools.schemas import GatewayResult

SECRET = "s" * 32
AGENT = AgentInfo(
    id="agent-answering",
    org_id="org-answering",
    name="Front desk",
    platform_settings={},
    credentials={},
)


class _NoEmbedder:
    """Never asked to embed: no caller in these tests has a memory to search."""

    dimension = 384


class NoPrompts:
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
        return None


class NoKnowledge:
    def search(self, session: Session, agent_id: str, query: str, *, k: int = 5) -> KnowledgeAnswer:
        return KnowledgeAnswer(query=query, normalized_query=query, status="empty")


class NoGateway:
    def __init__(self) -> None:
        self.batches: list[ToolCallBatch] = []

    async def route(self, agent: AgentInfo, batch: ToolCallBatch) -> dict[int, GatewayResult]:
        self.batches.append(batch)
        return {}


class Starter:
    def __init__(self) -> None:
        self.started: list[str] = []

    async def start(
        self, *, inbox_id: int, platform: str, call_id: str, revision: int, workflow_id: str
    ) -> bool | None:
        first = workflow_id not in self.started
        self.started.append(workflow_id)
        return first


async def test_answers_records_and_inboxes_without_a_web_request(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    recorder = SqlEventRecorder(engine, SECRET)
    gateway, starter = NoGateway(), Starter()
    service = AnsweringService(
        prompts=NoPrompts(),
        # Neither is reached: no caller has a memory and no tool searches it.
        memory=StoredMemory(cast(Embedder, _NoEmbedder()), cast(VectorStore, None)),
        knowledge=NoKnowledge(),
        tools=gateway,
        recorder=recorder,
        post_call=starter,
    )
    call = CallRef(platform="vapi", call_id=f"call-{uuid.uuid4().hex[:8]}", caller_number=None)

    context = await service.answer(AGENT, ContextRequest(call=call))
    assert context.context is not None and not context.context.known
    assert context.prompt is None

    batch = ToolCallBatch(
        call=call, calls=[ToolCall(call=call, tool_call_id="tc-1", name="lookup_order")]
    )
    tools = await service.answer(AGENT, batch)
    assert gateway.batches == [batch]
    [(_, outcome)] = tools.tool_results
    assert outcome.error is not None and "Unknown tool 'lookup_order'" in outcome.error

    await service.answer(AGENT, TranscriptUpdate(call=call, role="caller", text="Hello"))

    ended = CallEnded(call=call)
    first = await service.accept_call_ended(AGENT, ended, b'{"call": 1}')
    again = await service.accept_call_ended(AGENT, ended, b'{"call": 1}')
    # Answered before any start: the drainer starts the workflow behind the reply, once.
    assert (first["duplicate"], first["workflow_started"]) == (False, None)
    assert (again["duplicate"], again["workflow_started"]) == (True, None)
    assert starter.started == []
    assert await service.drain_post_calls() == 1
    assert starter.started == [first["workflow_id"]] * 2

    with Session(engine) as s:
        events = s.exec(select(CallEvent).where(CallEvent.platform_call_id == call.call_id))
        kinds: list[tuple[str, dict[str, Any]]] = [(e.type, e.data) for e in events]
        row = s.exec(select(WebhookInbox).where(WebhookInbox.call_id == call.call_id)).one()
    assert [k for k, _ in kinds] == ["context_request", "tool_calls", "transcript_update"]
    assert kinds[0][1]["caller_known"] is False and "no_memory" in kinds[0][1]
    assert kinds[1][1] == {"tools": ["lookup_order"], "errors": 1}
    assert row.dispatched_at is not None
    engine.dispose()
