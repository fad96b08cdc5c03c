"""Every voice platform's webhooks: ``POST /v1/webhooks/{platform}/{agent_id}`` and
``POST /v1/webhooks/{platform}/{agent_id}/{hook}`` (``{hook}/{tool_name}`` for a per-tool URL),
the platform resolved through ``connectors.registry.PLATFORMS``.

Hot path: one cached agent lookup, the platform's credential check over the exact bytes sent
(read once, never re-encoded), parsing by the connector, then the answering service; the
platform object shapes the reply. A refused request is recorded in rejected webhooks (an
unauthenticated body only as a redacted excerpt) and answers its 4xx; once authenticated, a
webhook never answers 5xx for something a caller said, and never guesses a caller. End-of-call
payloads go through the inbox, so a re-delivery is a duplicate and a correction becomes the
call's next revision; the reply does not wait for PostCallWorkflow.

Each platform's URLs are listed in the OpenAPI document as concrete paths (from its ``hooks``);
any other URL under ``/v1/webhooks/`` answers 404 naming what exists.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from api.deps import StateDep, auth
from api.errors import error_body, error_responses
from api.state import AppState
from connectors.common import parse_json_body
from connectors.platform import Hook, VoicePlatform, context_reply
from connectors.registry import PLATFORMS, caller_number_in
from core.calls.answering import Answer
from core.calls.events import (
    CallEnded,
    CanonicalEvent,
    ContextRequest,
    KnowledgeRequest,
    ToolCallBatch,
    TransferRequest,
)
from core.errors import AppError, NotFoundError, PayloadTooLargeError
from core.tenancy.agent_info import AgentInfo

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])
log = logging.getLogger("backline.webhooks")
ERRORS = error_responses(400, 401, 404, 409, 413, 422, 429)
# Context answers still running past their platform's budget finish in the background (their
# event row is still written); holding them here keeps them from being garbage-collected.
_late_answers: set[asyncio.Task[Answer]] = set()


async def read_body(request: Request) -> bytes:
    """The raw body, or PayloadTooLargeError (an AppError the route records) over the limit."""
    try:
        return await request.body()
    except HTTPException as exc:
        if exc.status_code != 413:
            raise
        raise PayloadTooLargeError(str(exc.detail)) from exc


def _not_found(detail: str) -> JSONResponse:
    return JSONResponse(error_body(NotFoundError.__name__, detail), status_code=404)


def _hook_path(platform: VoicePlatform, hook: Hook) -> str:
    path = f"/v1/webhooks/{platform.name}/{{agent_id}}"
    if hook.name:
        path += f"/{hook.name}"
    return path + ("/{tool_name}" if hook.per_tool else "")


def _resolve(platform_name: str, hook_path: str) -> tuple[VoicePlatform, Hook, str] | JSONResponse:
    """The platform, its hook and the tool name a URL names, or the 404 saying what exists."""
    platform = PLATFORMS.get(platform_name)
    if platform is None:
        known = ", ".join(sorted(PLATFORMS))
        return _not_found(f"no voice platform '{platform_name}'; Backline speaks {known}")
    name, _, tool_name = hook_path.partition("/")
    for hook in platform.hooks:
        if hook.name == name and hook.per_tool == bool(tool_name) and "/" not in tool_name:
            return platform, hook, tool_name
    urls = ", ".join(_hook_path(platform, h) for h in platform.hooks)
    return _not_found(f"{platform.name} has no webhook '{hook_path}'; its webhooks: {urls}")


# -- replies by event kind ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Answered:
    state: AppState
    platform: VoicePlatform
    agent: AgentInfo
    event: Any
    answer: Answer


def _context(a: _Answered) -> dict[str, Any]:
    assert a.answer.context is not None  # a ContextRequest is always answered with context
    # A served prompt version travels as the platform's variables (backline_system_prompt...).
    reply = context_reply(a.agent, a.event, a.answer, a.state.settings.public_url)
    return a.platform.context_reply(reply)


def _tools(a: _Answered) -> dict[str, Any]:
    # Always HTTP 200 so the agent can voice an error; without a caller (Retell's
    # args_at_root), caller-scoped tools answer an error rather than guessing one.
    return a.platform.tool_reply(a.event, a.answer.tool_results)


_REPLIES: Mapping[type[BaseModel], Callable[[_Answered], dict[str, Any]]] = {
    ContextRequest: _context,
    ToolCallBatch: _tools,
    KnowledgeRequest: lambda a: a.platform.knowledge_reply(a.answer.knowledge),
    TransferRequest: lambda a: a.platform.transfer_reply(),
}


async def _answer_in_budget(
    state: AppState,
    platform: VoicePlatform,
    agent: AgentInfo,
    event: ContextRequest,
    label: str | None,
) -> Answer:
    """The answer, or past the platform's context budget the answer without caller memory."""
    budget = platform.context_budget_s
    if budget is None:
        return await state.answering.answer(agent, event, label=label)
    task = asyncio.create_task(state.answering.answer(agent, event, label=label))
    try:
        # shield: on timeout only the wait is abandoned; the read finishes and records its event.
        return await asyncio.wait_for(asyncio.shield(task), budget)
    except TimeoutError:
        _late_answers.add(task)
        task.add_done_callback(_late_answers.discard)
        log.warning(
            "context for %s agent %s call %s took over %.1fs; answered an empty context",
            platform.name,
            agent.id,
            event.call.call_id,
            budget,
        )
        return state.answering.fallback_answer(agent, event)


