"""Raising, listing, acknowledging and resolving alerts. Every change is also an audit event.

An alert is ``firing`` when raised, ``acknowledged`` once a human took it, ``resolved`` by a
human or automatically when its condition clears (``resolve_subject``: a knowledge source fresh
again or deleted, a later rollout promoted). While an alert about a subject is open, raising the
same kind about the same subject updates it instead of piling up a second one.

Each state change (raised, acknowledged, resolved) also writes its notifications to the
delivery outbox in the same transaction (``core.monitoring.delivery``; docs/alerts.md).

Never puts a raw phone number, a caller hash or a secret into an alert's message or detail:
alerts are shown to every viewer of the organization.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlmodel import Session

from core.audit.service import record_audit
from core.audit.targets import agent_target
from core.db import utcnow
from core.errors import ConflictError, InvalidInputError, NotFoundError
from core.monitoring import delivery
from core.monitoring import repository as repo
from core.monitoring.models import Alert
from core.monitoring.repository import AlertFilter

SEVERITIES = ("info", "warning", "critical")
STATES = ("firing", "acknowledged", "resolved")
OPEN_STATES = repo.OPEN_STATES

KNOWLEDGE_FAILING = "knowledge_source_failing"
KNOWLEDGE_STALE = "knowledge_source_stale"
ROLLOUT_ROLLBACK = "prompt_rollout_rollback"
ROLLOUT_PAUSED = "prompt_rollout_paused"


class AlertPublic(BaseModel):
    id: int
    org_id: str
    agent_id: str | None
    kind: str
    severity: str
    state: str
    subject: str | None
    message: str
    detail: dict[str, Any]
    created_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    resolved_at: datetime | None
    resolved_by: str | None
    resolution: str | None


def knowledge_subject(source_id: str) -> str:
    return f"knowledge_source:{source_id}"


def rollout_subject(rollout_id: int) -> str:
    return f"prompt_rollout:{rollout_id}"


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
    subject: str | None = None,
) -> Alert:
    if severity not in SEVERITIES:
        raise ValueError(f"unknown severity '{severity}'; use one of {SEVERITIES}")
    if subject is not None:
        existing = repo.open_alert(session, org_id, subject, kind)
        if existing is not None:  # the same condition, still open: keep one alert up to date
            existing.message = message
            existing.detail = detail or {}
            existing.severity = severity
            session.add(existing)
            return existing
    alert = Alert(
        org_id=org_id,
        agent_id=agent_id,
        kind=kind,
        severity=severity,
        message=message,
        detail=detail or {},
        subject=subject,
    )
    session.add(alert)
    record_audit(
        session,
        actor=actor,
        action="alert.raise",
        target=agent_target(agent_id) if agent_id else f"org:{org_id}",
        org_id=org_id,
        detail={"kind": kind, "severity": severity, "message": message[:500]},
    )
    delivery.enqueue(session, alert, "firing")
    return alert


def list_alerts(session: Session, f: AlertFilter) -> list[Alert]:
    """Newest first."""
    if f.state is not None and f.state not in STATES:
        raise InvalidInputError(f"unknown alert state '{f.state}'; use one of {', '.join(STATES)}")
    return repo.list_alerts(session, f)


def require_alert(session: Session, org_id: str, alert_id: int) -> Alert:
    alert = repo.get_alert(session, alert_id)
    if alert is None or alert.org_id != org_id:
        raise NotFoundError(
            f"organization '{org_id}' has no alert {alert_id}; list them with "
            "`backline alerts list --org-id <org>`"
        )
    return alert


def acknowledge_alert(session: Session, org_id: str, alert_id: int, actor: str) -> Alert:
    """A human took the alert; it stays open until resolved (by them or by its condition)."""
    alert = require_alert(session, org_id, alert_id)
    if alert.state == "resolved":
        raise ConflictError(f"alert {alert_id} is already resolved; nothing to acknowledge")
    if alert.state == "firing":
        alert.state = "acknowledged"
        alert.acknowledged_at = utcnow()
        alert.acknowledged_by = actor
        session.add(alert)
        record_audit(
            session,
            actor=actor,
            action="alert.acknowledge",
            target=f"alert:{alert_id}",
            org_id=alert.org_id,
            detail={"kind": alert.kind},
        )
        delivery.enqueue(session, alert, "acknowledged")
    return alert


def _resolve(session: Session, alert: Alert, actor: str, resolution: str) -> None:
    alert.state = "resolved"
    alert.resolved_at = utcnow()
    alert.resolved_by = actor
    alert.resolution = resolution[:500]
    session.add(alert)
    record_audit(
        session,
        actor=actor,
        action="alert.resolve",
        target=f"alert:{alert.id}",
        org_id=alert.org_id,
        detail={"kind": alert.kind, "resolution": resolution[:500]},
    )
    delivery.enqueue(session, alert, "resolved")


def resolve_alert(
    session: Session, org_id: str, alert_id: int, actor: str, resolution: str | None = None
) -> Alert:
    """Resolve by hand (idempotent: resolving a resolved alert changes nothing)."""
    alert = require_alert(session, org_id, alert_id)
    if alert.state != "resolved":
        _resolve(session, alert, actor, resolution or f"resolved by {actor}")
    return alert


def resolve_subject(
    session: Session,
    *,
    subject: str | None = None,
    agent_id: str | None = None,
    kinds: tuple[str, ...],
    resolution: str,
    actor: str = "system",
) -> list[Alert]:
    """Resolve the open alerts of these kinds about a subject (or an agent): their condition
    cleared. Returns the alerts it resolved."""
    if subject is None and agent_id is None:
        raise ValueError("name a subject or an agent")
    resolved = repo.open_alerts_about(session, kinds, subject=subject, agent_id=agent_id)
    for alert in resolved:
        _resolve(session, alert, actor, resolution)
    return resolved


def public(alert: Alert) -> AlertPublic:
    return AlertPublic.model_validate(alert, from_attributes=True)
