"""Tenancy tables: organizations, agents, API keys and per-agent platform credentials.

Every other row in Backline is scoped by ``org_id`` and ``agent_id`` from here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from core.db import utcnow

SCOPES = ("admin", "content", "release", "viewer")
PLATFORMS = ("vapi", "retell", "bland")
CREDENTIAL_KINDS = {
    "vapi": ("bearer", "hmac"),
    "retell": ("api_key",),
    "bland": ("signing_secret", "tool_token"),
    "custom": ("signing_secret",),
}


class Organization(SQLModel, table=True):
    id: str = Field(primary_key=True, max_length=64)
    name: str
    created_at: datetime = Field(default_factory=utcnow)
    # Retention in days; None: raw payloads follow the deployment default, the rest is kept.
    raw_payload_days: int | None = None
    transcript_days: int | None = None
    memory_days: int | None = None


class Agent(SQLModel, table=True):
    id: str = Field(primary_key=True, max_length=64)
    org_id: str = Field(foreign_key="organization.id", index=True, max_length=64)
    name: str
    vapi_assistant_id: str | None = None
    vapi_assistant: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    # The agent's PiiPolicy document (core.pii.policy); None is the default policy.
    pii_policy: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    created_at: datetime = Field(default_factory=utcnow)


class ApiKey(SQLModel, table=True):
    id: str = Field(primary_key=True, max_length=32)
    org_id: str = Field(foreign_key="organization.id", index=True, max_length=64)
    name: str
    key_hash: str = Field(unique=True, max_length=64)
    scopes: list[str] = Field(sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
    revoked_at: datetime | None = None


class PlatformCredential(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("agent_id", "platform", "kind"),)

    id: int | None = Field(default=None, primary_key=True)
    org_id: str = Field(foreign_key="organization.id", index=True, max_length=64)
    agent_id: str = Field(foreign_key="agent.id", index=True, max_length=64)
    platform: str = Field(max_length=16)
    kind: str = Field(max_length=32)
    secret_encrypted: str
    header_name: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
