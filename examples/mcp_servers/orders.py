"""Demo MCP server: Acme's order desk (order status, refunds).

A refund must carry an ``idempotency_key``; a second refund with the same key answers the first
refund's result and moves no money again. Backline's gateway fills that key from the platform's
call and tool-call id, so a platform retry of the same refund lands on the same key.

    python examples/mcp_servers/orders.py                  # stdio
    python examples/mcp_servers/orders.py --http 8766      # http://127.0.0.1:8766/mcp

``--refund-delay`` simulates the payment processor (default 0.3 s), ``--delay`` slows every
call, and ``--api-key`` (HTTP only) makes every request carry ``Authorization: Bearer <key>``
(register the server with ``--bearer-token``). State lives in memory. Written with the official
MCP Python SDK (v2, ``MCPServer``).
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import secrets

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send


class Order(BaseModel):
    order_id: str
    status: str
    total: float
    refunded: float
    summary: str


class Refund(BaseModel):
    refund_id: str
    order_id: str
    amount: float
    reason: str
    status: str


class RefundLog(BaseModel):
    refund_requests: int = Field(description="refund_order calls received, duplicates included")
    refunds: list[Refund]


ORDERS = {
    "1042": Order(
        order_id="1042",
        status="delivered",
        total=129.99,
        refunded=0.0,
        summary="Water heater valve kit, delivered Feb 27",
    ),
    "1043": Order(
        order_id="1043",
        status="shipped",
        total=48.50,
        refunded=0.0,
        summary="Smart thermostat, arriving Thursday",
    ),
    "1044": Order(
        order_id="1044",
        status="processing",
        total=310.00,
        refunded=0.0,
        summary="Tankless water heater, ships next week",
    ),
}


def build_server(delay_s: float = 0.0, refund_delay_s: float = 0.3) -> MCPServer:
    server = MCPServer("orders", instructions="Acme's order desk: order status and refunds.")
    orders = {k: v.model_copy() for k, v in ORDERS.items()}
    refunds_by_key: dict[str, Refund] = {}
    requests = 0

    async def pause(extra: float = 0.0) -> None:
        if delay_s + extra > 0:
            await asyncio.sleep(delay_s + extra)

    @server.tool(
        title="Order status",
        annotations=ToolAnnotations(read_only_hint=True, idempotent_hint=True),
    )
    async def order_status(
        order_id: str = Field(description="The order number, e.g. 1042"),
    ) -> Order:
        """Look up an order's status, total and what was refunded."""
        await pause()
        order = orders.get(order_id.strip().lstrip("#"))
        if order is None:
            raise ToolError(f"There is no order {order_id}; ask the caller to check the number.")
        return order

    @server.tool(
        title="Refund an order",
        annotations=ToolAnnotations(destructive_hint=True, idempotent_hint=False),
    )
    async def refund_order(
        order_id: str = Field(description="The order number"),
        reason: str = Field(min_length=1, description="Why the caller wants a refund"),
        idempotency_key: str = Field(
            min_length=8, description="Unique per refund request; a repeat returns the first"
        ),
        amount: float | None = Field(
            default=None, gt=0, description="Amount to refund; the remaining total when omitted"
        ),
    ) -> Refund:
        """Refund (part of) an order. Requires an idempotency key; repeating a key returns the
        first refund instead of refunding twice."""
        nonlocal requests
        requests += 1
        if idempotency_key in refunds_by_key:
            return refunds_by_key[idempotency_key]
        order = orders.get(order_id.strip().lstrip("#"))
        if order is None:
            raise ToolError(f"There is no order {order_id}.")
        remaining = round(order.total - order.refunded, 2)
        value = remaining if amount is None else round(amount, 2)
        if value <= 0 or value > remaining:
            raise ToolError(f"Order {order.order_id} has {remaining:.2f} left to refund.")
        # Reserve the key before the slow part, so a concurrent repeat cannot refund again.
        refund = Refund(
            refund_id=f"R-{secrets.token_hex(3).upper()}",
            order_id=order.order_id,
            amount=value,
            reason=reason,
            status="refunded",
        )
        refunds_by_key[idempotency_key] = refund
        order.refunded = round(order.refunded + value, 2)
        await pause(refund_delay_s)
        return refund

    @server.tool(
        title="Refund log",
        annotations=ToolAnnotations(read_only_hint=True, idempotent_hint=True),
    )
    async def list_refunds() -> RefundLog:
        """Refunds made so far and how many refund requests arrived."""
        return RefundLog(refund_requests=requests, refunds=list(refunds_by_key.values()))

    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--http", type=int, metavar="PORT", help="serve streamable HTTP")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds added to every call")
    parser.add_argument("--refund-delay", type=float, default=0.3, help="payment processor time")
    parser.add_argument("--api-key", help="HTTP only: require 'Authorization: Bearer <key>'")
    args = parser.parse_args()
    server = build_server(args.delay, args.refund_delay)
    if args.http and args.api_key:
        import uvicorn

        app = require_bearer(server.streamable_http_app(host=args.host), args.api_key)
        uvicorn.run(app, host=args.host, port=args.http, log_level="warning")
    elif args.http:
        server.run("streamable-http", host=args.host, port=args.http)
    else:
        server.run()


def require_bearer(app: ASGIApp, key: str) -> ASGIApp:
    """Answer 401 to HTTP requests without the bearer key (lifespan passes through)."""
    expected = f"Bearer {key}".encode()

    async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not hmac.compare_digest(
            dict(scope["headers"]).get(b"authorization", b""), expected
        ):
            await JSONResponse({"error": "unauthorized"}, status_code=401)(scope, receive, send)
            return
        await app(scope, receive, send)

    return guarded


if __name__ == "__main__":
    main()
