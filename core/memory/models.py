"""Memory tables: per-caller call summaries, bi-temporal facts and the caller profile.

The profile row is what the hot path reads: one indexed lookup returns the caller's whole
context. Callers are keyed by a keyed hash of their number, never the number itself.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from core.db import utcnow


class Memory(SQLModel, table=True):
    __table_args__ = (
        UniqueConstraint("agent_id", "platform", "source_call_id", "kind", name="uq_memory_source"),
        Index("ix_memory_caller", "org_id", "agent_id", "caller_hash"),
    )

    id: int | None = Field(default=None, primary_key=True)
    org_id: str = Field(max_length=64)
    agent_id: str = Field(max_length=64)
    caller_hash: str = Field(max_length=64)
    kind: str = Field(default="summary", max_length=32)
    text: str = Field(sa_column=Column(Text, nullable=False))
    platform: str = Field(max_length=16)
    source_call_id: str = Field(max_length=256)
    revision: int = 1
    method: str = Field(default="extractive", max_length=32)
    created_at: datetime = Field(default_factory=utcnow)


class Fact(SQLModel, table=True):
    __table_args__ = (Index("ix_fact_caller", "org_id", "agent_id", "caller_hash", "key"),)

    id: int | None = Field(default=None, primary_key=True)
    org_id: str = Field(max_length=64)
    agent_id: str = Field(max_length=64)
    caller_hash: str = Field(max_length=64)
    key: str = Field(max_length=64)
    value: str
    valid_from: datetime
    valid_to: datetime | None = None
    superseded_by_platform: str | None = Field(default=None, max_length=16)
    superseded_by_call_id: str | None = Field(default=None, max_length=256)
    platform: str = Field(max_length=16)
    source_call_id: str = Field(max_length=256)
    recorded_at: datetime = Field(default_factory=utcnow)


class CallerProfile(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("org_id", "agent_id", "caller_hash", name="uq_profile"),)

    id: int | None = Field(default=None, primary_key=True)
    org_id: str = Field(max_length=64)
    agent_id: str = Field(max_length=64)
    caller_hash: str = Field(max_length=64)
    caller_display: str | None = None
    call_count: int = 0
    last_call_at: datetime | None = None
    context: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    updated_at: datetime = Field(default_factory=utcnow)
