"""Edge limits applied to every request before any route runs (a pure ASGI middleware).

- Body size: a body over ``max_body_bytes`` is refused with 413. A declared ``Content-Length``
  over the limit is refused before a byte is read; a chunked body is counted as it streams. The
  refusal is raised from ``receive``, so a webhook route still records it as a rejection.
- Failed authentication: every 401 counts against the request's source address (a moving
  window of one minute, in memory per process). Over ``auth_failures_per_minute``, requests
  from that address answer 429 with ``Retry-After`` without touching the database, until the
  window has room again. Behind a proxy, run uvicorn with ``--proxy-headers`` so the source
  address is the client's, not the proxy's. A WebSocket closed with 1008 (policy violation: a
  refused token) counts the same way, and over the limit its handshake is refused (HTTP 403).
"""

from __future__ import annotations

import json
import math
import time

from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import error_body

WS_POLICY_VIOLATION = 1008  # how a WebSocket route refuses a credential


def too_large_detail(limit: int) -> str:
    return (
        f"the request body is larger than {limit} bytes (BACKLINE_MAX_BODY_BYTES); send a "
        "smaller body"
    )


class EdgeLimits:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int, auth_failures_per_minute: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._item = RateLimitItemPerMinute(auth_failures_per_minute)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        address = str(client[0]) if client else "unknown"
        if not self._limiter.test(self._item, "auth-failures", address):
            await self._refuse(address, send)
            return
        status = 0

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        await self.app(scope, self._bounded(scope, receive), send_status)
        if status == 401:
            self._limiter.hit(self._item, "auth-failures", address)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A socket closed 1008 (a refused credential) counts as a failed authentication; over
        the limit, the handshake is refused (HTTP 403) before any route runs."""
        client = scope.get("client")
        address = str(client[0]) if client else "unknown"
        if not self._limiter.test(self._item, "auth-failures", address):
            await send({"type": "websocket.close", "code": WS_POLICY_VIOLATION})
            return
        refused = False

        async def send_close(message: Message) -> None:
            nonlocal refused
            if message["type"] == "websocket.close" and message.get("code") == WS_POLICY_VIOLATION:
                refused = True
            await send(message)

        await self.app(scope, receive, send_close)
        if refused:
            self._limiter.hit(self._item, "auth-failures", address)

    def _bounded(self, scope: Scope, receive: Receive) -> Receive:
        limit = self.max_body_bytes
        declared = dict(scope.get("headers") or ()).get(b"content-length", b"")
        too_large = HTTPException(413, too_large_detail(limit))
        if declared.isdigit() and int(declared) > limit:

            async def refuse() -> Message:
                raise too_large

            return refuse
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise too_large
            return message

        return counted

    async def _refuse(self, address: str, send: Send) -> None:
        reset = self._limiter.get_window_stats(self._item, "auth-failures", address).reset_time
        retry_after = max(1, math.ceil(reset - time.time()))
        body = json.dumps(
            error_body(
                "RateLimitedError",
                f"too many failed authentications from {address} "
                f"({self._item.amount} per minute, BACKLINE_AUTH_FAILURES_PER_MINUTE); retry "
                f"after {retry_after} s with a valid credential",
            )
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 429,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"retry-after", str(retry_after).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
