"""The append-only audit trail: who did what to which target, and when.

Rows form one hash chain per organization (``seq``, ``prev_hash``, ``hash``); the chain head
row is what appends lock, so two writers never fork a chain. Rows name ids, never personal data:
erasing a caller must never need to touch them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index
from sqlmodel import Field, SQLModel

from core.db import utcnow


class AuditEvent(SQLModel, table=True):
    __table_args__ = (Index("ix_auditevent_chain", "org_id", "seq"),)

    id: int | None = Field(default=None, primary_key=True)
    org_id: str | None = Field(default=None, index=True, max_length=64)
    actor: str = Field(max_length=128)
    action: str = Field(max_length=64, index=True)
    target: str = Field(max_length=256)
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    at: datetime = Field(default_factory=utcnow, index=True)
    seq: int = 0
    prev_hash: str = Field(default="", max_length=64)
    hash: str = Field(default="", max_length=64)


class AuditChainHead(SQLModel, table=True):
    """The last link of one organization's chain; appends lock this row."""

    chain: str = Field(primary_key=True, max_length=64)
    seq: int = 0
    hash: str = Field(max_length=64)
