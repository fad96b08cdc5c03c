"""The VAPI server URL: ``POST /v1/webhooks/vapi/{agent_id}``.

Hot path: one cached agent lookup, a credential check, one indexed read of the caller's context
and one cheap append. End-of-call reports go to the inbox and start PostCallWorkflow; the reply
does not wait for the workflow.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from api.deps import StateDep
from api.errors import error_body
from api.state import AgentInfo, AppState
from connectors.common import parse_json_body
from connectors.vapi import mapping
from connectors.vapi.webhooks import parse_event, verify_request
from core.calls.events import (
    CallEnded,
    CallStarted,
    ContextRequest,
    Informational,
    KnowledgeRequest,
    ToolCallBatch,
    TranscriptUpdate,
    TransferRequest,
)
from core.calls.service import CallsService
from core.errors import AppError, NotFoundError
from core.memory.schemas import CallerContext
from core.memory.service import MemoryService
from core.tools.builtins import ToolContext, run_builtin
from workflows.starters import start_post_call
from workflows.types import PostCallInput

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])
log = logging.getLogger("backline.webhooks")
PLATFORM = "vapi"
_NUMBER_IN_PAYLOAD = re.compile(rb'"number"\s*:\s*"([^"]{3,40})"')


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


def _record_rejection(
    state: AppState, agent: AgentInfo | None, agent_id: str, exc: AppError, raw: bytes
) -> None:
    match = _NUMBER_IN_PAYLOAD.search(raw)
    with Session(state.engine) as session:
        CallsService(session, state.settings.secret_key.get_secret_value()).reject(
            platform=PLATFORM,
            agent_id=agent_id,
            org_id=agent.org_id if agent else None,
            reason=type(exc).__name__,
            detail=exc.detail,
            status_code=exc.status_code,
            raw=raw,
            caller_number=match.group(1).decode(errors="replace") if match else None,
        )
        session.commit()


@router.post("/vapi/{agent_id}", summary="VAPI server URL")
async def vapi_webhook(agent_id: str, request: Request, state: StateDep) -> JSONResponse:
    raw = await request.body()
    agent = await run_in_threadpool(state.agents.get, agent_id)
    try:
        if agent is None:
            raise NotFoundError(f"agent '{agent_id}' does not exist; check the server URL")
        verify_request(dict(request.headers), raw, agent.credentials.get(PLATFORM, []))
        event = parse_event(parse_json_body(raw))
    except AppError as exc:
        await run_in_threadpool(_record_rejection, state, agent, agent_id, exc, raw)
        return JSONResponse(error_body(type(exc).__name__, exc.detail), status_code=exc.status_code)

    if isinstance(event, CallEnded):
        return await _accept_call_ended(state, agent, event, raw)
    reply = await run_in_threadpool(_handle_sync, state, agent, event)
    return JSONResponse(reply)


def _handle_sync(state: AppState, agent: AgentInfo, event: Any) -> dict[str, Any]:
    secret = state.settings.secret_key.get_secret_value()
    with Session(state.engine, expire_on_commit=False) as session:
        calls = CallsService(session, secret)
        memory = MemoryService(session, state.embedder, state.vectors)
        call = getattr(event, "call", None)
        number = call.caller_number if call else None
        reply: dict[str, Any] = {}
        data: dict[str, Any] = {}
        if isinstance(event, ContextRequest):
            ctx = memory.get_context(agent.org_id, agent.id, calls.caller_hash(number))
            reply = mapping.assistant_request_reply(
                assistant_id=agent.vapi_assistant_id,
                assistant=agent.vapi_assistant,
                variables=context_variables(ctx),
            )
            data = {"caller_known": ctx.known}
        elif isinstance(event, ToolCallBatch):
            tool_ctx = ToolContext(agent.org_id, agent.id, calls.caller_hash(number))
            results = []
            for tc in event.calls:
                outcome = run_builtin(tc.name, tc.arguments, tool_ctx, memory)
                if outcome is None:
                    results.append(
                        mapping.ToolResult(
                            tc.tool_call_id,
                            tc.name,
                            error=f"Unknown tool '{tc.name}': this agent has no such tool.",
                        )
                    )
                else:
                    results.append(
                        mapping.ToolResult(tc.tool_call_id, tc.name, outcome.result, outcome.error)
                    )
            reply = mapping.tool_calls_reply(results)
            data = {
                "tools": [tc.name for tc in event.calls],
                "errors": sum(r.error is not None for r in results),
            }
        elif isinstance(event, KnowledgeRequest):
            reply = {"documents": []}
        elif isinstance(event, TransferRequest):
            reply = {"error": "No transfer destination is configured for this agent."}
        elif isinstance(event, TranscriptUpdate):
            data = {"role": event.role, "text": event.text, "final": event.final}
        elif isinstance(event, CallStarted):
            calls.touch_call(
                org_id=agent.org_id,
                agent_id=agent.id,
                platform=PLATFORM,
                call_id=event.call.call_id,
                caller_number=number,
                direction=event.call.direction,
            )
        elif isinstance(event, Informational):
            data = dict(event.data)
        if call is not None:
            calls.record_event(
                org_id=agent.org_id,
                agent_id=agent.id,
                platform=PLATFORM,
                call_id=call.call_id,
                caller_number=number,
                type=event.kind,
                platform_type=getattr(event, "platform_type", event.kind),
                data=data,
            )
        session.commit()
    return reply


async def _accept_call_ended(
    state: AppState, agent: AgentInfo, event: CallEnded, raw: bytes
) -> JSONResponse:
    def _receive() -> Any:
        with Session(state.engine, expire_on_commit=False) as session:
            receipt = CallsService(
                session, state.settings.secret_key.get_secret_value()
            ).receive_call_ended(
                org_id=agent.org_id,
                agent_id=agent.id,
                platform=PLATFORM,
                call_id=event.call.call_id,
                raw=raw,
                caller_number=event.call.caller_number,
            )
            session.commit()
            return receipt

    receipt = await run_in_threadpool(_receive)
    started = await dispatch_post_call(
        state, receipt.inbox_id, event.call.call_id, receipt.revision, receipt.workflow_id
    )
    body = {
        "status": "accepted",
        "duplicate": not receipt.created,
        "revision": receipt.revision,
        "workflow_id": receipt.workflow_id,
        "workflow_started": started,
    }
    return JSONResponse(body, status_code=200)


async def dispatch_post_call(
    state: AppState,
    inbox_id: int,
    call_id: str,
    revision: int,
    workflow_id: str,
    platform: str = PLATFORM,
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
            CallsService(session, state.settings.secret_key.get_secret_value()).mark_dispatched(
                inbox_id
            )
            session.commit()

    await run_in_threadpool(_mark)
    return started
