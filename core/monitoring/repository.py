"""Monitoring queries: call scores and alerts. Returns models or None; never commits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from core.monitoring.models import Alert, CallScore

OPEN_STATES = ("firing", "acknowledged")


def get_score(session: Session, agent_id: str, platform: str, call_id: str) -> CallScore | None:
    return session.exec(
        select(CallScore).where(
            CallScore.agent_id == agent_id,
            CallScore.platform == platform,
            CallScore.platform_call_id == call_id,
        )
    ).first()


def get_alert(session: Session, alert_id: int) -> Alert | None:
    return session.get(Alert, alert_id)


def open_alert(session: Session, org_id: str, subject: str, kind: str) -> Alert | None:
    """The open alert of this kind about this subject, if any."""
    stmt = select(Alert).where(
        Alert.org_id == org_id,
        Alert.subject == subject,
        Alert.kind == kind,
        col(Alert.state).in_(OPEN_STATES),
    )
    return session.exec(stmt).first()


@dataclass(frozen=True)
class AlertFilter:
    org_id: str
    agent_id: str | None = None
    kind: str | None = None
    state: str | None = None
    open_only: bool = False
    limit: int = 100


def list_alerts(session: Session, f: AlertFilter) -> list[Alert]:
    """Newest first."""
    stmt = select(Alert).where(Alert.org_id == f.org_id)
    if f.agent_id is not None:
        stmt = stmt.where(Alert.agent_id == f.agent_id)
    if f.kind is not None:
        stmt = stmt.where(Alert.kind == f.kind)
    if f.state is not None:
        stmt = stmt.where(Alert.state == f.state)
    if f.open_only:
        stmt = stmt.where(col(Alert.state).in_(OPEN_STATES))
    return list(session.exec(stmt.order_by(col(Alert.id).desc()).limit(f.limit)))


def open_alerts_about(
    session: Session, kinds: tuple[str, ...], *, subject: str | None, agent_id: str | None
) -> list[Alert]:
    """Open alerts of these kinds about a subject and/or an agent."""
    stmt = select(Alert).where(col(Alert.kind).in_(kinds), col(Alert.state).in_(OPEN_STATES))
    if subject is not None:
        stmt = stmt.where(Alert.subject == subject)
    if agent_id is not None:
        stmt = stmt.where(Alert.agent_id == agent_id)
    return list(session.exec(stmt))


def open_alerts_of_kind(
    session: Session, agent_id: str, kind_prefix: str, org_id: str | None = None, limit: int = 50
) -> list[Alert]:
    """An agent's open alerts whose kind starts with ``kind_prefix``, newest first."""
    stmt = (
        select(Alert)
        .where(
            Alert.agent_id == agent_id,
            col(Alert.kind).startswith(kind_prefix),
            col(Alert.state).in_(OPEN_STATES),
        )
        .order_by(col(Alert.id).desc())
        .limit(limit)
    )
    if org_id is not None:
        stmt = stmt.where(Alert.org_id == org_id)
    return list(session.exec(stmt))


def score_rows(
    session: Session,
    agent_id: str,
    since: datetime,
    version: str | None = None,
    limit: int = 100_000,
) -> list[tuple[str | None, float, dict[str, Any]]]:
    """(prompt version, score, metrics) of the agent's calls scored since ``since``."""
    stmt = select(CallScore.prompt_version, CallScore.score, CallScore.metrics).where(
        CallScore.agent_id == agent_id, col(CallScore.created_at) >= since
    )
    if version is not None:
        stmt = stmt.where(CallScore.prompt_version == version)
    stmt = stmt.order_by(col(CallScore.id).desc()).limit(limit)
    return [(v, float(s), dict(m or {})) for v, s, m in session.exec(stmt)]
