"""Retell webhooks under ``/v1/webhooks/retell/{agent_id}/``: ``events``, ``inbound`` and
``functions/{tool_name}``.

Hot path, same shape as the VAPI route: one cached agent lookup, an ``X-Retell-Signature`` check
with the agent's Retell API key, parsing by the connector, then the platform-agnostic edge.
Retell retries every webhook up to 3 times, so each answer is idempotent: ``call_ended`` goes
through the inbox (one row, one PostCallWorkflow per payload), ``call_analyzed`` only upserts
the call's analysis and never starts a workflow, and the other events are cheap appends.
Never answers 5xx for something a caller said, and never guesses a caller.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from api import edge
from api.deps import StateDep, auth
from api.errors import error_body, error_responses
from api.state import AgentInfo, AppState
from connectors.common import parse_json_body
from connectors.registry import PLATFORMS
from connectors.retell.webhooks import parse_function_call, parse_inbound
from core.calls.events import CallEnded, CanonicalEvent
from core.errors import AppError, NotFoundError

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])
RETELL = PLATFORMS["retell"]
PLATFORM = RETELL.name
E = TypeVar("E", bound=CanonicalEvent)


async def _receive(
    agent_id: str,
    request: Request,
    state: AppState,
    parse: Callable[[Mapping[str, Any]], E],
) -> tuple[AgentInfo, bytes, E] | JSONResponse:
    """Authenticate and parse, or record the rejection and answer its 4xx."""
    # The signature covers the exact bytes Retell sent; they are read once and never re-encoded.
    raw, authenticated = b"", False
    agent = await run_in_threadpool(state.agents.get, agent_id)
    try:
        raw = await edge.read_body(request)
        if agent is None:
            raise NotFoundError(f"agent '{agent_id}' does not exist; check the webhook URL")
        RETELL.verify(request.headers, raw, agent.credentials.get(PLATFORM, []), agent_id=agent_id)
        authenticated = True
        event = parse(parse_json_body(raw))
    except AppError as exc:
        await edge.record_rejection(
            state, PLATFORM, agent, agent_id, exc, raw, authenticated=authenticated
        )
        return JSONResponse(error_body(type(exc).__name__, exc.detail), status_code=exc.status_code)
    return agent, raw, event


@router.post(
    "/retell/{agent_id}/events",
    summary="Retell agent event webhook",
    responses=error_responses(400, 401, 404, 413, 422, 429),
    openapi_extra=auth("platform"),
)
async def retell_events(agent_id: str, request: Request, state: StateDep) -> JSONResponse:
    received = await _receive(agent_id, request, state, RETELL.parse)
    if isinstance(received, JSONResponse):
        return received
    agent, raw, event = received
    if isinstance(event, CallEnded):
        return JSONResponse(await edge.accept_call_ended(state, agent, event, raw))
    # call_analyzed lands here too: the edge upserts the call's analysis, no workflow starts.
    await edge.answer(state, agent, event)
    return JSONResponse({"status": "recorded"})


@router.post(
    "/retell/{agent_id}/inbound",
    summary="Retell phone-number inbound webhook",
    responses=error_responses(400, 401, 404, 413, 422, 429),
    openapi_extra=auth("platform"),
)
async def retell_inbound(agent_id: str, request: Request, state: StateDep) -> JSONResponse:
    # Keyed with the deployment secret so a synthetic call id never reveals the caller's number.
    id_key = state.settings.secret_key.get_secret_value()
    received = await _receive(
        agent_id, request, state, lambda body: parse_inbound(body, id_key=id_key)
    )
    if isinstance(received, JSONResponse):
        return received
    agent, _raw, event = received
    answer = await edge.answer(state, agent, event)
    assert answer.context is not None  # a ContextRequest is always answered with context
    # A served prompt version travels as dynamic variables (backline_system_prompt...), and
    # a version whose model names a Retell agent overrides the agent for this call.
    return JSONResponse(RETELL.context_reply(edge.context_reply(state, agent, event, answer)))


@router.post(
    "/retell/{agent_id}/functions/{tool_name}",
    summary="Retell custom function (one per tool)",
    responses=error_responses(400, 401, 404, 413, 422, 429),
    openapi_extra=auth("platform"),
)
async def retell_function(
    agent_id: str, tool_name: str, request: Request, state: StateDep
) -> JSONResponse:
    received = await _receive(
        agent_id, request, state, lambda body: parse_function_call(body, tool_name)
    )
    if isinstance(received, JSONResponse):
        return received
    agent, _raw, event = received
    answer = await edge.answer(state, agent, event)
    # One function per URL, so one outcome; with args_at_root there is no call and no caller,
    # and the edge answers caller-scoped tools with an error rather than guessing a caller.
    return JSONResponse(RETELL.tool_reply(event, answer.tool_results))
