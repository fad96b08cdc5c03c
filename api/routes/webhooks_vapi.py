"""The VAPI server URL: ``POST /v1/webhooks/vapi/{agent_id}``.

Hot path: one cached agent lookup, a credential check, one indexed read of the caller's context
and one cheap append. End-of-call reports go to the inbox and start PostCallWorkflow; the reply
does not wait for the workflow. Replies are always HTTP 200 once the request is authenticated.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from api import edge
from api.deps import StateDep, auth
from api.errors import error_body, error_responses
from connectors.common import parse_json_body
from connectors.registry import PLATFORMS
from connectors.vapi import knowledge as vapi_knowledge
from core.calls.events import (
    CallEnded,
    ContextRequest,
    KnowledgeRequest,
    ToolCallBatch,
    TransferRequest,
)
from core.errors import AppError, NotFoundError

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])
VAPI = PLATFORMS["vapi"]
PLATFORM = VAPI.name


@router.post(
    "/vapi/{agent_id}",
    summary="VAPI server URL",
    responses=error_responses(400, 401, 404, 413, 422, 429),
    openapi_extra=auth("platform"),
)
async def vapi_webhook(agent_id: str, request: Request, state: StateDep) -> JSONResponse:
    raw, authenticated = b"", False
    agent = await run_in_threadpool(state.agents.get, agent_id)
    try:
        raw = await edge.read_body(request)
        if agent is None:
            raise NotFoundError(f"agent '{agent_id}' does not exist; check the server URL")
        VAPI.verify(
            dict(request.headers), raw, agent.credentials.get(PLATFORM, []), agent_id=agent_id
        )
        authenticated = True
        event = VAPI.parse(parse_json_body(raw))
    except AppError as exc:
        await edge.record_rejection(
            state, PLATFORM, agent, agent_id, exc, raw, authenticated=authenticated
        )
        return JSONResponse(error_body(type(exc).__name__, exc.detail), status_code=exc.status_code)

    if isinstance(event, CallEnded):
        return JSONResponse(await edge.accept_call_ended(state, agent, event, raw))
    # ?prompt_label=staging on a staging number's server URL serves that label's version.
    answer = await edge.answer(state, agent, event, request.query_params.get("prompt_label"))
    if isinstance(event, ContextRequest):
        assert answer.context is not None
        return JSONResponse(VAPI.context_reply(edge.context_reply(state, agent, event, answer)))
    if isinstance(event, ToolCallBatch):
        return JSONResponse(VAPI.tool_reply(event, answer.tool_results))
    if isinstance(event, KnowledgeRequest):
        if answer.knowledge is None:
            return JSONResponse({"documents": answer.documents})
        return JSONResponse(vapi_knowledge.knowledge_base_reply(answer.knowledge))
    if isinstance(event, TransferRequest):
        return JSONResponse({"error": "No transfer destination is configured for this agent."})
    return JSONResponse({"status": "recorded"})
