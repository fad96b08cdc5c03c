"""Memory read models returned by the service and the API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class CallerContext(BaseModel):
    """What the agent knows about a caller at the start of a call (empty for a first call)."""

    known: bool = False
    summary: str = ""
    facts: dict[str, str] = Field(default_factory=dict)
    call_count: int = 0
    last_call_at: datetime | None = None


class MemoryHit(BaseModel):
    kind: str
    text: str
    score: float
    similarity: float
    source_call_id: str
    created_at: datetime


class FactPublic(BaseModel):
    key: str
    value: str
    valid_from: datetime
    valid_to: datetime | None
    source_call_id: str
    platform: str


class SummaryPublic(BaseModel):
    text: str
    platform: str
    source_call_id: str
    method: str
    revision: int
    created_at: datetime


class CallerTimeline(BaseModel):
    caller_hash: str
    caller_display: str | None
    context: CallerContext
    summaries: list[SummaryPublic]
    facts: list[FactPublic]
