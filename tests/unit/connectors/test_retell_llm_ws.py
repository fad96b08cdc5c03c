"""Retell's custom LLM WebSocket state machine over an in-memory socket, answered by a scripted
agent runtime: config first, the call opened from call_details, streamed answers per
response_id, barge-in, reminders, transcript updates, pings, bad messages and reconnects."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest

from connectors.retell.llm_ws import (
    CONFIG,
    MAX_MESSAGE_CHARS,
    CallOpenFailedError,
    CallState,
    RetellCalls,
    RetellLlmSession,
    TranscriptUpdate,
    ends_call,
    llm_token_matches,
    parse_inbound,
)
from core.agent.llm import ChatMessage
from core.calls.ports import PlatformCredential
from tests.retell_llm_helpers import (
    HELD,
    OPENING,
    TOKEN,
    ScriptedConversation,
    ScriptedResponder,
    agent,
    sequence,
)

SEQ = sequence()
CALL_ID = SEQ["call_details"]["call"]["call_id"]


class Socket:
    """One in-memory socket running a session: ``put`` a message, read ``sent``."""

    def __init__(
        self,
        responder: ScriptedResponder,
        calls: RetellCalls | None = None,
        on_update: Callable[[TranscriptUpdate], None] | None = None,
    ) -> None:
        self.inbox: asyncio.Queue[str | bytes | None] = asyncio.Queue()
        self.sent: list[dict[str, Any]] = []
        self.calls = calls if calls is not None else RetellCalls()

        async def send(message: dict[str, Any]) -> None:
            json.dumps(message)  # what goes out is JSON
            self.sent.append(message)

        self.session = RetellLlmSession(
            agent=agent(),
            call_id=CALL_ID,
            responder=responder,
            calls=self.calls,
            send=send,
            on_update=on_update,
        )
        self.task = asyncio.create_task(self.session.run(self.inbox.get))

    async def put(self, message: dict[str, Any] | str | bytes) -> None:
        await self.inbox.put(message if isinstance(message, str | bytes) else json.dumps(message))
        for _ in range(5):
            await asyncio.sleep(0)

    async def until(self, check: Callable[[list[dict[str, Any]]], bool]) -> None:
        async with asyncio.timeout(2):
            while not check(self.sent):
                await asyncio.sleep(0.001)

    async def close(self) -> None:
        await self.inbox.put(None)
        async with asyncio.timeout(2):
            await self.task


def responses(sent: list[dict[str, Any]], rid: int) -> list[dict[str, Any]]:
    return [m for m in sent if m["response_type"] == "response" and m["response_id"] == rid]


def complete(rid: int) -> Callable[[list[dict[str, Any]]], bool]:
    return lambda sent: any(m["content_complete"] for m in responses(sent, rid))


def spoken(sent: list[dict[str, Any]], rid: int) -> str:
    return "".join(m["content"] for m in responses(sent, rid))


async def opened_socket(responder: ScriptedResponder, calls: RetellCalls | None = None) -> Socket:
    socket = Socket(responder, calls)
    await socket.put(SEQ["call_details"])
    await socket.until(complete(0))
    return socket


async def test_config_goes_first_and_call_details_open_the_call_with_its_opening() -> None:
    responder = ScriptedResponder()
    socket = Socket(responder)
    await socket.until(lambda sent: len(sent) >= 1)
    assert socket.sent[0] == CONFIG == SEQ["expected"]["config"]
    assert responder.opened == []  # nothing is opened before Retell says which call it is
    await socket.put(SEQ["call_details"])
    await socket.until(complete(0))
    [(agent_id, target)] = responder.opened
    assert agent_id == "agent-1"
    assert target.call_id == CALL_ID and target.platform == "retell"
    assert target.caller_number == "+14155550123"
    assert target.call_variables == {"caller_name": "Dana"}
    assert responses(socket.sent, 0) == [
        {
            "response_type": "response",
            "response_id": 0,
            "content": OPENING,
            "content_complete": True,
            "end_call": False,
        }
    ]
    await socket.close()


async def test_without_an_opening_line_the_begin_message_is_empty_so_the_caller_speaks() -> None:
    socket = await opened_socket(ScriptedResponder(opening=None))
    assert [m["content"] for m in responses(socket.sent, 0)] == [""]
    await socket.close()


async def test_response_required_streams_pieces_then_one_complete_with_its_id() -> None:
    responder = ScriptedResponder()
    socket = await opened_socket(responder)
    await socket.put(SEQ["question"])
    await socket.until(complete(3))
    answer = responses(socket.sent, 3)
    assert [m["content_complete"] for m in answer] == [False, False, False, True]
    assert spoken(socket.sent, 3) == SEQ["expected"]["answer"]["content"]
    assert answer[-1] == {**SEQ["expected"]["answer"], "content": ""}
    # The caller's last words are the turn; the transcript before them is the history.
    assert responder.conversations[0].turns == [
        ("Where is my last order?", [ChatMessage.assistant(OPENING)])
    ]
    await socket.close()


async def test_barge_in_cancels_the_older_answer_and_nothing_more_is_sent_for_it() -> None:
    responder = ScriptedResponder()
    socket = await opened_socket(responder)
    await socket.put(SEQ["interrupted"])
    conversation = responder.conversations[0]
    async with asyncio.timeout(2):
        await conversation.held.wait()
    await socket.until(lambda sent: len(responses(sent, 1)) == 1)
    await socket.put(SEQ["barge_in"])
    await socket.until(complete(2))
    await asyncio.sleep(0.05)
    assert responses(socket.sent, 1) == [
        {
            "response_type": "response",
            "response_id": 1,
            "content": "Your account ",
            "content_complete": False,
        }
    ]
    assert conversation.cancelled == [HELD]
    assert spoken(socket.sent, 2) == "No problem. Anything else?"
    first_of_2 = socket.sent.index(responses(socket.sent, 2)[0])
    assert all(m.get("response_id") != 1 for m in socket.sent[first_of_2:])
    # A message for an id older than the current one is stale and answered not at all.
    await socket.put(SEQ["interrupted"])
    await asyncio.sleep(0.05)
    assert len(responses(socket.sent, 1)) == 1 and len(conversation.turns) == 2
    await socket.close()


async def test_reminder_required_is_answered_with_the_whole_transcript_as_history() -> None:
    responder = ScriptedResponder()
    socket = await opened_socket(responder)
    await socket.put(SEQ["reminder"])
    await socket.until(complete(4))
    assert spoken(socket.sent, 4) == "Are you still there?"
    caller_text, history = responder.conversations[0].turns[0]
    assert caller_text is None
    assert [m.role for m in history] == ["assistant", "user", "assistant"]
    assert history[1] == ChatMessage.user("Where is my last order?")
    await socket.close()


async def test_an_answer_that_ends_the_call_says_so_on_its_final_message() -> None:
    socket = await opened_socket(ScriptedResponder())
    await socket.put(
        {
            "interaction_type": "response_required",
            "response_id": 5,
            "transcript": [{"role": "user", "content": "Goodbye"}],
        }
    )
    await socket.until(complete(5))
    final = responses(socket.sent, 5)[-1]
    assert final["content_complete"] is True and final["end_call"] is True
    await socket.close()


async def test_update_only_goes_to_the_callback_and_gets_no_reply() -> None:
    updates: list[TranscriptUpdate] = []
    socket = Socket(ScriptedResponder(), on_update=updates.append)
    await socket.put(SEQ["update_only"])
    await socket.put(SEQ["ping_pong"])
    await socket.until(lambda sent: len(sent) == 2)
    assert [m["response_type"] for m in socket.sent] == ["config", "ping_pong"]
    [update] = updates
    assert update.call_id == CALL_ID and update.turntaking == "user_turn"
    assert [(u.role, u.content) for u in update.transcript] == [
        ("agent", "Hi Dana, how can I help?"),
        ("user", "I"),
    ]
    await socket.close()


async def test_ping_pong_is_echoed_with_retells_timestamp() -> None:
    socket = Socket(ScriptedResponder())
    await socket.put(SEQ["ping_pong"])
    await socket.until(lambda sent: len(sent) == 2)
    assert socket.sent[1] == {"response_type": "ping_pong", "timestamp": 1772471053000}
    await socket.close()


@pytest.mark.parametrize(
    "bad",
    [
        "{not json",
        b"\xff\xfe",
        "[1, 2]",
        '"text"',
        json.dumps({"interaction_type": "agent_interrupt", "response_id": 9}),
        json.dumps({"no": "type"}),
        json.dumps({"interaction_type": "response_required", "transcript": []}),
        json.dumps({"interaction_type": "response_required", "response_id": "7", "transcript": []}),
        json.dumps({"interaction_type": "response_required", "response_id": True}),
        json.dumps({"interaction_type": "response_required", "response_id": 7, "transcript": "x"}),
        json.dumps({"interaction_type": "update_only", "transcript": {"role": "user"}}),
        "[" * 100_000 + "]" * 100_000,
        json.dumps({"interaction_type": "ping_pong", "pad": "x" * MAX_MESSAGE_CHARS}),
    ],
)
async def test_bad_messages_are_skipped_and_the_call_goes_on(bad: str | bytes) -> None:
    responder = ScriptedResponder()
    socket = await opened_socket(responder)
    await socket.put(bad)
    await socket.put(SEQ["question"])
    await socket.until(complete(3))
    assert not socket.task.done()
    assert {m["response_id"] for m in socket.sent if m["response_type"] == "response"} == {0, 3}
    await socket.close()


def test_transcript_entries_are_validated_and_bounded() -> None:
    message = parse_inbound(
        json.dumps(
            {
                "interaction_type": "response_required",
                "response_id": 2,
                "transcript": [
                    {"role": "agent", "content": "Hi"},
                    {"role": "system", "content": "ignored"},
                    {"role": "user"},
                    "not an object",
                    {"role": "user", "content": "x" * 50_000},
                ],
            }
        )
    )
    assert message is not None
    assert [u.role for u in message.transcript] == ["agent", "user"]
    assert len(message.transcript[1].content) == 20_000


async def test_a_reconnect_resumes_the_opened_conversation_without_reopening_it() -> None:
    responder = ScriptedResponder()
    calls = RetellCalls()
    first = await opened_socket(responder, calls)
    await first.put(SEQ["question"])
    await first.until(complete(3))
    await first.close()
    second = await opened_socket(responder, calls)
    assert second.sent[0] == CONFIG
    # Not reopened, and the opening line is not said twice: an empty begin waits for the caller.
    assert len(responder.opened) == 1
    assert responses(second.sent, 0)[0]["content"] == ""
    await second.put(SEQ["reminder"])
    await second.until(complete(4))
    assert len(responder.conversations[0].turns) == 2
    await second.close()


async def test_a_turn_before_call_details_opens_the_call_without_a_caller() -> None:
    responder = ScriptedResponder()
    socket = Socket(responder)
    await socket.put(SEQ["question"])
    await socket.until(complete(3))
    [(_, target)] = responder.opened
    assert target.caller_number is None and target.call_id == CALL_ID
    assert responses(socket.sent, 0) == []  # the caller already spoke: no opening line
    await socket.close()


async def test_a_call_that_cannot_be_opened_ends_the_socket() -> None:
    socket = Socket(ScriptedResponder(fail=True))
    await socket.put(SEQ["call_details"])
    await asyncio.sleep(0.01)
    await socket.put(SEQ["ping_pong"])
    with pytest.raises(CallOpenFailedError):
        async with asyncio.timeout(2):
            await socket.task
    assert responses(socket.sent, 0) == []


async def test_a_disconnect_cancels_the_answer_being_streamed() -> None:
    responder = ScriptedResponder()
    socket = await opened_socket(responder)
    await socket.put(SEQ["interrupted"])
    async with asyncio.timeout(2):
        await responder.conversations[0].held.wait()
    await socket.close()
    assert responder.conversations[0].cancelled == [HELD]


async def test_open_calls_are_bounded_by_age_and_count() -> None:
    now = [0.0]
    calls = RetellCalls(ttl_s=60, max_calls=2, clock=lambda: now[0])

    async def opener() -> CallState:
        return CallState(ScriptedConversation(None), None, 0.0)

    for call_id in ("a", "b", "c"):
        _, created = await calls.open("agent", call_id, opener)
        assert created
    assert len(calls) == 2 and calls.get("agent", "a") is None
    _, created = await calls.open("agent", "c", opener)
    assert not created
    now[0] = 61.0
    assert calls.get("agent", "b") is None and len(calls) == 0


def test_llm_token_is_compared_against_every_stored_token_of_its_kind() -> None:
    creds = agent(tokens=("first-token-123", TOKEN)).credentials["retell"]
    assert llm_token_matches(creds, TOKEN)
    assert llm_token_matches(creds, "first-token-123")
    assert not llm_token_matches(creds, TOKEN + "x")
    assert not llm_token_matches(creds, "")
    # The Retell API key is another credential kind: never a WebSocket token.
    assert not llm_token_matches(creds, "retell-api-key-xyz")
    assert not llm_token_matches([PlatformCredential(kind="llm_token", secret="")], "")
    assert not llm_token_matches([], TOKEN)


def test_a_result_ends_the_call_by_its_flag_or_an_end_call_tool_call() -> None:
    from types import SimpleNamespace

    assert ends_call(SimpleNamespace(end_call=True))
    assert not ends_call(SimpleNamespace(end_call="yes"))
    assert not ends_call(None)
    hang_up = {"id": "c1", "type": "function", "function": {"name": "end_call", "arguments": "{}"}}
    other = {"id": "c2", "type": "function", "function": {"name": "book", "arguments": "{}"}}
    assert ends_call(SimpleNamespace(platform_tool_calls=[other, hang_up]))
    assert not ends_call(SimpleNamespace(platform_tool_calls=[other, "junk"]))


async def test_a_barge_in_while_a_piece_is_being_sent_closes_the_older_stream() -> None:
    """Like the agent runtime, this conversation holds a per-call lock for a whole turn: the
    superseded stream, suspended at a piece, must be closed or the next turn never starts."""
    from tests.retell_llm_helpers import Delta, Result

    class LockingConversation:
        opening = None

        def __init__(self) -> None:
            self.lock = asyncio.Lock()
            self.streams: list[Any] = []  # kept alive: garbage collection closes none of them

        def respond_stream(self, caller_text: str | None, *, history: Any = None) -> Any:
            async def turn() -> Any:
                async with self.lock:
                    yield Delta(f"about {caller_text}")
                    yield Delta("", Result())

            self.streams.append(turn())
            return self.streams[-1]

    class Responder:
        async def open_call(self, agent: Any, target: Any) -> LockingConversation:
            return LockingConversation()

    sent: list[dict[str, Any]] = []
    slow = asyncio.Event()

    async def send(message: dict[str, Any]) -> None:
        if message.get("response_id") == 1:
            await slow.wait()  # the transport stalls on answer 1's first piece
        sent.append(message)

    inbox: asyncio.Queue[str | None] = asyncio.Queue()
    session = RetellLlmSession(
        agent=agent(), call_id=CALL_ID, responder=Responder(), calls=RetellCalls(), send=send
    )
    task = asyncio.create_task(session.run(inbox.get))
    await inbox.put(json.dumps(SEQ["interrupted"]))
    await asyncio.sleep(0.05)
    await inbox.put(json.dumps(SEQ["barge_in"]))
    async with asyncio.timeout(2):
        while not complete(2)(sent):
            await asyncio.sleep(0.001)
    assert spoken(sent, 2) == "about Actually, never mind"
    assert responses(sent, 1) == []
    await inbox.put(None)
    await task
