"""Bland webhooks under ``/v1/webhooks/bland/{agent_id}/``: ``dynamic-data``,
``tools/{tool_name}`` and ``post-call``.

Hot path, same shape as the VAPI route: one cached agent lookup, a credential check, parsing by
the connector, then the platform-agnostic edge. Dynamic data and tools carry the agent's tool
token as a bearer (Bland signs neither); post-call payloads carry ``X-Webhook-Signature``.
Dynamic data answers within a budget well inside Bland's 2 s default, with an empty context
rather than late. Post-call payloads go through the inbox, so a re-delivery is a duplicate and
Bland's delayed corrected transcript becomes the call's next revision, replacing what the first
delivery derived. Never answers 5xx for something a caller said, and never guesses a caller.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from api import edge
from api.deps import SessionDep, StateDep, auth
from api.errors import error_body, error_responses
from api.state import AgentInfo, AppState
from connectors.bland.platform import POST_CALL
from connectors.bland.webhooks import (
    encode_payload,
    is_correction_only,
    merge_correction,
    parse_dynamic_data,
    parse_tool_call,
    require_call_id,
)
from connectors.common import parse_json_body
from connectors.platform import ContextReply
from connectors.registry import PLATFORMS
from core.calls import repository as calls_repo
from core.calls.events import CallEnded, ContextRequest, ToolCallBatch
from core.errors import AppError, NotFoundError

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])
BLAND = PLATFORMS["bland"]
PLATFORM = BLAND.name
log = logging.getLogger("backline.bland")
T = TypeVar("T")
Parse = Callable[[AgentInfo, dict[str, Any]], Awaitable[T]]
# Bland's dynamic_data default timeout is 2000 ms and developers often set less (1500 in the
# documented example); past this budget the caller gets an empty context instead of none.
DYNAMIC_DATA_BUDGET_S = 1.0
# Context reads still running past the budget finish in the background (their event row is
# still written); holding them here keeps them from being garbage-collected mid-flight.
_late_answers: set[asyncio.Task[edge.EdgeAnswer]] = set()


def _check_tool_token(agent: AgentInfo, request: Request, raw: bytes) -> None:
    BLAND.verify(request.headers, raw, agent.credentials.get(PLATFORM, []), agent_id=agent.id)


def _check_signature(agent: AgentInfo, request: Request, raw: bytes) -> None:
    BLAND.verify(
        request.headers,
        raw,
        agent.credentials.get(PLATFORM, []),
        agent_id=agent.id,
        hook=POST_CALL,
    )


async def _receive(
    agent_id: str,
    request: Request,
    state: AppState,
    check: Callable[[AgentInfo, Request, bytes], None],
    parse: Parse[T],
) -> tuple[AgentInfo, bytes, T] | JSONResponse:
    """Authenticate and parse, or record the rejection and answer its 4xx."""
    # Signatures cover the exact bytes Bland sent; they are read once and never re-encoded.
    raw, authenticated = b"", False
    agent = await run_in_threadpool(state.agents.get, agent_id)
    try:
        raw = await edge.read_body(request)
        if agent is None:
            raise NotFoundError(f"agent '{agent_id}' does not exist; check the URL set in Bland")
        check(agent, request, raw)
        authenticated = True
        parsed = await parse(agent, parse_json_body(raw))
    except AppError as exc:
        await edge.record_rejection(
            state, PLATFORM, agent, agent_id, exc, raw, authenticated=authenticated
        )
        return JSONResponse(error_body(type(exc).__name__, exc.detail), status_code=exc.status_code)
    return agent, raw, parsed


# -- dynamic data -----------------------------------------------------------------------------


@router.post(
    "/bland/{agent_id}/dynamic-data",
    summary="Bland dynamic_data fetch (caller context)",
    responses=error_responses(400, 401, 404, 413, 422, 429),
    openapi_extra=auth("platform"),
)
async def bland_dynamic_data(agent_id: str, request: Request, state: StateDep) -> JSONResponse:
    async def parse(_agent: AgentInfo, body: dict[str, Any]) -> ContextRequest:
        return parse_dynamic_data(body)

    received = await _receive(agent_id, request, state, _check_tool_token, parse)
    if isinstance(received, JSONResponse):
        return received
    agent, _raw, event = received
    task = asyncio.create_task(edge.answer(state, agent, event))
    try:
        # shield: on timeout only the wait is abandoned; the read finishes and records its event.
        answer = await asyncio.wait_for(asyncio.shield(task), DYNAMIC_DATA_BUDGET_S)
    except TimeoutError:
        _late_answers.add(task)
        task.add_done_callback(_late_answers.discard)
        log.warning(
            "dynamic data for agent %s call %s took over %.1fs; answered an empty context",
            agent.id,
            event.call.call_id,
            DYNAMIC_DATA_BUDGET_S,
        )
        variables = edge.fallback_variables(state, agent, event)
    else:
        assert answer.context is not None  # a ContextRequest is always answered with context
        # With a served prompt version: backline_system_prompt and friends, for the Bland
        # agent's prompt to include.
        variables = edge.prompt_variables(answer)
    return JSONResponse(
        BLAND.context_reply(
            ContextReply(agent_id=agent.id, call_id=event.call.call_id, variables=variables)
        )
    )


# -- tools ------------------------------------------------------------------------------------


@router.post(
    "/bland/{agent_id}/tools/{tool_name}",
    summary="Bland custom tool (one per tool)",
    responses=error_responses(400, 401, 404, 413, 422, 429),
    openapi_extra=auth("platform"),
)
async def bland_tool(
    agent_id: str, tool_name: str, request: Request, state: StateDep
) -> JSONResponse:
    async def parse(_agent: AgentInfo, body: dict[str, Any]) -> ToolCallBatch:
        return parse_tool_call(body, tool_name)

    received = await _receive(agent_id, request, state, _check_tool_token, parse)
    if isinstance(received, JSONResponse):
        return received
    agent, _raw, event = received
    answer = await edge.answer(state, agent, event)
    # One tool per URL, so one outcome; always HTTP 200 so the agent can voice an error.
    return JSONResponse(BLAND.tool_reply(event, answer.tool_results))


# -- post-call --------------------------------------------------------------------------------


def _earlier_post_calls(session: Session, agent_id: str, call_id: str) -> list[Mapping[str, Any]]:
    texts = calls_repo.inbox_payloads_for_call(session, agent_id, PLATFORM, "call_ended", call_id)
    bodies: list[Mapping[str, Any]] = []
    for text in texts:
        try:
            body = json.loads(text)
        except json.JSONDecodeError:
            continue  # the inbox only holds payloads that parsed; a bad one is not a base
        if isinstance(body, dict):
            bodies.append(body)
    return bodies


@router.post(
    "/bland/{agent_id}/post-call",
    summary="Bland post-call webhook",
    responses=error_responses(400, 401, 404, 409, 413, 422, 429),
    openapi_extra=auth("platform"),
)
async def bland_post_call(
    agent_id: str, request: Request, session: SessionDep, state: StateDep
) -> JSONResponse:
    async def parse(agent: AgentInfo, body: dict[str, Any]) -> tuple[CallEnded, bytes | None]:
        if not is_correction_only(body):
            return BLAND.parse_call_ended(body), None
        # Bland's delayed POST may carry only the corrected transcript: lay it over the call
        # object received first, so the inbox row is a whole call again (caller, times, ids)
        # and the post-call activity needs nothing but that row.
        call_id = require_call_id(body)
        earlier = await run_in_threadpool(_earlier_post_calls, session, agent.id, call_id)
        merged = merge_correction(earlier, body)
        return BLAND.parse_call_ended(merged), encode_payload(merged)

    received = await _receive(agent_id, request, state, _check_signature, parse)
    if isinstance(received, JSONResponse):
        return received
    agent, raw, (event, merged) = received
    # The inbox keeps what Bland sent, byte for byte, unless it had to be merged.
    stored = merged if merged is not None else raw
    return JSONResponse(await edge.accept_call_ended(state, agent, event, stored))
