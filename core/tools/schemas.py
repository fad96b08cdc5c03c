"""Tool-gateway API schemas (Create / Public models) and the gateway's call records.

Secret inputs (header values, bearer token, stdio environment) are ``SecretStr`` so they never
show in a repr or a log line; Public models name which secrets are set, never their values.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, model_validator

from core.tools.builtins import ToolOutcome

SERVER_NAME = r"^[a-z0-9][a-z0-9_-]{0,63}$"
PREFIX = r"^[a-z][a-z0-9_]{0,23}$"

CallStatus = Literal[
    "ok",
    "tool_error",
    "invalid_arguments",
    "rate_limited",
    "breaker_open",
    "timeout",
    "unavailable",
    "malformed_result",
    "duplicate",
    "in_progress",
]


class McpServerCreate(BaseModel):
    name: str = Field(pattern=SERVER_NAME, description="Slug, unique in the organization")
    display_name: str | None = Field(
        default=None,
        max_length=200,
        description="Spoken in fallbacks, e.g. 'our booking system' (default: 'the <name> "
        "service')",
    )
    transport: Literal["stdio", "http"]
    command: list[str] | None = Field(
        default=None, description="stdio only: the server's command line (operator only)"
    )
    url: str | None = Field(default=None, description="http only: the streamable-HTTP endpoint")
    prefix: str | None = Field(
        default=None,
        pattern=PREFIX,
        description="Tools are exposed as '<prefix>_<tool>' (resolves name clashes)",
    )
    headers: dict[str, SecretStr] = Field(
        default_factory=dict, description="http only: secret headers sent on every request"
    )
    bearer_token: SecretStr | None = Field(
        default=None, description="http only: sent as 'Authorization: Bearer <token>'"
    )
    env: dict[str, SecretStr] = Field(
        default_factory=dict, description="stdio only: secret environment variables"
    )
    timeout_s: float = Field(strict=True, default=5.0, ge=0.2, le=60.0)
    max_retries: int = Field(
        strict=True, default=2, ge=0, le=5, description="For idempotent tools only"
    )
    rate_limit_per_minute: int = Field(
        strict=True, default=1800, ge=1, le=1_000_000, description="Per tool"
    )
    breaker_failures: int = Field(strict=True, default=5, ge=1, le=1000)
    breaker_error_rate: float = Field(strict=True, default=0.5, gt=0.0, le=1.0)
    breaker_window_s: float = Field(strict=True, default=30.0, ge=1.0, le=3600.0)
    breaker_min_calls: int = Field(strict=True, default=10, ge=1, le=10_000)
    breaker_cooldown_s: float = Field(strict=True, default=15.0, ge=0.1, le=3600.0)
    fallback_message: str | None = Field(default=None, min_length=1, max_length=500)

    @model_validator(mode="after")
    def _transport_fields(self) -> McpServerCreate:
        if self.transport == "stdio":
            if not self.command:
                raise ValueError("a stdio server needs 'command' (the command line to run)")
            if self.url or self.headers or self.bearer_token:
                raise ValueError("'url', 'headers' and 'bearer_token' apply to http servers")
        else:
            if not self.url or not self.url.startswith(("http://", "https://")):
                raise ValueError("an http server needs 'url' (http:// or https://)")
            if self.command or self.env:
                raise ValueError("'command' and 'env' apply to stdio servers")
        return self


class McpServerPublic(BaseModel):
    id: int
    org_id: str
    name: str
    display_name: str
    transport: str
    command: list[str] | None
    url: str | None
    prefix: str | None
    secret_header_names: list[str]
    has_bearer_token: bool
    secret_env_names: list[str]
    timeout_s: float
    max_retries: int
    rate_limit_per_minute: int
    breaker_failures: int
    breaker_error_rate: float
    breaker_window_s: float
    breaker_min_calls: int
    breaker_cooldown_s: float
    fallback_message: str | None
    tools: list[str]
    tools_refreshed_at: datetime | None
    last_error: str | None
    created_at: datetime


class ToolPublic(BaseModel):
    """A tool a registered server offers, with the name it is exposed under."""

    name: str
    server: str
    tool: str
    title: str | None
    description: str
    input_schema: dict[str, Any]
    read_only: bool | None
    idempotent: bool | None
    destructive: bool | None
    enabled: bool | None = Field(default=None, description="On the agent asked about, if any")


class ToolEnable(BaseModel):
    idempotent: bool | None = Field(
        default=None,
        description="Override the server's hints: true allows retries and skips the "
        "idempotency ledger; false treats the tool as side-effecting",
    )
    timeout_s: float | None = Field(strict=True, default=None, ge=0.2, le=60.0)
    rate_limit_per_minute: int | None = Field(strict=True, default=None, ge=1, le=1_000_000)
    fallback_message: str | None = Field(default=None, min_length=1, max_length=500)


class AgentToolPublic(BaseModel):
    agent_id: str
    name: str
    server: str
    tool: str
    description: str
    available: bool = Field(description="False when the server no longer lists the tool")
    idempotent: bool
    idempotent_override: bool | None
    timeout_s: float
    rate_limit_per_minute: int
    fallback_message: str | None


class ToolCallRequest(BaseModel):
    arguments: dict[str, Any] = Field(default_factory=dict)
    call_id: str | None = Field(
        default=None,
        max_length=128,
        description="Groups the call into a trace; with "
        "tool_call_id it makes a side-effecting call idempotent",
    )
    tool_call_id: str | None = Field(default=None, max_length=128)


class ToolCallResponse(BaseModel):
    tool: str
    status: str
    result: str | None
    error: str | None
    latency_ms: float
    attempts: int
    breaker: str | None
    duplicate: bool


class RefreshReport(BaseModel):
    server: str
    tools: list[str]
    error: str | None


@dataclass(frozen=True)
class ToolCallRecord:
    """One gateway call, as written to the call's trace and the audit log.

    ``arguments`` and the outcome are in clear here: they are redacted when written
    (``record_tool_call``); never log this object.
    """

    org_id: str
    agent_id: str
    platform: str
    call_id: str | None
    caller_hash: str | None
    actor: str
    tool: str
    server: str
    server_tool: str
    arguments: dict[str, Any]
    status: CallStatus
    outcome: ToolOutcome
    latency_ms: float
    attempts: int
    breaker: str | None
    duplicate: bool
    read_only: bool = False  # the tool declares it changes nothing (MCP ``readOnlyHint``)


@dataclass(frozen=True)
class GatewayResult:
    outcome: ToolOutcome
    record: ToolCallRecord
