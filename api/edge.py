"""The platform-agnostic part of every webhook route.

A platform route verifies and parses with its connector, then hands canonical events here:
rejections are recorded, context and tool calls are answered from core, informational events
are appended cheaply, and end-of-call payloads go to the inbox and start PostCallWorkflow.
The route shapes the canonical answer into its platform's reply.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from api.state import AgentInfo, AppState
from core.calls.events import (
    CallAnalyzed,
    CallEnded,
    CallRef,
    CallStarted,
    CanonicalEvent,
    ContextRequest,
    Informational,
    KnowledgeRequest,
    ToolCall,
    ToolCallBatch,
    TranscriptUpdate,
    TransferRequest,
)
from core.calls.service import CallsService, InboxReceipt
from core.errors import AppError
from core.memory.schemas import CallerContext
from core.memory.service import MemoryService
from core.tools.builtins import ToolContext, ToolOutcome, run_builtin
from workflows.starters import start_post_call
from workflows.types import PostCallInput

log = logging.getLogger("backline.edge")
_NUMBER_IN_PAYLOAD = re.compile(rb'"(?:number|from_number|from|caller)"\s*:\s*"([^"]{3,40})"')


@dataclass
class EdgeAnswer:
    """What core answered for one canonical event; connectors shape it for their platform."""

    context: CallerContext | None = None
    tool_results: list[tuple[ToolCall, ToolOutcome]] = field(default_factory=list)
    documents: list[dict[str, Any]] = field(default_factory=list)


def context_variables(ctx: CallerContext) -> dict[str, str]:
    """Backline's variables live in their own ``backline_`` namespace."""
    return {
        "backline_caller_known": "yes" if ctx.known else "no",
        "backline_memory_summary": ctx.summary,
        "backline_caller_facts": "; ".join(
            f"{k.replace('_', ' ')}: {v}" for k, v in ctx.facts.items()
        ),
        "backline_call_count": str(ctx.call_count),
    }


def _secret(state: AppState) -> str:
    return state.settings.secret_key.get_secret_value()


async def record_rejection(
    state: AppState,
    platform: str,
    agent: AgentInfo | None,
    agent_id: str,
    exc: AppError,
    raw: bytes,
) -> None:
    match = _NUMBER_IN_PAYLOAD.search(raw)

    def _store() -> None:
        with Session(state.engine) as session:
            CallsService(session, _secret(state)).reject(
                platform=platform,
                agent_id=agent_id,
                org_id=agent.org_id if agent else None,
                reason=type(exc).__name__,
                detail=exc.detail,
                status_code=exc.status_code,
                raw=raw,
                caller_number=match.group(1).decode(errors="replace") if match else None,
            )
            session.commit()

    await run_in_threadpool(_store)


def _run_tool(tc: ToolCall, ctx: ToolContext, memory: MemoryService) -> ToolOutcome:
    outcome = run_builtin(tc.name, tc.arguments, ctx, memory)
    if outcome is None:
        return ToolOutcome(error=f"Unknown tool '{tc.name}': this agent has no such tool.")
    return outcome


def _answer_sync(state: AppState, agent: AgentInfo, event: CanonicalEvent) -> EdgeAnswer:
    with Session(state.engine, expire_on_commit=False) as session:
        calls = CallsService(session, _secret(state))
        memory = MemoryService(session, state.embedder, state.vectors)
        call: CallRef | None = getattr(event, "call", None)
        number = call.caller_number if call else None
        answer = EdgeAnswer()
        data: dict[str, Any] = {}
        platform_type: str = event.kind
        if isinstance(event, ContextRequest):
            answer.context = memory.get_context(agent.org_id, agent.id, calls.caller_hash(number))
            data = {"caller_known": answer.context.known}
        elif isinstance(event, ToolCallBatch):
            tool_ctx = ToolContext(agent.org_id, agent.id, calls.caller_hash(number))
            answer.tool_results = [(tc, _run_tool(tc, tool_ctx, memory)) for tc in event.calls]
            data = {
                "tools": [tc.name for tc in event.calls],
                "errors": sum(o.error is not None for _, o in answer.tool_results),
            }
        elif isinstance(event, TranscriptUpdate):
            data = {"role": event.role, "text": event.text, "final": event.final}
        elif isinstance(event, CallStarted):
            assert call is not None
            calls.touch_call(
                org_id=agent.org_id,
                agent_id=agent.id,
                platform=call.platform,
                call_id=call.call_id,
                caller_number=number,
                direction=call.direction,
            )
        elif isinstance(event, CallAnalyzed):
            calls.enrich_call(org_id=agent.org_id, agent_id=agent.id, analyzed=event)
            data = {"sentiment": event.sentiment, "success": event.platform_success}
        elif isinstance(event, Informational):
            data = dict(event.data)
            platform_type = event.platform_type
        elif isinstance(event, KnowledgeRequest | TransferRequest):
            pass
        if call is not None:
            calls.record_event(
                org_id=agent.org_id,
                agent_id=agent.id,
                platform=call.platform,
                call_id=call.call_id,
                caller_number=number,
                type=event.kind,
                platform_type=platform_type,
                data=data,
            )
        session.commit()
    return answer


async def answer(state: AppState, agent: AgentInfo, event: CanonicalEvent) -> EdgeAnswer:
    return await run_in_threadpool(_answer_sync, state, agent, event)


async def accept_call_ended(
    state: AppState, agent: AgentInfo, event: CallEnded, raw: bytes
) -> dict[str, Any]:
    """Inbox the payload (idempotent), start its workflow once, answer without waiting."""

    def _receive() -> InboxReceipt:
        with Session(state.engine, expire_on_commit=False) as session:
            receipt = CallsService(session, _secret(state)).receive_call_ended(
                org_id=agent.org_id,
                agent_id=agent.id,
                platform=event.call.platform,
                call_id=event.call.call_id,
                raw=raw,
                caller_number=event.call.caller_number,
            )
            session.commit()
            return receipt

    receipt = await run_in_threadpool(_receive)
    started = await dispatch_post_call(
        state,
        receipt.inbox_id,
        event.call.platform,
        event.call.call_id,
        receipt.revision,
        receipt.workflow_id,
    )
    return {
        "status": "accepted",
        "duplicate": not receipt.created,
        "revision": receipt.revision,
        "workflow_id": receipt.workflow_id,
        "workflow_started": started,
    }


async def dispatch_post_call(
    state: AppState, inbox_id: int, platform: str, call_id: str, revision: int, workflow_id: str
) -> bool | None:
    """Start the workflow (once); None when Temporal is unreachable (the dispatcher retries)."""
    if state.temporal is None:
        return None
    try:
        started = await start_post_call(
            state.temporal,
            workflow_id=workflow_id,
            data=PostCallInput(
                inbox_id=inbox_id, platform=platform, call_id=call_id, revision=revision
            ),
            task_queue=state.settings.task_queue,
        )
    except Exception as exc:
        log.warning("could not start %s yet: %s", workflow_id, exc)
        return None

    def _mark() -> None:
        with Session(state.engine) as session:
            CallsService(session, _secret(state)).mark_dispatched(inbox_id)
            session.commit()

    await run_in_threadpool(_mark)
    return started
