"""Monitoring tables: the per-call scorecard and alerts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from core.db import utcnow


class CallScore(SQLModel, table=True):
    __table_args__ = (
        UniqueConstraint("agent_id", "platform", "platform_call_id"),
        Index("ix_callscore_agent_version", "agent_id", "prompt_version"),
    )

    id: int | None = Field(default=None, primary_key=True)
    org_id: str = Field(index=True, max_length=64)
    agent_id: str = Field(max_length=64)
    platform: str = Field(max_length=16)
    platform_call_id: str = Field(max_length=256)
    score: float
    parts: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    # The prompt version that served the call ("v3"; None when no version was served).
    prompt_version: str | None = Field(default=None, max_length=32)
    # The four-layer card (infrastructure, execution, reaction, outcome) and the per-call
    # metrics the aggregates and the drift monitor read (see core.monitoring.scorecard).
    layers: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    metrics: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
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
    # firing -> acknowledged (a human is on it) -> resolved (by a human, or automatically when
    # the condition clears); a resolved alert never fires again, a new one is raised instead.
    state: str = Field(default="firing", max_length=16, index=True)
    # What the alert is about, so the condition clearing can find it: "knowledge_source:<id>",
    # "prompt_rollout:<id>".
    subject: str | None = Field(default=None, max_length=200, index=True)
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = Field(default=None, max_length=128)
    resolved_at: datetime | None = None
    resolved_by: str | None = Field(default=None, max_length=128)
    resolution: str | None = Field(default=None, max_length=500)
