"""The protocol side of Backline's own MCP endpoint: one agent's tools (built-ins and enabled
gateway tools) served over streamable HTTP with the official MCP SDK.

Stateless and JSON-only: every request stands alone (no MCP session to pin a replica), which
suits both the 2026-07-28 single-exchange protocol and older clients. The API authenticates the
request first and passes the agent and the caller's identity in the ASGI scope; this module
never authenticates, and never logs arguments or results.

A client may send ``_meta: {"backline/call_id": "<id>", "backline/tool_call_id": "<id>"}`` with
``tools/call``: the call is then traced under that call id, and a repeat of the same pair (same
arguments) of a side-effecting tool is answered from the first run instead of running again.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any

import mcp_types
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from starlette.types import Receive, Scope, Send

from core.tools.ports import ToolProvider

AGENT_SCOPE_KEY = "backline.mcp.agent_id"
ACTOR_SCOPE_KEY = "backline.mcp.actor"
CALL_ID_META_KEY = "backline/call_id"
TOOL_CALL_ID_META_KEY = "backline/tool_call_id"


def _scope_value(ctx: ServerRequestContext[Any, Any], key: str) -> str:
    request = ctx.request
    scope: Mapping[str, Any] = getattr(request, "scope", None) or {}
    value = scope.get(key)
    if not isinstance(value, str):
        # Only reachable if the endpoint is mounted without the API's authentication.
        raise PermissionError("unauthenticated MCP request")
    return value


class McpEndpoint:
    def __init__(self, provider: ToolProvider, *, name: str = "backline") -> None:
        self._provider = provider
        self._server: Server[Any] = Server(
            name,
            version="0.1.0",
            instructions="An agent's tools through Backline's gateway: the built-ins "
            "(memory_search, ...) and the MCP tools enabled on the agent.",
            on_list_tools=self._list_tools,
            on_call_tool=self._call_tool,
        )
        self._manager = StreamableHTTPSessionManager(
            app=self._server, stateless=True, json_response=True
        )

    def running(self) -> AbstractAsyncContextManager[None]:
        """Enter once, in the API lifespan, before serving requests."""
        return self._manager.run()

    async def handle(
        self, scope: Scope, receive: Receive, send: Send, *, agent_id: str, actor: str
    ) -> None:
        """Serve one authenticated HTTP request for ``agent_id``."""
        scope[AGENT_SCOPE_KEY] = agent_id
        scope[ACTOR_SCOPE_KEY] = actor
        await self._manager.handle_request(scope, receive, send)

    async def _list_tools(
        self,
        ctx: ServerRequestContext[Any, Any],
        params: mcp_types.PaginatedRequestParams | None,
    ) -> mcp_types.ListToolsResult:
        agent_id = _scope_value(ctx, AGENT_SCOPE_KEY)
        tools = await self._provider.list_tools(agent_id)
        return mcp_types.ListToolsResult(
            tools=[
                mcp_types.Tool(
                    name=t.name,
                    description=t.description,
                    input_schema=t.input_schema,
                    annotations=mcp_types.ToolAnnotations(
                        read_only_hint=t.read_only,
                        idempotent_hint=t.idempotent,
                        destructive_hint=t.destructive,
                    ),
                )
                for t in tools
            ]
        )

    async def _call_tool(
        self, ctx: ServerRequestContext[Any, Any], params: mcp_types.CallToolRequestParams
    ) -> mcp_types.CallToolResult:
        agent_id = _scope_value(ctx, AGENT_SCOPE_KEY)
        actor = _scope_value(ctx, ACTOR_SCOPE_KEY)
        meta: Mapping[str, Any] = params.meta or {}
        call_id = meta.get(CALL_ID_META_KEY)
        tool_call_id = meta.get(TOOL_CALL_ID_META_KEY)
        outcome = await self._provider.call_tool(
            agent_id,
            params.name,
            dict(params.arguments or {}),
            actor=actor,
            call_id=str(call_id)[:128] if call_id else None,
            # Without an explicit id every request is its own tool call (never deduplicated).
            tool_call_id=str(tool_call_id)[:128] if tool_call_id else uuid.uuid4().hex,
        )
        if outcome.error is not None:
            return mcp_types.CallToolResult(
                content=[mcp_types.TextContent(type="text", text=outcome.error)], is_error=True
            )
        return mcp_types.CallToolResult(
            content=[mcp_types.TextContent(type="text", text=outcome.result or "")]
        )
