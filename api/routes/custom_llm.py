"""Backline as the platform's LLM: an OpenAI-compatible chat-completions endpoint per agent.

``POST /v1/agents/{agent_id}/chat/completions`` (base URL ``/v1/agents/{agent_id}``) and VAPI's
custom-LLM shape ``POST /v1/agents/{agent_id}/vapi-llm/chat/completions`` (VAPI appends
``/chat/completions`` to the URL it is given). The platform sends its whole message list each
turn; the agent runtime (``core.agent.runtime``) answers it with the served prompt (its system
message replaces the platform's), caller memory, per-turn knowledge and Backline's tools run
server-side; calls of the platform's own tools come back as ``tool_calls``. Whole or streamed
(server-sent ``chat.completion.chunk`` events ending with ``data: [DONE]``). An upstream model
failure answers the fallback sentence, never an error.

Authentication: ``Authorization: Bearer`` with the agent's VAPI ``bearer`` credential, or an
API key of the agent's organization granting ``content`` (or the operator token).

The call: VAPI's body carries a ``call`` object (``call.id``, ``call.customer.number``). The
first request of a call id opens the call (a context request: memory, the served prompt
version recorded on the call) and later requests reuse it, from a small in-process map. Without
a call object, each request is its own call, served without caller memory (recorded as such).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import replace
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from api.deps import StateDep, auth
from api.errors import error_responses
from api.routes.webhooks import read_body
from api.state import AppState
from connectors.common import parse_json_body
from core.agent.llm import ChatMessage, ToolCall, ToolSpec
from core.agent.runtime import CallTarget, Conversation, TurnResult
from core.calls.events import CallRef, Informational, check_call_id
from core.errors import AuthenticationError, InvalidInputError, NotFoundError
from core.prompts.service import require_any
from core.tenancy.agent_info import AgentInfo
from core.tenancy.service import TenancyService

router = APIRouter(prefix="/v1/agents/{agent_id}", tags=["custom-llm"])
log = logging.getLogger("backline.custom_llm")
ERRORS = error_responses(400, 401, 403, 404, 413, 422, 429)
PLATFORM = "vapi"  # the platform whose call object the body carries
NO_CALL_PLATFORM = "custom_llm"  # a request without call metadata
CALL_TTL_S = 2 * 3600.0
MAX_CALLS = 5000


# -- the in-process map of open calls ---------------------------------------------------------


class OpenCalls:
    """Conversations by (agent, call id), opened once; the least recently used go first."""

    def __init__(self, max_calls: int = MAX_CALLS, ttl_s: float = CALL_TTL_S) -> None:
        self._calls: dict[tuple[str, str], tuple[float, Conversation]] = {}
        self.opening: dict[tuple[str, str], asyncio.Future[Conversation]] = {}
        self._max = max_calls
        self._ttl = ttl_s

    def get(self, agent_id: str, call_id: str) -> Conversation | None:
        key = (agent_id, call_id)
        hit = self._calls.pop(key, None)
        if hit is None or time.monotonic() - hit[0] > self._ttl:
            return None
        self._calls[key] = (time.monotonic(), hit[1])
        return hit[1]

    def put(self, agent_id: str, call_id: str, conversation: Conversation) -> None:
        self._calls[(agent_id, call_id)] = (time.monotonic(), conversation)
        while len(self._calls) > self._max:
            self._calls.pop(next(iter(self._calls)))


def open_calls(state: AppState) -> OpenCalls:
    calls = state.__dict__.get("custom_llm_calls")
    if calls is None:
        calls = state.__dict__["custom_llm_calls"] = OpenCalls()
    assert isinstance(calls, OpenCalls)
    return calls


# -- authentication ---------------------------------------------------------------------------


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    return header[7:].strip() if header.lower().startswith("bearer ") else None


def authenticate(state: AppState, request: Request, agent: AgentInfo) -> str:
    """The actor: the agent's VAPI bearer credential, or an org API key granting content."""
    token = _bearer(request)
    for cred in agent.credentials.get(PLATFORM, []):
        if cred.kind != "bearer":
            continue
        sent = token
        if cred.header_name and cred.header_name.lower() != "authorization":
            sent = request.headers.get(cred.header_name)
        if sent and hmac.compare_digest(sent.encode(), cred.secret.encode()):
            return "platform:vapi"
    settings = state.settings
    with Session(state.engine) as session:
        tenancy = TenancyService(
            session, settings.secret_key.get_secret_value(), settings.admin_token.get_secret_value()
        )
        principal = tenancy.authenticate(token)
        if not principal.operator:
            tenancy.require_own_agent(principal, agent.id)
            require_any(principal, ("content",), agent.org_id)
    return principal.actor


