"""Raising, listing and resolving alerts. Every raised alert is also an audit event.

Never puts a raw phone number, a caller hash or a secret into an alert's message or detail:
alerts are shown to every viewer of the organization.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, select

from core.audit.service import record_audit
from core.db import utcnow
from core.monitoring.models import Alert

SEVERITIES = ("info", "warning", "critical")


def raise_alert(
    session: Session,
    *,
    org_id: str,
    agent_id: str | None,
    kind: str,
    message: str,
    severity: str = "warning",
    actor: str = "system",
    detail: dict[str, Any] | None = None,
) -> Alert:
    if severity not in SEVERITIES:
        raise ValueError(f"unknown severity '{severity}'; use one of {SEVERITIES}")
    alert = Alert(
        org_id=org_id,
        agent_id=agent_id,
        kind=kind,
        severity=severity,
        message=message,
        detail=detail or {},
    )
    session.add(alert)
    record_audit(
        session,
        actor=actor,
        action="alert.raise",
        target=f"agent:{agent_id}" if agent_id else f"org:{org_id}",
        org_id=org_id,
        detail={"kind": kind, "severity": severity, "message": message[:500]},
    )
    return alert


def list_alerts(
    session: Session,
    org_id: str,
    agent_id: str | None = None,
    *,
    open_only: bool = False,
    limit: int = 100,
) -> list[Alert]:
    stmt = select(Alert).where(Alert.org_id == org_id)
    if agent_id is not None:
        stmt = stmt.where(Alert.agent_id == agent_id)
    if open_only:
        stmt = stmt.where(col(Alert.resolved_at).is_(None))
    return list(session.exec(stmt.order_by(col(Alert.id).desc()).limit(limit)))


def resolve_alert(session: Session, alert_id: int, actor: str) -> Alert | None:
    alert = session.get(Alert, alert_id)
    if alert is None or alert.resolved_at is not None:
        return alert
    alert.resolved_at = utcnow()
    session.add(alert)
    record_audit(
        session,
        actor=actor,
        action="alert.resolve",
        target=f"alert:{alert_id}",
        org_id=alert.org_id,
    )
    return alert
