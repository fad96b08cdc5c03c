"""Call read models for the API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class CallPublic(BaseModel):
    id: int
    org_id: str
    agent_id: str
    platform: str
    platform_call_id: str
    caller_hash: str | None
    caller_display: str | None
    status: str
    started_at: datetime | None
    ended_at: datetime | None
    ended_reason: str | None
    revision: int
    summary: str | None
    summary_method: str | None
    prompt_version: str | None


class CallEventPublic(BaseModel):
    type: str
    platform_type: str
    at: datetime
    data: dict[str, Any]


class CallDetail(CallPublic):
    transcript: list[dict[str, Any]]
    platform_summary: str | None
    analysis: dict[str, Any]
    events: list[CallEventPublic]
    score: float | None
    score_parts: dict[str, Any] | None
    score_layers: dict[str, Any] | None = Field(
        default=None,
        description="The four-layer card: infrastructure, execution, reaction, outcome",
    )
    score_metrics: dict[str, Any] | None = None


class RejectedWebhookPublic(BaseModel):
    id: int
    platform: str
    agent_id: str | None
    reason: str
    detail: str
    status_code: int
    received_at: datetime