# -- the handler ----------------------------------------------------------------------------------


async def handle(
    state: AppState, request: Request, platform_name: str, agent_id: str, hook_path: str
) -> JSONResponse:
    resolved = _resolve(platform_name, hook_path)
    if isinstance(resolved, JSONResponse):
        return resolved
    platform, hook, tool_name = resolved
    answering = state.answering
    raw, authenticated, stored = b"", False, b""
    agent = await state.agents.aget(agent_id)  # a cache hit stays on the event loop
    try:
        raw = await read_body(request)
        if agent is None:
            raise NotFoundError(f"agent '{agent_id}' does not exist; check {platform.url_setting}")
        platform.verify(
            dict(request.headers),
            raw,
            agent.credentials.get(platform.name, []),
            agent_id=agent_id,
            hook=hook.name,
        )
        authenticated = True
        body = parse_json_body(raw)
        base = platform.correction_base(body, hook=hook.name)
        event: CanonicalEvent
        if base is None:
            # Keyed with the deployment secret: a synthetic call id never reveals a number.
            event = platform.parse(
                body,
                hook=hook.name,
                tool_name=tool_name,
                id_key=state.settings.secret_key.get_secret_value(),
            )
            stored = raw  # the inbox keeps what the platform sent, byte for byte
        else:
            earlier = await answering.earlier_call_ended(agent, platform.name, base)
            event, stored = platform.merge_correction(body, earlier)
    except AppError as exc:
        await answering.record_rejection(
            platform.name,
            agent,
            agent_id,
            exc,
            raw,
            authenticated=authenticated,
            caller_number=caller_number_in(raw) if authenticated else None,
        )
        return JSONResponse(error_body(type(exc).__name__, exc.detail), status_code=exc.status_code)

    if isinstance(event, CallEnded):
        return JSONResponse(
            platform.accepted_reply(await answering.accept_call_ended(agent, event, stored))
        )
    # ?prompt_label=staging on a staging number's URL serves that label's version.
    label = request.query_params.get("prompt_label")
    if isinstance(event, ContextRequest):
        answer = await _answer_in_budget(state, platform, agent, event, label)
    else:
        answer = await answering.answer(agent, event, label=label)
    reply = _REPLIES.get(type(event))
    if reply is None:
        return JSONResponse(platform.recorded_reply())
    return JSONResponse(reply(_Answered(state, platform, agent, event, answer)))


# -- routes ---------------------------------------------------------------------------------------

Endpoint = Callable[..., Awaitable[JSONResponse]]


def _endpoint(platform_name: str, hook: Hook) -> Endpoint:
    """A documented concrete URL of one platform's hook, answered by ``handle``."""
    if hook.per_tool:

        async def per_tool(
            agent_id: str, tool_name: str, request: Request, state: StateDep
        ) -> JSONResponse:
            return await handle(state, request, platform_name, agent_id, f"{hook.name}/{tool_name}")

        return per_tool

    async def single(agent_id: str, request: Request, state: StateDep) -> JSONResponse:
        return await handle(state, request, platform_name, agent_id, hook.name)

    return single


for _platform in PLATFORMS.values():
    for _hook in _platform.hooks:
        router.add_api_route(
            _hook_path(_platform, _hook).removeprefix(router.prefix),
            _endpoint(_platform.name, _hook),
            methods=["POST"],
            name=f"{_platform.name}_{_hook.name or 'webhook'}".replace("-", "_"),
            summary=_hook.summary,
            responses=ERRORS,
            openapi_extra=auth("platform"),
        )


@router.post("/{platform}/{agent_id}", include_in_schema=False)
async def platform_webhook(
    platform: str, agent_id: str, request: Request, state: StateDep
) -> JSONResponse:
    """Any platform's single webhook URL (VAPI's server URL)."""
    return await handle(state, request, platform, agent_id, "")


@router.post("/{platform}/{agent_id}/{hook:path}", include_in_schema=False)
async def platform_hook(
    platform: str, agent_id: str, hook: str, request: Request, state: StateDep
) -> JSONResponse:
    """Any platform's named webhook URLs (``events``, ``tools/{tool_name}``...)."""
    return await handle(state, request, platform, agent_id, hook)
