"""Retell's custom LLM WebSocket: Backline in the place of Retell's LLM, one socket per call.

Retell opens ``{configured url}/{call_id}`` and exchanges JSON text messages. This module is the
protocol state machine over any ``send(message)`` / ``receive()`` pair; it knows no web
framework (``api/routes/retell_llm.py`` adapts a FastAPI WebSocket to it).

Inbound (``interaction_type``): ``call_details`` (sent because our config asks for it),
``ping_pong``, ``update_only`` (live transcript, no reply), ``response_required`` and
``reminder_required`` (``response_id`` plus the ``transcript``). Anything else, malformed JSON,
a message over ``MAX_MESSAGE_CHARS`` or a field of the wrong type is logged and skipped: a bad
message never ends the call.

Outbound: ``config`` first, on connect; then, once the call is open, the begin message
(``response_id`` 0: the agent's opening line, or empty content to wait for the caller); then
``response`` messages streamed per ``response_id`` (pieces with ``content_complete: false``, one
final ``content_complete: true``); ``ping_pong`` echoes Retell's timestamp.

Barge-in: a newer ``response_id`` supersedes the answer being streamed. Its task is cancelled and
nothing more is sent for the older id (every send checks the id is still the current one).

Reconnects: with ``auto_reconnect`` Retell reconnects to the same URL (same ``call_id``) when
the socket drops. The opened conversation is kept in ``RetellCalls`` per (agent, call id), so a
reconnect resumes it instead of opening the call again, and the opening line is not repeated.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from connectors.platform import secrets
from core.agent.llm import ChatMessage
from core.agent.runtime import CallTarget
from core.calls.answering import clip
from core.calls.ports import PlatformCredential
from core.tenancy.agent_info import AgentInfo

log = logging.getLogger("backline.retell.llm_ws")

PLATFORM = "retell"
TOKEN_KIND = "llm_token"
CONFIG: dict[str, Any] = {
    "response_type": "config",
    "config": {"auto_reconnect": True, "call_details": True},
}
BEGIN_RESPONSE_ID = 0
MAX_MESSAGE_CHARS = 512 * 1024  # one inbound message; Retell's transcripts are far smaller
MAX_TRANSCRIPT_ENTRIES = 400  # older entries are dropped, the latest ones kept
MAX_CONTENT_CHARS = 20_000  # one utterance
RESPONSE_KINDS = frozenset({"response_required", "reminder_required"})
KNOWN_KINDS = frozenset({"call_details", "ping_pong", "update_only", *RESPONSE_KINDS})


# -- the agent runtime, as this socket needs it -------------------------------------------------


class TurnDelta(Protocol):
    """One piece of a streamed answer: text to speak, and on the last piece the turn's result."""

    @property
    def text(self) -> str: ...

    @property
    def result(self) -> object | None: ...


class Conversation(Protocol):
    """An opened call: its opening line and the streamed answer to each caller turn."""

    @property
    def opening(self) -> str | None: ...

    def respond_stream(
        self, caller_text: str | None, *, history: Sequence[ChatMessage] | None = None
    ) -> AsyncIterator[TurnDelta]: ...


class TurnResponder(Protocol):
    """The port this socket answers through (the agent runtime)."""

    async def open_call(self, agent: AgentInfo, target: CallTarget) -> Conversation: ...


END_CALL_TOOL = "end_call"


def ends_call(result: object | None) -> bool:
    """Whether a turn's result asks to hang up: an ``end_call`` attribute that is ``True``, or a
    call of the platform tool ``end_call`` among its ``platform_tool_calls`` (wire shape
    ``{"function": {"name": ...}}``)."""
    if getattr(result, "end_call", False) is True:
        return True
    calls = getattr(result, "platform_tool_calls", None)
    if not isinstance(calls, list):
        return False
    return any(
        isinstance(c, dict)
        and isinstance(c.get("function"), dict)
        and c["function"].get("name") == END_CALL_TOOL
        for c in calls
    )


# -- authentication -------------------------------------------------------------------------------


