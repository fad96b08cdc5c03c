"""The MCP client pool: one long-lived client session per server per process, over stdio or
streamable HTTP, kept warm and reconnected on failure (implements ``core.tools.ports.McpClient``).

Each session is owned by one task, which enters the SDK's ``Client`` and holds it open until the
session is closed: anyio scopes must be entered and left by the same task, while calls from any
task share the session concurrently. A broken session is dropped and the next call reconnects;
after a failed connect, new attempts wait a short, doubling backoff (at most
``MAX_RECONNECT_BACKOFF_S``) so a dead server is not respawned on every call.

Errors are translated into the port's error types with messages that never include header
values, tokens or environment secrets.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from contextlib import AsyncExitStack
from typing import Any, TextIO

import httpx2
import mcp_types
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from pydantic import ValidationError

from connectors.egress import mcp_http_client
from core.egress import EgressPolicy
from core.tools.ports import (
    DiscoveredTool,
    McpCallTimeoutError,
    McpConnectionLostError,
    McpMalformedResultError,
    McpRejectedError,
    McpUnavailableError,
    RawToolResult,
    ServerSpec,
)

log = logging.getLogger("backline.mcp")

CONNECT_TIMEOUT_S = 10.0
FIRST_RECONNECT_BACKOFF_S = 0.25
MAX_RECONNECT_BACKOFF_S = 2.0
CLOSE_TIMEOUT_S = 5.0
MAX_LIST_PAGES = 50
CLIENT_INFO = mcp_types.Implementation(name="backline-gateway", version="0.1.0")


def _describe(exc: BaseException) -> str:
    """A short, secret-free description (the innermost cause of an exception group)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}"[:300]


def _to_discovered(tool: mcp_types.Tool) -> DiscoveredTool:
    hints = tool.annotations
    return DiscoveredTool(
        name=tool.name,
        title=tool.title or (hints.title if hints is not None else None),
        description=tool.description or "",
        input_schema=dict(tool.input_schema),
        read_only=hints.read_only_hint if hints is not None else None,
        idempotent=hints.idempotent_hint if hints is not None else None,
        destructive=hints.destructive_hint if hints is not None else None,
    )


def _to_raw(result: mcp_types.CallToolResult) -> RawToolResult:
    texts: list[str] = []
    other: list[str] = []
    for block in result.content:
        if isinstance(block, mcp_types.TextContent):
            texts.append(block.text)
        elif isinstance(block, mcp_types.EmbeddedResource) and isinstance(
            block.resource, mcp_types.TextResourceContents
        ):
            texts.append(block.resource.text)
        else:
            other.append(str(getattr(block, "type", "unknown")))
    return RawToolResult(
        texts=tuple(texts),
        structured=result.structured_content,
        is_error=bool(result.is_error),
        other_content=tuple(other),
    )


