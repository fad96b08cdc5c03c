"""Tool-gateway tables: registered MCP servers, tools enabled per agent, and the idempotency
ledger of side-effecting tool calls.

Server secrets (header values, bearer token, stdio environment) are stored only as one
SecretBox-encrypted blob; nothing here holds them in clear. The ledger keeps a tool's answer so
a platform retry can be given the same answer; it is purged after a day (see
``ToolRegistryService.purge_invocations``) because retries arrive within seconds or minutes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from core.db import utcnow

TRANSPORTS = ("stdio", "http")


class McpServer(SQLModel, table=True):
    """One MCP server an organization registered, with its call policy."""

    __table_args__ = (UniqueConstraint("org_id", "name", name="uq_mcpserver_org_name"),)

    id: int | None = Field(default=None, primary_key=True)
    org_id: str = Field(foreign_key="organization.id", index=True, max_length=64)
    name: str = Field(max_length=64)
    # Spoken in fallback messages ("I can't reach our booking system right now").
    display_name: str = Field(max_length=200)
    transport: str = Field(max_length=16)
    command: list[str] | None = Field(default=None, sa_column=Column(JSON))
    url: str | None = Field(default=None, max_length=2000)
    prefix: str | None = Field(default=None, max_length=24)
    secrets_encrypted: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    secret_names: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    timeout_s: float = 5.0
    max_retries: int = 2
    rate_limit_per_minute: int = 1800
    breaker_failures: int = 5
    breaker_error_rate: float = 0.5
    breaker_window_s: float = 30.0
    breaker_min_calls: int = 10
    breaker_cooldown_s: float = 15.0
    fallback_message: str | None = None
    tools: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    tools_refreshed_at: datetime | None = None
    last_error: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class AgentTool(SQLModel, table=True):
    """A server's tool enabled on an agent, under the name the platforms see."""

    __table_args__ = (
        UniqueConstraint("agent_id", "exposed_name", name="uq_agenttool_exposed"),
        UniqueConstraint("agent_id", "server_id", "tool_name", name="uq_agenttool_tool"),
    )

    id: int | None = Field(default=None, primary_key=True)
    org_id: str = Field(foreign_key="organization.id", index=True, max_length=64)
    agent_id: str = Field(foreign_key="agent.id", index=True, max_length=64)
    server_id: int = Field(foreign_key="mcpserver.id", index=True)
    tool_name: str = Field(max_length=128)
    exposed_name: str = Field(max_length=64)
    idempotent: bool | None = None
    timeout_s: float | None = None
    rate_limit_per_minute: int | None = None
    fallback_message: str | None = None
    created_at: datetime = Field(default_factory=utcnow)


class ToolInvocation(SQLModel, table=True):
    """The first run of a side-effecting tool call, unique on its idempotency key."""

    id: int | None = Field(default=None, primary_key=True)
    idempotency_key: str = Field(max_length=64, unique=True)
    org_id: str = Field(index=True, max_length=64)
    agent_id: str = Field(max_length=64)
    platform: str = Field(max_length=16)
    call_id: str = Field(max_length=256)
    tool_call_id: str = Field(max_length=128)
    tool: str = Field(max_length=64)
    status: str = Field(default="running", max_length=16)
    outcome_status: str | None = Field(default=None, max_length=32)
    result: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    attempts: int = 0
    created_at: datetime = Field(default_factory=utcnow, index=True)
    finished_at: datetime | None = None