def llm_token_matches(credentials: Sequence[PlatformCredential], token: str) -> bool:
    """Whether ``token`` equals one of the agent's Retell ``llm_token`` credentials.

    Every stored token is compared, each in constant time, so timing tells neither which one
    nor how much of one matched. No stored token (or an empty one) never matches.
    """
    given = token.encode()
    matched = False
    for secret in secrets(credentials, TOKEN_KIND):
        if secret and hmac.compare_digest(given, secret.encode()):
            matched = True
    return matched and bool(token)


# -- inbound messages -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Utterance:
    role: Literal["agent", "user"]
    content: str


@dataclass(frozen=True)
class Inbound:
    """One validated message from Retell."""

    kind: str  # its interaction_type
    response_id: int | None = None
    transcript: tuple[Utterance, ...] = ()
    timestamp: int | float | None = None
    call: Mapping[str, Any] = field(default_factory=dict)
    turntaking: str | None = None


@dataclass(frozen=True)
class TranscriptUpdate:
    """An ``update_only`` message: the live transcript so far (no reply expected)."""

    call_id: str
    transcript: tuple[Utterance, ...]
    turntaking: str | None = None


def _transcript(value: object) -> tuple[Utterance, ...] | None:
    if value is None:
        return ()
    if not isinstance(value, list):
        return None
    kept: list[Utterance] = []
    for entry in value[-MAX_TRANSCRIPT_ENTRIES:]:
        if not isinstance(entry, dict):
            continue
        role, content = entry.get("role"), entry.get("content")
        if role in ("agent", "user") and isinstance(content, str):
            kept.append(Utterance(role, content[:MAX_CONTENT_CHARS]))
    return tuple(kept)


def parse_inbound(raw: str | bytes) -> Inbound | None:
    """The message, or None (logged) when it is oversized, not JSON, unknown or malformed."""
    if len(raw) > MAX_MESSAGE_CHARS:
        log.warning(
            "skipped a Retell LLM message of %s characters (limit %s)", len(raw), MAX_MESSAGE_CHARS
        )
        return None
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError):
        # Never its text: a transcript is the caller's words.
        log.warning("skipped a Retell LLM message that is not JSON (%s characters)", len(raw))
        return None
    if not isinstance(doc, dict):
        log.warning("skipped a Retell LLM message that is not a JSON object")
        return None
    kind = doc.get("interaction_type")
    if not isinstance(kind, str) or kind not in KNOWN_KINDS:
        log.info("ignored a Retell LLM message with interaction_type %r", clip(str(kind)))
        return None
    if kind == "ping_pong":
        ts = doc.get("timestamp")
        if isinstance(ts, bool) or not isinstance(ts, int | float | None):
            ts = None
        return Inbound(kind, timestamp=ts)
    if kind == "call_details":
        call = doc.get("call")
        return Inbound(kind, call=call if isinstance(call, dict) else {})
    transcript = _transcript(doc.get("transcript"))
    if transcript is None:
        log.warning("skipped a Retell %s message whose transcript is not a list", kind)
        return None
    if kind == "update_only":
        turn = doc.get("turntaking")
        return Inbound(
            kind, transcript=transcript, turntaking=turn if isinstance(turn, str) else None
        )
    rid = doc.get("response_id")
    if isinstance(rid, bool) or not isinstance(rid, int) or rid < 0:
        log.warning("skipped a Retell %s message without a valid response_id", kind)
        return None
    return Inbound(kind, response_id=rid, transcript=transcript)


def turn_input(kind: str, transcript: Sequence[Utterance]) -> tuple[str | None, list[ChatMessage]]:
    """What to answer and the history before it: for ``response_required`` the caller's last
    utterance (when the transcript ends with one) and everything before it; for a reminder
    (the caller has been silent) no caller text and the whole transcript."""
    entries = list(transcript)
    caller_text: str | None = None
    if kind == "response_required" and entries and entries[-1].role == "user":
        caller_text = entries.pop().content
    history = [
        ChatMessage.user(u.content) if u.role == "user" else ChatMessage.assistant(u.content)
        for u in entries
    ]
    return caller_text, history


