"""The platform-agnostic part of every webhook route.

A platform route verifies and parses with its connector, then hands canonical events here:
rejections are recorded, context and tool calls are answered from core, informational events
are appended cheaply, and end-of-call payloads go to the inbox and start PostCallWorkflow.
The route shapes the canonical answer into its platform's reply.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from api import knowledge_runtime, tool_gateway
from api.state import AgentInfo, AppState
from connectors.platform import ContextReply
from connectors.registry import PLATFORMS
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
from core.db import utcnow
from core.errors import AppError, PayloadTooLargeError
from core.knowledge.schemas import KnowledgeAnswer
from core.memory.schemas import CallerContext
from core.memory.service import MemoryService
from core.pii.phone import caller_hash as hash_caller
from core.prompts.serving import ServedPrompt, serve_prompt
from core.tools.builtins import KnowledgeSearch, ToolContext, ToolOutcome, run_builtin
from core.tools.schemas import GatewayResult
from orchestration.post_call_types import PostCallInput
from orchestration.starters import start_post_call

log = logging.getLogger("backline.edge")
_EXCERPT_BYTES = 160
AGENT_ID_MAX = 64  # the column's width; longer ids never name an agent
_DIGITS = re.compile(r"\d{3,}")
# The caller-number fields of every platform's payloads (a refused body is searched for any).
_CALLER_FIELDS = sorted({f for p in PLATFORMS.values() for f in p.caller_number_fields})
_NUMBER_IN_PAYLOAD = re.compile(
    rb'"(?:' + "|".join(map(re.escape, _CALLER_FIELDS)).encode() + rb')"\s*:\s*"([^"]{3,40})"'
)


@dataclass
class EdgeAnswer:
    """What core answered for one canonical event; connectors shape it for their platform."""

    context: CallerContext | None = None
    tool_results: list[tuple[ToolCall, ToolOutcome]] = field(default_factory=list)
    documents: list[dict[str, Any]] = field(default_factory=list)
    # The prompt version served at a context request (None: the agent serves none).
    prompt: ServedPrompt | None = None
    # The retrieval behind a knowledge request; connectors shape its hits and outdated signal.
    knowledge: KnowledgeAnswer | None = None


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


def prompt_variables(answer: EdgeAnswer) -> dict[str, str]:
    """Context variables plus, when a version was served, the rendered prompt as
    ``backline_system_prompt`` / ``backline_first_message`` / ``backline_prompt_version``
    (how Retell and Bland deliver it: the platform agent's prompt includes the variable) and
    the version's variable defaults under their own names, for the platform's ``{{name}}``."""
    variables = answer.prompt.variables() if answer.prompt is not None else {}
    # Backline's own namespace always wins over a version default of the same name.
    variables.update(context_variables(answer.context or CallerContext()))
    return variables


def context_reply(
    state: AppState, agent: AgentInfo, event: ContextRequest, answer: EdgeAnswer
) -> ContextReply:
    """What a platform's context reply is shaped from."""
    return ContextReply(
        agent_id=agent.id,
        call_id=event.call.call_id,
        variables=prompt_variables(answer),
        prompt=answer.prompt,
        public_url=state.settings.public_url,
        assistant_id=agent.vapi_assistant_id,
        assistant=agent.vapi_assistant,
    )


def fallback_variables(state: AppState, agent: AgentInfo, event: ContextRequest) -> dict[str, str]:
    """For a context request that missed its time budget: no memory, but the served prompt
    still (cache and render only, no database), so a platform whose prompt *is* the variable
    never runs with an empty one. The late answer still records the version on the call."""
    number = event.call.caller_number
    answer = EdgeAnswer(context=CallerContext())
    answer.prompt = serve_prompt(
        state.prompts,
        agent_id=agent.id,
        agent_name=agent.name,
        caller_key=(hash_caller(_secret(state), number) if number else None)
        or f"call:{event.call.call_id}",
        context=CallerContext(),
        now=utcnow(),
        call_variables=event.variables,
    )
    return prompt_variables(answer)


def _secret(state: AppState) -> str:
    return state.settings.secret_key.get_secret_value()


async def read_body(request: Request) -> bytes:
    """The raw body, or PayloadTooLargeError (an AppError the route records) over the limit."""
    try:
        return await request.body()
    except HTTPException as exc:
        if exc.status_code != 413:
            raise
        raise PayloadTooLargeError(str(exc.detail)) from exc


def redacted_excerpt(raw: bytes) -> str:
    """What is kept of a body nobody authenticated: its size and a short, digit-masked start
    (enough to recognize a misconfigured sender, too little to store anyone's data)."""
    head = raw[:_EXCERPT_BYTES].decode("utf-8", errors="replace")
    head = _DIGITS.sub(lambda m: "#" * len(m.group()), head)
    head = "".join(c if c.isprintable() else "?" for c in head)
    return f"[unauthenticated request, {len(raw)} bytes, body not kept] {head}"


async def record_rejection(
    state: AppState,
    platform: str,
    agent: AgentInfo | None,
    agent_id: str,
    exc: AppError,
    raw: bytes,
    *,
    authenticated: bool = False,
) -> None:
    """Record a refused webhook. Only an authenticated sender's body is kept whole (for the
    integrator to fix and replay); an unauthenticated one keeps metadata and a short excerpt."""
    match = _NUMBER_IN_PAYLOAD.search(raw) if authenticated else None
    if not authenticated:
        raw = redacted_excerpt(raw).encode("utf-8")

    def _store() -> None:
        with Session(state.engine) as session:
            CallsService(session, _secret(state)).reject(
                platform=platform,
                agent_id=agent_id[:AGENT_ID_MAX],  # an id from the URL, as long as anyone sent
                org_id=agent.org_id if agent else None,
                reason=type(exc).__name__,
                detail=exc.detail,
                status_code=exc.status_code,
                raw=raw,
                caller_number=match.group(1).decode(errors="replace") if match else None,
            )
            session.commit()

    await run_in_threadpool(_store)


def _run_tool(
    tc: ToolCall,
    ctx: ToolContext,
    memory: MemoryService,
    routed: GatewayResult | None = None,
    knowledge: KnowledgeSearch | None = None,
) -> ToolOutcome:
    outcome = run_builtin(tc.name, tc.arguments, ctx, memory, knowledge)
    if outcome is None and routed is not None:
        outcome = routed.outcome  # answered by the MCP tool gateway (api.tool_gateway)
    if outcome is None:
        return ToolOutcome(error=f"Unknown tool '{tc.name}': this agent has no such tool.")
    return outcome


def _answer_sync(
    state: AppState,
    agent: AgentInfo,
    event: CanonicalEvent,
    prompt_label: str | None = None,
    routed: dict[int, GatewayResult] | None = None,
) -> EdgeAnswer:
    with Session(state.engine, expire_on_commit=False) as session:
        calls = CallsService(session, _secret(state))
        memory = MemoryService(session, state.embedder, state.vectors)
        call: CallRef | None = getattr(event, "call", None)
        number = call.caller_number if call else None
        answer = EdgeAnswer()
        data: dict[str, Any] = {}
        platform_type: str = event.kind
        if isinstance(event, ContextRequest):
            fetch_started = time.perf_counter()
            caller_hash = calls.caller_hash(number)
            answer.context = memory.get_context(agent.org_id, agent.id, caller_hash)
            data = {"caller_known": answer.context.known}
            if caller_hash is None:
                data["no_memory"] = calls.no_memory_reason(number)
            # From the in-process cache: no database round trip for the prompt.
            answer.prompt = serve_prompt(
                state.prompts,
                agent_id=agent.id,
                agent_name=agent.name,
                caller_key=caller_hash or f"call:{event.call.call_id}",
                context=answer.context,
                now=utcnow(),
                label=prompt_label,
                call_variables=event.variables,
            )
            # How long the caller's context and prompt took (the scorecard's context fetch).
            data["latency_ms"] = round((time.perf_counter() - fetch_started) * 1000, 2)
            if answer.prompt is not None:
                data.update(prompt_version=answer.prompt.ref, prompt_source=answer.prompt.source)
                calls.touch_call(
                    org_id=agent.org_id,
                    agent_id=agent.id,
                    platform=event.call.platform,
                    call_id=event.call.call_id,
                    caller_number=number,
                    direction=event.call.direction,
                    prompt_version=answer.prompt.ref,
                )
        elif isinstance(event, ToolCallBatch):
            tool_ctx = ToolContext(agent.org_id, agent.id, calls.caller_hash(number))
            routed = routed or {}
            knowledge = knowledge_runtime.CallKnowledge(state, session, agent)
            answer.tool_results = [
                (tc, _run_tool(tc, tool_ctx, memory, routed.get(i), knowledge))
                for i, tc in enumerate(event.calls)
            ]
            knowledge.record(calls, call)  # each knowledge_search joins the call's trace
            # Gateway calls join the call's trace and the audit log in this same commit.
            tool_gateway.record_results(session, state, routed)
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
        elif isinstance(event, KnowledgeRequest):
            answer.knowledge, data = knowledge_runtime.answer_request(state, session, agent, event)
        elif isinstance(event, TransferRequest):
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


async def answer(
    state: AppState, agent: AgentInfo, event: CanonicalEvent, prompt_label: str | None = None
) -> EdgeAnswer:
    routed = (
        await tool_gateway.route_tool_calls(state, agent, event)
        if isinstance(event, ToolCallBatch)
        else None
    )
    return await run_in_threadpool(_answer_sync, state, agent, event, prompt_label, routed)


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
    """Start the workflow (once); None when it could not start now (the dispatcher retries)."""
    if state.temporal is None:
        return None
    try:
        return await start_inbox_workflow(state, inbox_id, platform, call_id, revision, workflow_id)
    except Exception as exc:
        log.warning("could not start %s yet: %s", clip(workflow_id), clip(str(exc)))
        return None


async def start_inbox_workflow(
    state: AppState, inbox_id: int, platform: str, call_id: str, revision: int, workflow_id: str
) -> bool:
    """Start the inbox row's workflow and mark the row dispatched; raises when it cannot."""
    assert state.temporal is not None
    started = await start_post_call(
        state.temporal,
        workflow_id=workflow_id,
        data=PostCallInput(
            inbox_id=inbox_id, platform=platform, call_id=call_id, revision=revision
        ),
        task_queue=state.settings.task_queue,
    )

    def _mark() -> None:
        with Session(state.engine) as session:
            CallsService(session, _secret(state)).mark_dispatched(inbox_id)
            session.commit()

    await run_in_threadpool(_mark)
    return started


def clip(text: str, limit: int = 160) -> str:
    """A log-sized excerpt: ids and errors can be as long as whatever a caller sent."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"