class _Session:
    """One server's pooled session and the task that owns it.

    A connect attempt is shared by every caller that needs the session, and is never tied to
    one caller's deadline: a caller whose deadline passes stops waiting (nothing was sent), the
    attempt goes on for the next caller.
    """

    def __init__(
        self,
        spec: ServerSpec,
        errlog: TextIO,
        connect_timeout_s: float,
        max_backoff_s: float,
        policy: EgressPolicy,
    ) -> None:
        self.spec = spec
        self._policy = policy
        self.fingerprint = spec.fingerprint()
        self._errlog = errlog
        self._connect_timeout_s = connect_timeout_s
        self._max_backoff_s = max_backoff_s
        self._client: Client | None = None
        self._owner: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._connecting: asyncio.Future[Client] | None = None
        self._backoff = 0.0
        self._retry_at = 0.0
        self._retired: set[asyncio.Task[None]] = set()
        self.last_error: str | None = None

    @property
    def alive(self) -> bool:
        return self._client is not None and self._owner is not None and not self._owner.done()

    def _open_client(self, stack: AsyncExitStack) -> Client:
        spec = self.spec
        if spec.transport == "stdio":
            if not spec.command:
                raise McpUnavailableError(f"server '{spec.name}' has no command")
            params = StdioServerParameters(
                command=spec.command[0], args=list(spec.command[1:]), env=dict(spec.env) or None
            )
            transport: Any = stdio_client(params, errlog=self._errlog)
        else:
            if not spec.url:
                raise McpUnavailableError(f"server '{spec.name}' has no url")
            # Short connect timeout: a dead host must fail inside a tool's deadline. The read
            # timeout stays long because every call carries its own deadline.
            # Through the egress guard: every connection's resolved address is checked, so a
            # server URL cannot reach loopback, the intranet or Backline's own services.
            http = mcp_http_client(
                self._policy,
                headers=dict(spec.headers),
                timeout=httpx2.Timeout(30.0, connect=self._connect_timeout_s, read=300.0),
            )
            stack.push_async_callback(http.aclose)
            transport = streamable_http_client(spec.url, http_client=http)
        # Backline keeps its own tool cache (refreshed on demand and on a schedule).
        return Client(transport, client_info=CLIENT_INFO, cache=None)

    async def _own(self, ready: asyncio.Future[Client], stop: asyncio.Event) -> None:
        client: Client | None = None
        try:
            async with AsyncExitStack() as stack:
                client = await stack.enter_async_context(self._open_client(stack))
                self._client = client
                if not ready.done():
                    ready.set_result(client)
                await stop.wait()
        except asyncio.CancelledError:
            if not ready.done():
                ready.set_exception(McpUnavailableError("connection attempt was cancelled"))
            raise
        except BaseException as exc:
            self.last_error = _describe(exc)
            if not ready.done():
                ready.set_exception(McpUnavailableError(self.last_error))
            else:
                log.warning("MCP session to %s ended: %s", self.spec.name, self.last_error)
        finally:
            # A newer session may already be in place; only clear our own.
            if client is not None and self._client is client:
                self._client = None

    async def client(self, timeout_s: float) -> Client:
        if self.alive:
            assert self._client is not None
            return self._client
        attempt = self._connecting
        if attempt is None or attempt.done():
            now = time.monotonic()
            if now < self._retry_at:
                raise McpUnavailableError(
                    f"server '{self.spec.name}' is unreachable ({self.last_error}); "
                    f"reconnecting in {self._retry_at - now:.2f}s"
                )
            attempt = self._connecting = asyncio.ensure_future(self._connect())
            # Retrieved here so an attempt every caller gave up on never warns.
            attempt.add_done_callback(lambda f: None if f.cancelled() else f.exception())
        try:
            return await asyncio.wait_for(asyncio.shield(attempt), max(0.01, timeout_s))
        except TimeoutError:
            raise McpUnavailableError(
                f"still connecting to server '{self.spec.name}'; the request was not sent"
            ) from None

    async def _connect(self) -> Client:
        self._retire_owner(cancel=False)
        stop = self._stop = asyncio.Event()
        ready: asyncio.Future[Client] = asyncio.get_running_loop().create_future()
        self._owner = asyncio.create_task(self._own(ready, stop), name=f"mcp:{self.spec.name}")
        try:
            async with asyncio.timeout(self._connect_timeout_s):
                client = await asyncio.shield(ready)
        except BaseException as exc:
            if isinstance(exc, TimeoutError):
                self.last_error = "timed out connecting"
            elif isinstance(exc, McpUnavailableError):
                self.last_error = str(exc)
            self._backoff = min(
                self._max_backoff_s,
                max(min(FIRST_RECONNECT_BACKOFF_S, self._max_backoff_s), self._backoff * 2),
            )
            self._retry_at = time.monotonic() + self._backoff
            # A hung connect is cancelled in the background (awaited when the pool closes).
            self._retire_owner(cancel=True)
            if isinstance(exc, asyncio.CancelledError):
                raise
            raise McpUnavailableError(
                f"cannot connect to server '{self.spec.name}': {self.last_error}"
            ) from None
        self._backoff = 0.0
        self._retry_at = 0.0
        self.last_error = None
        return client

    def mark_broken(self, client: Client, reason: str) -> None:
        """The session failed under a call: drop it now, so the next call reconnects (unless
        another call already replaced it)."""
        if self._client is not client:
            return
        self.last_error = reason
        self._client = None
        self._stop.set()

    def _retire_owner(self, *, cancel: bool) -> None:
        owner, self._owner = self._owner, None
        self._client = None
        self._stop.set()
        if owner is None or owner.done():
            return
        if cancel:
            owner.cancel()
        self._retired.add(owner)
        owner.add_done_callback(self._retired.discard)

    async def close(self) -> None:
        if self._connecting is not None and not self._connecting.done():
            self._connecting.cancel()
        self._retire_owner(cancel=False)
        pending = list(self._retired)
        if not pending:
            return
        _, late = await asyncio.wait(pending, timeout=CLOSE_TIMEOUT_S)
        for task in late:
            task.cancel()
        if late:
            await asyncio.wait(late, timeout=CLOSE_TIMEOUT_S)