def response(
    response_id: int, content: str, *, complete: bool, end_call: bool = False
) -> dict[str, Any]:
    message: dict[str, Any] = {
        "response_type": "response",
        "response_id": response_id,
        "content": content,
        "content_complete": complete,
    }
    if complete:
        message["end_call"] = end_call
    return message


# -- per-call state that outlives one socket ------------------------------------------------------


@dataclass
class CallState:
    conversation: Conversation
    caller_number: str | None
    touched: float


class RetellCalls:
    """Opened conversations by (agent id, call id), kept for reconnects.

    Bounded: an entry unused for ``ttl_s`` is dropped, and past ``max_calls`` the least
    recently used goes. Opening is serialized per call, so two sockets of one call (a reconnect
    racing the old socket's close) share one conversation.
    """

    def __init__(
        self,
        *,
        ttl_s: float = 2 * 3600.0,
        max_calls: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl_s = ttl_s
        self._max = max_calls
        self._clock = clock
        self._calls: OrderedDict[tuple[str, str], CallState] = OrderedDict()
        self._locks: dict[tuple[str, str], tuple[asyncio.Lock, int]] = {}  # lock, its users

    def __len__(self) -> int:
        return len(self._calls)

    def get(self, agent_id: str, call_id: str) -> CallState | None:
        self._expire()
        key = (agent_id, call_id)
        state = self._calls.get(key)
        if state is not None:
            state.touched = self._clock()
            self._calls.move_to_end(key)
        return state

    async def open(
        self, agent_id: str, call_id: str, opener: Callable[[], Awaitable[CallState]]
    ) -> tuple[CallState, bool]:
        """The call's state and whether it was opened now (False: resumed)."""
        key = (agent_id, call_id)
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                state = self.get(agent_id, call_id)
                if state is not None:
                    return state, False
                state = await opener()
                state.touched = self._clock()
                self._calls[key] = state
                while len(self._calls) > self._max:
                    self._calls.popitem(last=False)
                return state, True
        finally:
            lock, users = self._locks[key]
            if users > 1:
                self._locks[key] = (lock, users - 1)
            else:
                del self._locks[key]

    def _expire(self) -> None:
        cutoff = self._clock() - self._ttl_s
        while self._calls:
            key, oldest = next(iter(self._calls.items()))
            if oldest.touched >= cutoff:
                break
            del self._calls[key]


# -- one socket -----------------------------------------------------------------------------------

Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[str | bytes | None]]  # None: the socket closed


class CallOpenFailedError(Exception):
    """The responder could not open the call; the socket should close (1011)."""