# -- the request ------------------------------------------------------------------------------


def _text(content: Any) -> str | None:
    if content is None or isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            str(p.get("text", "")) for p in content if isinstance(p, Mapping) and "text" in p
        )
    return str(content)


def to_messages(raw: Any) -> list[ChatMessage]:
    if not isinstance(raw, list) or not raw:
        raise InvalidInputError("body field 'messages' must be a non-empty list of messages")
    messages: list[ChatMessage] = []
    for i, m in enumerate(raw):
        if not isinstance(m, Mapping):
            raise InvalidInputError(f"body field 'messages[{i}]' must be an object")
        role = m.get("role")
        content = _text(m.get("content"))
        if role in ("system", "developer"):
            messages.append(ChatMessage.system(content or ""))
        elif role == "user":
            messages.append(ChatMessage.user(content or ""))
        elif role == "tool":
            messages.append(
                ChatMessage.tool_result(str(m.get("tool_call_id") or ""), content or "")
            )
        elif role == "assistant":
            calls = []
            for c in m.get("tool_calls") or ():
                fn = c.get("function") if isinstance(c, Mapping) else None
                if isinstance(fn, Mapping):
                    calls.append(
                        ToolCall(
                            str(c.get("id") or ""),
                            str(fn.get("name") or ""),
                            str(fn.get("arguments") or "{}"),
                        )
                    )
            messages.append(ChatMessage.assistant(content, calls))
        else:
            raise InvalidInputError(
                f"body field 'messages[{i}].role' must be system, user, assistant or tool"
            )
    return messages


def platform_tools(raw: Any) -> list[ToolSpec]:
    tools: list[ToolSpec] = []
    for t in raw or ():
        fn = t.get("function") if isinstance(t, Mapping) else None
        if isinstance(fn, Mapping) and fn.get("name"):
            params = fn.get("parameters")
            tools.append(
                ToolSpec(
                    str(fn["name"]),
                    str(fn.get("description") or ""),
                    dict(params)
                    if isinstance(params, Mapping)
                    else {"type": "object", "properties": {}},
                )
            )
    return tools


def call_metadata(body: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """VAPI's ``call.id`` and ``call.customer.number`` (None when absent)."""
    call = body.get("call")
    if not isinstance(call, Mapping) or not isinstance(call.get("id"), str) or not call["id"]:
        return None, None
    customer = call.get("customer") if isinstance(call.get("customer"), Mapping) else {}
    if not customer and isinstance(body.get("customer"), Mapping):
        customer = body["customer"]
    number = customer.get("number") if isinstance(customer, Mapping) else None
    return check_call_id(call["id"], "call.id"), number if isinstance(number, str) else None


async def conversation_for(
    state: AppState, agent: AgentInfo, body: Mapping[str, Any], actor: str
) -> Conversation:
    """The call's conversation: opened by its first request (concurrent first requests share
    one opening), reused by the later ones."""
    call_id, number = call_metadata(body)
    if call_id is None:
        return await _open(state, agent, body, actor, None, None)
    calls = open_calls(state)
    found = calls.get(agent.id, call_id)
    if found is not None:
        return found
    key = (agent.id, call_id)
    pending = calls.opening.get(key)
    if pending is None:
        pending = asyncio.ensure_future(_open(state, agent, body, actor, call_id, number))
        calls.opening[key] = pending
        try:
            conversation = await pending
            calls.put(agent.id, call_id, conversation)
            return conversation
        finally:
            calls.opening.pop(key, None)
    return await pending


async def _open(
    state: AppState,
    agent: AgentInfo,
    body: Mapping[str, Any],
    actor: str,
    call_id: str | None,
    number: str | None,
) -> Conversation:
    platform = PLATFORM if call_id is not None else NO_CALL_PLATFORM
    target = CallTarget(
        call_id=call_id or f"llm-{uuid.uuid4().hex}", platform=platform, caller_number=number
    )
    conversation = await state.runtime.open_call(agent, target)
    requested = body.get("model") if isinstance(body.get("model"), str) else None
    served_model = (conversation.served.model.get("model") if conversation.served else None) or None
    if served_model is None and requested:
        # No served version names a model: the platform's choice applies.
        conversation.settings = replace(conversation.settings, model=requested)
    ref = CallRef(platform=platform, call_id=target.call_id, caller_number=number)
    await state.answering.answer(
        agent,
        Informational(
            call=ref,
            platform_type="custom_llm_opened",
            data={
                "requested_model": requested,
                "model": conversation.settings.model,
                "model_source": "prompt_version" if served_model else "request_or_default",
                "call_metadata": call_id is not None,
                "actor": actor,
            },
        ),
    )
    return conversation


# -- the response -----------------------------------------------------------------------------


def completion(result: TurnResult, completion_id: str, created: int) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": result.text or None}
    if result.platform_tool_calls:
        message["tool_calls"] = result.platform_tool_calls
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": result.model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": "tool_calls" if result.platform_tool_calls else "stop",
            }
        ],
        "usage": result.usage,
    }


