"""The custom platform's URL: ``POST /v1/webhooks/custom/{agent_id}``.

Same shape as the VAPI route: one cached agent lookup, a ``Backline-Signature`` check, parsing
and reply shaping by the connector (``connectors/custom``), the platform-agnostic edge in
between. ``call.ended`` goes to the inbox and starts PostCallWorkflow; the reply does not wait
for the workflow. Replies are always HTTP 200 once the request is authenticated and parsed.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from api import edge
from api.deps import StateDep, auth
from api.errors import error_body, error_responses
from connectors.common import parse_json_body
from connectors.custom import mapping as custom_mapping
from connectors.registry import PLATFORMS
from core.calls.events import CallEnded, ContextRequest, KnowledgeRequest, ToolCallBatch
from core.errors import AppError, NotFoundError

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])
CUSTOM = PLATFORMS["custom"]
PLATFORM = CUSTOM.name


@router.post(
    "/custom/{agent_id}",
    summary="Custom voice stack webhook (Backline's own contract)",
    responses=error_responses(400, 401, 404, 413, 422, 429),
    openapi_extra=auth("platform"),
)
async def custom_webhook(agent_id: str, request: Request, state: StateDep) -> JSONResponse:
    raw, authenticated = b"", False
    agent = await run_in_threadpool(state.agents.get, agent_id)
    try:
        raw = await edge.read_body(request)
        if agent is None:
            raise NotFoundError(f"agent '{agent_id}' does not exist; check the webhook URL")
        CUSTOM.verify(
            dict(request.headers), raw, agent.credentials.get(PLATFORM, []), agent_id=agent_id
        )
        authenticated = True
        event = CUSTOM.parse(parse_json_body(raw))
    except AppError as exc:
        await edge.record_rejection(
            state, PLATFORM, agent, agent_id, exc, raw, authenticated=authenticated
        )
        return JSONResponse(error_body(type(exc).__name__, exc.detail), status_code=exc.status_code)

    if isinstance(event, CallEnded):
        receipt = await edge.accept_call_ended(state, agent, event, raw)
        return JSONResponse(custom_mapping.accepted_reply(receipt))
    # ?prompt_label=staging on a staging deployment's URL serves that label's version.
    answer = await edge.answer(state, agent, event, request.query_params.get("prompt_label"))
    if isinstance(event, ContextRequest):
        assert answer.context is not None
        return JSONResponse(CUSTOM.context_reply(edge.context_reply(state, agent, event, answer)))
    if isinstance(event, ToolCallBatch):
        return JSONResponse(CUSTOM.tool_reply(event, answer.tool_results))
    if isinstance(event, KnowledgeRequest):
        return JSONResponse(custom_mapping.knowledge_reply(answer.knowledge))
    return JSONResponse(custom_mapping.recorded_reply())