class RetellLlmSession:
    """One Retell LLM socket of one call: ``run(receive)`` until the socket closes."""

    def __init__(
        self,
        *,
        agent: AgentInfo,
        call_id: str,
        responder: TurnResponder,
        calls: RetellCalls,
        send: Send,
        on_update: Callable[[TranscriptUpdate], None] | None = None,
    ) -> None:
        self.agent = agent
        self.call_id = call_id
        self._responder = responder
        self._calls = calls
        self._send_raw = send
        self._on_update = on_update
        self._send_lock = asyncio.Lock()
        self._open_task: asyncio.Task[tuple[CallState, bool]] | None = None
        self._current: int | None = None  # the response id allowed to speak
        self._answer: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    async def run(self, receive: Receive) -> None:
        """Send the config, then handle messages until ``receive`` returns None.

        Raises ``CallOpenFailedError`` when the call could not be opened. Running answers are
        cancelled on the way out; the opened conversation stays in ``RetellCalls``.
        """
        try:
            await self._send(CONFIG)
            while True:
                raw = await receive()
                if raw is None:
                    return
                self._check_open()
                message = parse_inbound(raw)
                if message is not None:
                    await self.handle(message)
        finally:
            for task in list(self._tasks):
                task.cancel()
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)

    async def handle(self, message: Inbound) -> None:
        if message.kind == "ping_pong":
            await self._send({"response_type": "ping_pong", "timestamp": message.timestamp})
        elif message.kind == "call_details":
            self._start_open(message.call)
            if self._current is None:
                self._current = BEGIN_RESPONSE_ID
                self._spawn(self._begin())
        elif message.kind == "update_only":
            if self._on_update is not None:
                try:
                    self._on_update(
                        TranscriptUpdate(self.call_id, message.transcript, message.turntaking)
                    )
                except Exception:
                    log.exception("the update_only callback failed for call %s", clip(self.call_id))
        elif message.kind in RESPONSE_KINDS and message.response_id is not None:
            self._supersede(message)

    # -- opening the call and the begin message ---------------------------------------------

    def _start_open(self, call: Mapping[str, Any] | None) -> asyncio.Task[tuple[CallState, bool]]:
        if self._open_task is None:
            self._open_task = asyncio.create_task(self._open(call or {}))
        return self._open_task

    async def _open(self, call: Mapping[str, Any]) -> tuple[CallState, bool]:
        caller = _caller_number(call)
        variables = call.get("retell_llm_dynamic_variables")
        target = CallTarget(
            call_id=self.call_id,
            platform=PLATFORM,
            caller_number=caller,
            call_variables={
                str(k): v
                for k, v in (variables.items() if isinstance(variables, dict) else ())
                if isinstance(v, str)
            },
        )

        async def opener() -> CallState:
            conversation = await self._responder.open_call(self.agent, target)
            return CallState(conversation, caller, 0.0)

        return await self._calls.open(self.agent.id, self.call_id, opener)

    def _check_open(self) -> None:
        task = self._open_task
        if task is None or not task.done() or task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            raise CallOpenFailedError(f"could not open call {self.call_id}: {exc}") from exc

    async def _opened(self) -> CallState | None:
        try:
            # shield: a cancelled answer must not cancel the opening other answers wait for.
            state, _ = await asyncio.shield(self._start_open(None))
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("could not open Retell call %s", clip(self.call_id))
            return None
        return state

    async def _begin(self) -> None:
        """Response 0: the opening line on a new call, nothing (wait for the caller) on a
        resumed one or when the agent has no opening line."""
        try:
            state, created = await asyncio.shield(self._start_open(None))
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("could not open Retell call %s", clip(self.call_id))
            return
        opening = (state.conversation.opening or "") if created else ""
        await self._respond(BEGIN_RESPONSE_ID, opening, complete=True)

    # -- answers ------------------------------------------------------------------------------

    def _supersede(self, message: Inbound) -> None:
        rid = message.response_id
        assert rid is not None
        if self._current is not None and rid < self._current:
            log.info(
                "ignored stale Retell response_id %s (current %s) on call %s",
                rid,
                self._current,
                clip(self.call_id),
            )
            return
        self._current = rid  # from here on the older answer can send nothing
        if self._answer is not None:
            self._answer.cancel()
        self._answer = self._spawn(self._stream(rid, message))

    async def _stream(self, rid: int, message: Inbound) -> None:
        state = await self._opened()
        if state is None:
            await self._respond(rid, "", complete=True)
            return
        caller_text, history = turn_input(message.kind, message.transcript)
        hang_up = False
        stream = state.conversation.respond_stream(caller_text, history=history)
        try:
            async for delta in stream:
                if delta.text and not await self._respond(rid, delta.text, complete=False):
                    return
                hang_up = hang_up or ends_call(delta.result)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("answer %s of Retell call %s failed", rid, clip(self.call_id))
        finally:
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                await aclose()
        await self._respond(rid, "", complete=True, end_call=hang_up)

    async def _respond(
        self, rid: int, content: str, *, complete: bool, end_call: bool = False
    ) -> bool:
        """Send one piece of answer ``rid``, unless a newer id superseded it (then False)."""
        async with self._send_lock:
            if rid != self._current:
                return False
            await self._send_raw(response(rid, content, complete=complete, end_call=end_call))
            return True

    async def _send(self, message: dict[str, Any]) -> None:
        async with self._send_lock:
            await self._send_raw(message)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error(
                "a task of Retell call %s failed",
                clip(self.call_id),
                exc_info=task.exception(),
            )


def _caller_number(call: Mapping[str, Any]) -> str | None:
    """The caller: ``from_number`` on an inbound (or unspecified) call, ``to_number`` outbound."""
    key = "to_number" if call.get("direction") == "outbound" else "from_number"
    number = call.get(key)
    return number if isinstance(number, str) and number else None
