"""Monitoring tables: the per-call scorecard."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from core.db import utcnow


class CallScore(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("agent_id", "platform", "platform_call_id"),)

    id: int | None = Field(default=None, primary_key=True)
    org_id: str = Field(index=True, max_length=64)
    agent_id: str = Field(max_length=64)
    platform: str = Field(max_length=16)
    platform_call_id: str = Field(max_length=128)
    score: float
    parts: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    created_at: datetime = Field(default_factory=utcnow, index=True)


class Alert(SQLModel, table=True):
    """Something a human should look at (a rollout rolled back, a step starved of data...).
    Minimal on purpose: drift alerts and their rules build on the same row."""

    id: int | None = Field(default=None, primary_key=True)
    org_id: str = Field(index=True, max_length=64)
    agent_id: str | None = Field(default=None, index=True, max_length=64)
    kind: str = Field(max_length=64)
    severity: str = Field(default="warning", max_length=16)  # info | warning | critical
    message: str
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    created_at: datetime = Field(default_factory=utcnow, index=True)
    resolved_at: datetime | None = None