def _chunk(
    completion_id: str, created: int, model: str, delta: dict[str, Any] | None, **extra: Any
) -> str:
    body: dict[str, Any] = {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": []
        if delta is None
        else [
            {
                "index": 0,
                "delta": delta,
                "logprobs": None,
                "finish_reason": extra.pop("finish_reason", None),
            }
        ],
        **extra,
    }
    return f"data: {json.dumps(body)}\n\n"


async def stream_turn(
    conversation: Conversation,
    history: list[ChatMessage],
    tools: list[ToolSpec],
    include_usage: bool,
) -> AsyncIterator[str]:
    completion_id, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
    model = conversation.settings.model
    yield _chunk(completion_id, created, model, {"role": "assistant", "content": ""})
    result: TurnResult | None = None
    async for delta in conversation.respond_stream(None, history=history, platform_tools=tools):
        if delta.text:
            yield _chunk(completion_id, created, model, {"content": delta.text})
        if delta.result is not None:
            result = delta.result
    assert result is not None
    for index, call in enumerate(result.platform_tool_calls):
        yield _chunk(
            completion_id, created, result.model, {"tool_calls": [{"index": index, **call}]}
        )
    finish = "tool_calls" if result.platform_tool_calls else "stop"
    yield _chunk(completion_id, created, result.model, {}, finish_reason=finish)
    if include_usage:
        yield _chunk(completion_id, created, result.model, None, usage=result.usage)
    yield "data: [DONE]\n\n"


async def chat_completions(state: AppState, request: Request, agent_id: str) -> Any:
    agent = await state.agents.aget(agent_id)
    if agent is None:
        raise NotFoundError(f"agent '{agent_id}' does not exist")
    if _bearer(request) is None and not any(
        c.header_name and request.headers.get(c.header_name)
        for c in agent.credentials.get(PLATFORM, [])
    ):
        raise AuthenticationError(
            "missing bearer token: send 'Authorization: Bearer <the agent's VAPI bearer "
            "credential or an API key>'"
        )
    actor = await run_in_threadpool(authenticate, state, request, agent)
    body = parse_json_body(await read_body(request))
    if not isinstance(body, Mapping):
        raise InvalidInputError("the body must be a JSON object (a chat-completions request)")
    history = to_messages(body.get("messages"))
    tools = platform_tools(body.get("tools"))
    conversation = await conversation_for(state, agent, body, actor)
    if body.get("stream"):
        options = body.get("stream_options")
        include_usage = isinstance(options, Mapping) and bool(options.get("include_usage"))
        return StreamingResponse(
            stream_turn(conversation, history, tools, include_usage),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache"},
        )
    result = await conversation.respond(None, history=history, platform_tools=tools)
    return JSONResponse(completion(result, f"chatcmpl-{uuid.uuid4().hex}", int(time.time())))


_DOC = {
    "requestBody": {
        "content": {"application/json": {"schema": {"type": "object"}}},
        "required": True,
    }
}


@router.post(
    "/chat/completions",
    responses=ERRORS,
    openapi_extra={**auth("platform or content"), **_DOC},
)
async def agent_chat_completions(agent_id: str, request: Request, state: StateDep) -> Any:
    """OpenAI-compatible chat completions answered by the agent (base URL
    ``/v1/agents/{agent_id}``)."""
    return await chat_completions(state, request, agent_id)


@router.post(
    "/vapi-llm/chat/completions",
    responses=ERRORS,
    openapi_extra={**auth("platform or content"), **_DOC},
)
async def vapi_chat_completions(agent_id: str, request: Request, state: StateDep) -> Any:
    """VAPI's custom LLM (model URL ``/v1/agents/{agent_id}/vapi-llm``)."""
    return await chat_completions(state, request, agent_id)
