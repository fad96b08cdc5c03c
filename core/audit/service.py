"""Appending audit events. Never stores raw phone numbers or secrets in ``detail``."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, select

from core.audit.models import AuditEvent


def record_audit(
    session: Session,
    *,
    actor: str,
    action: str,
    target: str,
    org_id: str | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    event = AuditEvent(
        org_id=org_id, actor=actor, action=action, target=target, detail=detail or {}
    )
    session.add(event)
    return event


def list_audit(session: Session, org_id: str, limit: int = 100) -> list[AuditEvent]:
    stmt = (
        select(AuditEvent)
        .where(AuditEvent.org_id == org_id)
        .order_by(col(AuditEvent.id).desc())
        .limit(limit)
    )
    return list(session.exec(stmt))
