"""Protocols the tool gateway depends on, and the plain data crossing them.

``McpClient`` is implemented by ``connectors/mcp`` (the only code that knows the MCP SDK and its
transports); ``ToolProvider`` is what Backline's own MCP endpoint serves, implemented by the API.
Nothing here imports an MCP or HTTP library. ``ServerSpec`` carries decrypted secrets: it must
never be logged, printed or stored.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from core.tools.builtins import ToolOutcome


@dataclass(frozen=True)
class ServerSpec:
    """How to reach one MCP server. Holds secrets in clear: never log or persist it."""

    server_id: int
    name: str
    transport: Literal["stdio", "http"]
    command: tuple[str, ...] = ()
    url: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    env: Mapping[str, str] = field(default_factory=dict, repr=False)

    def fingerprint(self) -> str:
        """Changes whenever anything about the connection changes (a pooled session is then
        replaced); a one-way hash, so it can be compared without exposing the secrets."""
        material = json.dumps(
            [
                self.transport,
                list(self.command),
                self.url,
                sorted(self.headers.items()),
                sorted(self.env.items()),
            ]
        )
        return hashlib.sha256(material.encode()).hexdigest()


@dataclass(frozen=True)
class DiscoveredTool:
    """A tool as a server lists it (``tools/list``), with its behaviour hints."""

    name: str
    description: str
    input_schema: dict[str, Any]
    title: str | None = None
    read_only: bool | None = None
    idempotent: bool | None = None
    destructive: bool | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "description": self.description,
            "input_schema": self.input_schema,
            "read_only": self.read_only,
            "idempotent": self.idempotent,
            "destructive": self.destructive,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DiscoveredTool:
        schema = data.get("input_schema")
        return cls(
            name=str(data["name"]),
            title=data.get("title"),
            description=str(data.get("description") or ""),
            input_schema=dict(schema) if isinstance(schema, Mapping) else {"type": "object"},
            read_only=data.get("read_only"),
            idempotent=data.get("idempotent"),
            destructive=data.get("destructive"),
        )


@dataclass(frozen=True)
class RawToolResult:
    """A ``tools/call`` answer reduced to what a voice agent can use."""

    texts: tuple[str, ...] = ()
    structured: Any = None
    is_error: bool = False
    other_content: tuple[str, ...] = ()  # kinds of non-text blocks (image, audio, ...)


class McpError(Exception):
    """Base of the errors an ``McpClient`` raises; messages never contain secrets."""


class McpUnavailableError(McpError):
    """The server could not be reached; the request was not sent, so retrying is always safe."""


class McpConnectionLostError(McpError):
    """The connection broke after the request was sent: the tool may or may not have run."""


class McpCallTimeoutError(McpError):
    """No answer within the time given."""


class McpMalformedResultError(McpError):
    """The server answered something that is not a valid MCP result."""


class McpRejectedError(McpError):
    """The server answered with a protocol error (unknown tool, invalid params): it is up."""


class McpClient(Protocol):
    """Pooled, long-lived MCP client sessions, one per server per process."""

    async def list_tools(self, server: ServerSpec, timeout_s: float) -> list[DiscoveredTool]: ...

    async def call_tool(
        self, server: ServerSpec, tool: str, arguments: dict[str, Any], timeout_s: float
    ) -> RawToolResult: ...

    def is_connected(self, server_id: int) -> bool: ...

    async def disconnect(self, server_id: int) -> None: ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True)
class ExposedTool:
    """A tool as an agent's clients see it: its exposed name, schema and hints."""

    name: str
    description: str
    input_schema: dict[str, Any]
    read_only: bool | None = None
    idempotent: bool | None = None
    destructive: bool | None = None


class ToolProvider(Protocol):
    """What Backline's own MCP endpoint serves for one agent (built-ins + enabled tools)."""

    async def list_tools(self, agent_id: str) -> list[ExposedTool]: ...

    async def call_tool(
        self,
        agent_id: str,
        name: str,
        arguments: dict[str, Any],
        *,
        actor: str,
        call_id: str | None,
        tool_call_id: str,
    ) -> ToolOutcome: ...
