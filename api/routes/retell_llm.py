"""Retell's custom LLM WebSocket, served by Backline:
``WS /v1/agents/{agent_id}/retell-llm/{token}/{call_id}``.

In Retell the agent's LLM WebSocket URL is set to ``wss://<host>/v1/agents/{agent_id}/retell-llm/
{token}``; Retell appends ``/{call_id}`` itself. ``token`` is the agent's Retell ``llm_token``
credential, compared in constant time. An unknown agent or a wrong token closes the socket with
1008 (policy violation) right after the handshake, before any message is sent; a deployment
without an agent runtime closes with 1011. The protocol itself is
``connectors.retell.llm_ws`` (docs/custom-llm.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from fastapi import APIRouter, WebSocket
from starlette.concurrency import run_in_threadpool
from starlette.websockets import WebSocketDisconnect, WebSocketState

from api.state import AppState
from connectors.retell.llm_ws import (
    PLATFORM,
    CallOpenFailedError,
    RetellLlmSession,
    TranscriptUpdate,
    TurnResponder,
    llm_token_matches,
)
from core.calls.answering import clip
from core.calls.events import CallRef, Informational, check_call_id
from core.errors import AppError

router = APIRouter(tags=["retell"])
log = logging.getLogger("backline.retell_llm")
POLICY_VIOLATION = 1008
INTERNAL_ERROR = 1011


class ResponderUnavailableError(Exception):
    """This process has no agent runtime to answer with."""


def _responder(state: AppState) -> TurnResponder:
    """The agent runtime that answers the call's turns."""
    if not state.settings.llm_configured:
        raise ResponderUnavailableError(
            "no LLM is configured (set BACKLINE_LLM_BASE_URL); Retell's custom LLM WebSocket "
            "cannot answer"
        )
    runtime: TurnResponder = state.runtime
    return runtime


async def _refuse(websocket: WebSocket, code: int, reason: str) -> None:
    await websocket.accept()
    await websocket.close(code=code, reason=reason)


@router.websocket("/v1/agents/{agent_id}/retell-llm/{token}/{call_id}")
async def retell_llm(websocket: WebSocket, agent_id: str, token: str, call_id: str) -> None:
    state: AppState = websocket.app.state.backline
    agent = await run_in_threadpool(state.agents.get, agent_id)
    try:
        check_call_id(call_id)
    except AppError:
        agent = None
    if agent is None or not llm_token_matches(agent.credentials.get(PLATFORM, []), token):
        # The same answer for an unknown agent and a wrong token; the token is never logged.
        log.warning(
            "refused a Retell LLM socket for agent %s: unknown agent or wrong token", clip(agent_id)
        )
        await _refuse(websocket, POLICY_VIOLATION, "unknown agent or wrong token")
        return
    try:
        responder = _responder(state)
    except ResponderUnavailableError as exc:
        log.error("%s (agent %s call %s)", exc, clip(agent_id), clip(call_id))
        await _refuse(websocket, INTERNAL_ERROR, "agent runtime not configured")
        return

    await websocket.accept()

    async def send(message: dict[str, Any]) -> None:
        await websocket.send_text(json.dumps(message, ensure_ascii=False, separators=(",", ":")))

    async def receive() -> str | bytes | None:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return None
        text = message.get("text")
        return text if text is not None else message.get("bytes") or b""

    seen = 0
    recording: set[asyncio.Future[Any]] = set()

    def on_update(update: TranscriptUpdate) -> None:
        # Retell sends the live transcript over and over: one event per new utterance.
        nonlocal seen
        if len(update.transcript) <= seen:
            return
        seen = len(update.transcript)
        event = Informational(
            call=CallRef(platform=PLATFORM, call_id=call_id),
            platform_type="update_only",
            data={
                "utterances": seen,
                "last_role": update.transcript[-1].role,
                "turntaking": update.turntaking,
            },
        )
        task = asyncio.ensure_future(state.answering.answer(agent, event))
        recording.add(task)
        task.add_done_callback(recording.discard)

    session = RetellLlmSession(
        agent=agent,
        call_id=call_id,
        responder=responder,
        calls=state.retell_calls,
        send=send,
        on_update=on_update,
    )
    code = 1000
    try:
        await session.run(receive)
    except WebSocketDisconnect:
        return
    except CallOpenFailedError as exc:
        log.error("Retell LLM socket of agent %s: %s", clip(agent_id), clip(str(exc)))
        code = INTERNAL_ERROR
    if websocket.client_state == WebSocketState.CONNECTED:
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            await websocket.close(code=code)
