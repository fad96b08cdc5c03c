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


class AlertRule(SQLModel, table=True):
    """Which of an agent's alerts notify the organization's channels (docs/alerts.md).

    ``single``: every alert of ``alert_kinds`` (``drift_*`` matches a prefix; empty: any kind) at
    ``min_severity`` or above. ``trend``: the same match, meant for the trend alarms (``drift_*``)
    a metric monitor raises. ``threshold``: the rule raises an alert itself when the agent's
    ``metric`` over its last ``window_calls`` scored calls compares ``op`` to ``value``.
    """

    id: int | None = Field(default=None, primary_key=True)
    org_id: str = Field(index=True, max_length=64)
    agent_id: str = Field(index=True, max_length=64)
    name: str = Field(max_length=100)
    kind: str = Field(max_length=16)  # single | trend | threshold
    alert_kinds: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    min_severity: str = Field(default="warning", max_length=16)
    metric: str | None = Field(default=None, max_length=32)  # threshold: score_mean | score_min
    op: str | None = Field(default=None, max_length=2)  # threshold: < <= > >=
    value: float | None = None
    window_calls: int | None = None
    cooldown_minutes: int = 15
    channel_ids: list[int] = Field(default_factory=list, sa_column=Column(JSON))  # empty: all
    enabled: bool = True
    created_at: datetime = Field(default_factory=utcnow)
    created_by: str = Field(default="system", max_length=128)


class AlertChannel(SQLModel, table=True):
    """Where an organization's alerts are delivered: a signed generic webhook or a Slack
    incoming webhook. The URL (a Slack webhook URL is itself a credential) and the signing
    secret are stored encrypted (``SecretBox``); ``url_host`` is what listings show."""

    id: int | None = Field(default=None, primary_key=True)
    org_id: str = Field(index=True, max_length=64)
    name: str = Field(max_length=100)
    kind: str = Field(max_length=16)  # webhook | slack
    url_encrypted: str
    url_host: str = Field(max_length=255)
    secret_encrypted: str | None = None
    enabled: bool = True
    created_at: datetime = Field(default_factory=utcnow)
    created_by: str = Field(default="system", max_length=128)


class AlertDelivery(SQLModel, table=True):
    """The outbox: one notification of one alert state change to one channel, written in the
    alert's own transaction and sent by ``AlertDeliveryWorkflow``. ``idempotency_key`` is sent
    with every attempt so a receiver can drop repeats."""

    __table_args__ = (UniqueConstraint("alert_id", "channel_id", "event"),)

    id: int | None = Field(default=None, primary_key=True)
    org_id: str = Field(index=True, max_length=64)
    alert_id: int = Field(index=True)
    channel_id: int = Field(index=True)
    rule_id: int | None = None
    event: str = Field(max_length=16)  # firing | acknowledged | resolved
    subject: str = Field(max_length=200, index=True)  # the cool-down key (alert subject or kind)
    idempotency_key: str = Field(max_length=100, unique=True)
    # pending -> sent | failed; suppressed (cool-down) never leaves
    status: str = Field(default="pending", max_length=16, index=True)
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    attempts: int = 0
    last_error: str | None = Field(default=None, max_length=500)
    response_status: int | None = None
    created_at: datetime = Field(default_factory=utcnow, index=True)
    dispatched_at: datetime | None = None
    sent_at: datetime | None = None


class DriftState(SQLModel, table=True):
    """One drift monitor's stored state: an agent on one prompt version (docs/monitoring.md,
    "Drift watch"). ``state`` is ``DriftMonitor.state()``; ``last_call_score_id`` is the
    ``CallScore.id`` up to which the agent's calls have been fed (the agent's cursor is the
    largest over its rows)."""

    __table_args__ = (UniqueConstraint("agent_id", "prompt_version"),)

    id: int | None = Field(default=None, primary_key=True)
    org_id: str = Field(index=True, max_length=64)
    agent_id: str = Field(index=True, max_length=64)
    prompt_version: str = Field(max_length=32)
    state: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    calls_seen: int = 0
    last_call_score_id: int = 0
    updated_at: datetime = Field(default_factory=utcnow)
