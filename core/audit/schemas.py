"""Audit API schemas: an event as listed, and the result of verifying a chain."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel


class AuditEventPublic(BaseModel):
    id: int
    org_id: str | None
    seq: int
    at: datetime
    actor: str
    action: str
    target: str
    detail: dict[str, Any]
    prev_hash: str
    hash: str


class ChainBreakPublic(BaseModel):
    problem: str
    row_id: int | None
    seq: int
    detail: str


class AuditVerification(BaseModel):
    org_id: str
    ok: bool
    checked: int
    head_seq: int
    head_hash: str
    first_bad: ChainBreakPublic | None