class McpClientPool:
    """Pooled MCP sessions keyed by server id (a changed server config replaces its session).
    HTTP servers are reached through the egress guard with ``policy``."""

    def __init__(
        self,
        policy: EgressPolicy,
        *,
        errlog: TextIO | None = None,
        connect_timeout_s: float = CONNECT_TIMEOUT_S,
        max_reconnect_backoff_s: float = MAX_RECONNECT_BACKOFF_S,
    ) -> None:
        self._policy = policy
        self._errlog = errlog or sys.stderr
        self._connect_timeout_s = connect_timeout_s
        self._max_backoff_s = max_reconnect_backoff_s
        self._sessions: dict[int, _Session] = {}
        self._retired: set[asyncio.Task[None]] = set()

    def _session(self, spec: ServerSpec) -> _Session:
        session = self._sessions.get(spec.server_id)
        if session is not None and session.fingerprint != spec.fingerprint():
            # The server was re-pointed or its secrets changed: close the old session.
            task = asyncio.ensure_future(session.close())
            self._retired.add(task)
            task.add_done_callback(self._retired.discard)
            session = None
        if session is None:
            session = _Session(
                spec, self._errlog, self._connect_timeout_s, self._max_backoff_s, self._policy
            )
            self._sessions[spec.server_id] = session
        return session

    def is_connected(self, server_id: int) -> bool:
        session = self._sessions.get(server_id)
        return session is not None and session.alive

    async def list_tools(self, server: ServerSpec, timeout_s: float) -> list[DiscoveredTool]:
        session = self._session(server)
        deadline = time.monotonic() + timeout_s
        client = await session.client(timeout_s)
        tools: list[DiscoveredTool] = []
        cursor: str | None = None
        try:
            async with asyncio.timeout(max(0.01, deadline - time.monotonic())):
                for _ in range(MAX_LIST_PAGES):
                    page = await client.list_tools(cursor=cursor)
                    tools.extend(_to_discovered(t) for t in page.tools)
                    cursor = page.next_cursor
                    if cursor is None:
                        break
        except TimeoutError:
            raise McpCallTimeoutError(f"server '{server.name}' did not list its tools") from None
        except MCPError as exc:
            self._raise_for(session, client, exc)
        except ValidationError as exc:
            raise McpMalformedResultError(
                f"server '{server.name}' sent an invalid tool list ({exc.error_count()} errors)"
            ) from None
        except Exception as exc:
            session.mark_broken(client, _describe(exc))
            raise McpConnectionLostError(
                f"connection to '{server.name}' broke: {_describe(exc)}"
            ) from None
        return tools

    async def call_tool(
        self, server: ServerSpec, tool: str, arguments: dict[str, Any], timeout_s: float
    ) -> RawToolResult:
        session = self._session(server)
        deadline = time.monotonic() + timeout_s
        client = await session.client(timeout_s)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise McpCallTimeoutError(f"no time left to call '{tool}' on '{server.name}'")
        try:
            async with asyncio.timeout(remaining):
                result = await client.call_tool(tool, arguments)
        except TimeoutError:
            raise McpCallTimeoutError(
                f"'{tool}' on '{server.name}' did not answer within {timeout_s:.1f}s"
            ) from None
        except MCPError as exc:
            self._raise_for(session, client, exc)
        except ValidationError as exc:
            raise McpMalformedResultError(
                f"'{tool}' on '{server.name}' returned an invalid result "
                f"({exc.error_count()} validation errors)"
            ) from None
        except Exception as exc:
            session.mark_broken(client, _describe(exc))
            raise McpConnectionLostError(
                f"connection to '{server.name}' broke during '{tool}': {_describe(exc)}"
            ) from None
        return _to_raw(result)

    @staticmethod
    def _raise_for(session: _Session, client: Client, exc: MCPError) -> None:
        name = session.spec.name
        if exc.code == mcp_types.CONNECTION_CLOSED:
            session.mark_broken(client, exc.message)
            raise McpConnectionLostError(f"connection to '{name}' closed") from None
        if exc.code == mcp_types.INTERNAL_ERROR:
            # The server failed to produce a valid answer (the SDK reports an invalid handler
            # result as an internal error): a fault of the server, not of the request.
            raise McpMalformedResultError(f"'{name}' failed: {exc.message}"[:300]) from None
        raise McpRejectedError(exc.message[:300]) from None

    async def disconnect(self, server_id: int) -> None:
        session = self._sessions.pop(server_id, None)
        if session is not None:
            await session.close()

    async def aclose(self) -> None:
        sessions = list(self._sessions.values())
        self._sessions.clear()
        await asyncio.gather(*(s.close() for s in sessions), return_exceptions=True)
        if self._retired:
            await asyncio.gather(*self._retired, return_exceptions=True)
