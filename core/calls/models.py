"""Call tables: the webhook inbox, rejected webhooks, calls and their events.

Raw payloads live only in ``webhookinbox.payload`` and ``rejectedwebhook.payload`` and are purged
after the retention window; everything else here is stored redacted.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from core.db import utcnow


class WebhookInbox(SQLModel, table=True):
    __table_args__ = (
        # Agent ids are global, so the agent scopes the organization too.
        UniqueConstraint(
            "agent_id",
            "platform",
            "event_type",
            "call_id",
            "payload_hash",
            name="uq_inbox_agent_event",
        ),
        UniqueConstraint("workflow_id", name="uq_inbox_workflow"),
        Index("ix_inbox_call", "platform", "call_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    org_id: str = Field(index=True, max_length=64)
    agent_id: str = Field(max_length=64)
    platform: str = Field(max_length=16)
    event_type: str = Field(max_length=64)
    call_id: str = Field(max_length=256)
    payload_hash: str = Field(max_length=64)
    payload: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    caller_hash: str | None = Field(default=None, index=True, max_length=64)
    revision: int = 1
    workflow_id: str | None = None
    dispatched_at: datetime | None = None
    # The dispatcher's bookkeeping for a row whose workflow could not start: tries so far, when
    # to try again (backoff), and when it gave up (with the last error).
    dispatch_attempts: int = 0
    next_dispatch_at: datetime | None = None
    dispatch_failed_at: datetime | None = None
    dispatch_error: str | None = Field(default=None, max_length=500)
    received_at: datetime = Field(default_factory=utcnow, index=True)


class RejectedWebhook(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    org_id: str | None = Field(default=None, index=True, max_length=64)
    agent_id: str | None = Field(default=None, max_length=64)
    platform: str = Field(max_length=16)
    reason: str = Field(max_length=64)
    detail: str
    status_code: int
    payload: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    caller_hash: str | None = Field(default=None, index=True, max_length=64)
    received_at: datetime = Field(default_factory=utcnow, index=True)


# in_progress -> ended (end-of-call stored) -> processed (post-call done); in_progress ->
# abandoned when nothing was heard for the idle time (a later end-of-call still ends it).
ABANDONED = "abandoned"


class Call(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("agent_id", "platform", "platform_call_id"),)

    id: int | None = Field(default=None, primary_key=True)
    org_id: str = Field(index=True, max_length=64)
    agent_id: str = Field(index=True, max_length=64)
    platform: str = Field(max_length=16)
    platform_call_id: str = Field(max_length=256)
    caller_hash: str | None = Field(default=None, index=True, max_length=64)
    caller_display: str | None = None
    direction: str | None = None
    status: str = "in_progress"
    started_at: datetime | None = None
    ended_at: datetime | None = Field(default=None, index=True)
    ended_reason: str | None = None
    revision: int = 0
    transcript: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    summary: str | None = None
    summary_method: str | None = None
    platform_summary: str | None = None
    analysis: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    prompt_version: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class CallEvent(SQLModel, table=True):
    __table_args__ = (Index("ix_callevent_call", "agent_id", "platform", "platform_call_id"),)

    id: int | None = Field(default=None, primary_key=True)
    org_id: str = Field(index=True, max_length=64)
    agent_id: str = Field(max_length=64)
    platform: str = Field(max_length=16)
    platform_call_id: str = Field(max_length=256)
    caller_hash: str | None = Field(default=None, index=True, max_length=64)
    type: str = Field(max_length=64)
    platform_type: str = Field(max_length=64)
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    at: datetime = Field(default_factory=utcnow)
