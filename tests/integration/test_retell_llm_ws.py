"""Retell's custom LLM WebSocket route over real sockets: uvicorn serving the route, the
``websockets`` client playing Retell and replaying tests/fixtures/retell_llm_ws (begin message,
ping, transcript update, a barge-in, the reference question, then a reconnect), and refusals:
a wrong token or unknown agent closes 1008, a process without an agent runtime 1011."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest
import pytest_asyncio
import uvicorn
import websockets
from fastapi import FastAPI
from websockets.asyncio.client import ClientConnection

from api.routes import retell_llm
from connectors.retell.llm_ws import RetellCalls
from core.settings import Settings
from core.tenancy.agent_info import AgentInfo
from tests.retell_llm_helpers import OPENING, TOKEN, ScriptedResponder, agent, sequence

SEQ = sequence()
CALL_ID = SEQ["call_details"]["call"]["call_id"]


class Agents:
    def __init__(self, *agents: AgentInfo) -> None:
        self._agents = {a.id: a for a in agents}

    def get(self, agent_id: str) -> AgentInfo | None:
        return self._agents.get(agent_id)


@dataclass
class Server:
    base: str
    responder: ScriptedResponder
    state: Any

    def url(self, token: str = TOKEN, agent_id: str = "agent-1", call_id: str = CALL_ID) -> str:
        # What Retell dials: the configured URL, then /{call_id}.
        return f"{self.base}/v1/agents/{agent_id}/retell-llm/{token}/{call_id}"


@pytest_asyncio.fixture
async def server(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Server]:
    responder = ScriptedResponder()
    # No LLM configured on the state: the route answers with the scripted one.
    state = SimpleNamespace(
        agents=Agents(agent()),
        retell_calls=RetellCalls(),
        settings=Settings(secret_key="s" * 32, admin_token="a" * 32),
    )
    monkeypatch.setattr(retell_llm, "_responder", lambda _state: responder)
    app = FastAPI()
    app.include_router(retell_llm.router)
    app.state.backline = state
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    uv = uvicorn.Server(config)
    task = asyncio.create_task(uv.serve())
    async with asyncio.timeout(10):
        while not uv.started:
            await asyncio.sleep(0.01)
    port = uv.servers[0].sockets[0].getsockname()[1]
    try:
        yield Server(f"ws://127.0.0.1:{port}", responder, state)
    finally:
        uv.should_exit = True
        await task


async def recv(ws: ClientConnection) -> dict[str, Any]:
    async with asyncio.timeout(5):
        message: dict[str, Any] = json.loads(await ws.recv())
    return message


async def answer(ws: ClientConnection, rid: int) -> tuple[str, list[dict[str, Any]]]:
    """Everything received until answer ``rid`` completes, and its spoken text."""
    seen: list[dict[str, Any]] = []
    while True:
        message = await recv(ws)
        seen.append(message)
        if message.get("response_id") == rid and message.get("content_complete"):
            break
    text = "".join(m["content"] for m in seen if m.get("response_id") == rid)
    return text, seen


async def test_a_call_replayed_over_a_real_socket_with_a_barge_in_and_a_reconnect(
    server: Server,
) -> None:
    async with websockets.connect(server.url()) as ws:
        assert await recv(ws) == SEQ["expected"]["config"]
        await ws.send(json.dumps(SEQ["call_details"]))
        begin = await recv(ws)
        assert begin == {
            "response_type": "response",
            "response_id": 0,
            "content": OPENING,
            "content_complete": True,
            "end_call": False,
        }
        await ws.send(json.dumps(SEQ["ping_pong"]))
        await ws.send(json.dumps(SEQ["update_only"]))  # answered by nothing
        assert await recv(ws) == {"response_type": "ping_pong", "timestamp": 1772471053000}
        await ws.send("{not json")  # skipped; the call goes on

        # Barge-in: the caller cuts answer 1 off after its first piece.
        await ws.send(json.dumps(SEQ["interrupted"]))
        first = await recv(ws)
        assert first["response_id"] == 1 and first["content_complete"] is False
        await ws.send(json.dumps(SEQ["barge_in"]))
        text, seen = await answer(ws, 2)
        assert text == "No problem. Anything else?"
        assert all(m["response_id"] == 2 for m in seen)

        await ws.send(json.dumps(SEQ["question"]))
        text, seen = await answer(ws, 3)
        assert all(m["response_id"] == 3 for m in seen)
        assert text == SEQ["expected"]["answer"]["content"]
        assert seen[-1]["end_call"] is False
        assert [m["content_complete"] for m in seen].count(True) == 1

    conversation = server.responder.conversations[0]
    assert conversation.cancelled == ["Tell me about my account"]
    [(agent_id, target)] = server.responder.opened
    assert (agent_id, target.call_id, target.caller_number) == ("agent-1", CALL_ID, "+14155550123")

    # Retell reconnects to the same URL: the call resumes, nothing is reopened or repeated.
    async with websockets.connect(server.url()) as ws:
        assert await recv(ws) == SEQ["expected"]["config"]
        await ws.send(json.dumps(SEQ["call_details"]))
        assert (await recv(ws))["content"] == ""
        await ws.send(json.dumps(SEQ["reminder"]))
        text, _ = await answer(ws, 4)
        assert text == "Are you still there?"
    assert len(server.responder.opened) == 1
    assert len(conversation.turns) == 4


@pytest.mark.parametrize(
    ("token", "agent_id"),
    [("wrong-token-0123456789", "agent-1"), (TOKEN + "0", "agent-1"), (TOKEN, "agent-2")],
)
async def test_a_wrong_token_or_unknown_agent_is_closed_1008_with_nothing_sent(
    server: Server, token: str, agent_id: str
) -> None:
    async with websockets.connect(server.url(token, agent_id)) as ws:
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await recv(ws)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
    assert server.responder.opened == []


async def test_without_an_llm_the_socket_closes_1011(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.undo()  # the route's own _responder: this deployment has no LLM configured
    async with websockets.connect(server.url()) as ws:
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await recv(ws)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1011


def test_the_app_serves_the_route_through_its_middleware(monkeypatch: pytest.MonkeyPatch) -> None:
    from starlette.testclient import TestClient

    from api.main import create_app
    from core.settings import Settings

    app = create_app(Settings(secret_key="s" * 32, admin_token="a" * 32))
    assert app.url_path_for("retell_llm", agent_id="a", token="t", call_id="c") == (
        "/v1/agents/a/retell-llm/t/c"
    )
    responder = ScriptedResponder()
    app.state.backline = SimpleNamespace(agents=Agents(agent()), retell_calls=RetellCalls())
    monkeypatch.setattr(retell_llm, "_responder", lambda _state: responder)
    client = TestClient(app)  # no lifespan: the state above stands in for it
    with client.websocket_connect(f"/v1/agents/agent-1/retell-llm/{TOKEN}/{CALL_ID}") as ws:
        assert ws.receive_json() == SEQ["expected"]["config"]
        ws.send_text(json.dumps(SEQ["call_details"]))
        assert ws.receive_json()["content"] == OPENING


def test_refused_tokens_count_as_failed_authentications(monkeypatch: pytest.MonkeyPatch) -> None:
    from starlette.testclient import TestClient
    from starlette.websockets import WebSocketDisconnect

    from api.main import create_app
    from core.settings import Settings

    app = create_app(
        Settings(secret_key="s" * 32, admin_token="a" * 32, auth_failures_per_minute=2)
    )
    app.state.backline = SimpleNamespace(agents=Agents(agent()), retell_calls=RetellCalls())
    monkeypatch.setattr(retell_llm, "_responder", lambda _state: ScriptedResponder())
    client = TestClient(app)
    for token in ("guess-one-0123", "guess-two-0123", TOKEN):
        with (
            pytest.raises(WebSocketDisconnect) as closed,
            client.websocket_connect(f"/v1/agents/agent-1/retell-llm/{token}/{CALL_ID}") as ws,
        ):
            ws.receive_json()
        # Two wrong tokens, then past the limit even the right one is refused before the route.
        assert closed.value.code == 1008
    # HTTP requests from that address are over the same limit.
    assert client.get("/v1/agents/agent-1/calls").status_code == 429
