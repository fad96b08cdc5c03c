"""Alert delivery: which channels an alert state change notifies (rules, the default route,
cool-down), the outbox rows that carry it, and the signed bodies that leave.

Every alert state change (``firing`` when raised, ``acknowledged``, ``resolved``) goes through
``enqueue``, in the caller's transaction: the outbox row is committed with the alert or not at
all. ``AlertDeliveryWorkflow`` sends each row, retrying; ``idempotency_key`` (one per alert,
channel and state change) rides along every attempt.

Routing: an agent with enabled rules notifies through the rules that match the alert; an agent
with none (and an alert about no agent) notifies every enabled channel of its organization when
the alert is ``warning`` or worse (``DEFAULT_MIN_SEVERITY``). Cool-down: a new alert about the
same subject that fires within a rule's ``cooldown_minutes`` of the last notified one is
recorded as ``suppressed`` (so are its later state changes), instead of notifying again.

Pure apart from the session: no network here (``connectors.alert_channels`` sends).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select

from core.db import utcnow
from core.monitoring.models import Alert, AlertChannel, AlertDelivery, AlertRule

SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}
DEFAULT_MIN_SEVERITY = "warning"
DEFAULT_COOLDOWN_MINUTES = 15
EVENTS = ("firing", "acknowledged", "resolved")
SIGNATURE_HEADER = "Backline-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
SIGNATURE_TOLERANCE_S = 300


@dataclass(frozen=True)
class Route:
    channel_id: int
    rule_id: int | None
    cooldown_minutes: int


def kind_matches(patterns: list[str], kind: str) -> bool:
    """Empty: any kind; ``drift_*`` matches by prefix; otherwise an exact kind."""
    if not patterns:
        return True
    return any(kind.startswith(p[:-1]) if p.endswith("*") else kind == p for p in patterns if p)


def rule_matches(rule: AlertRule, alert: Alert) -> bool:
    if not rule.enabled:
        return False
    if rule.kind == "threshold":  # a threshold rule notifies the alerts it raised itself
        return alert.subject == rule_subject(rule.id or 0)
    if SEVERITY_RANK.get(alert.severity, 0) < SEVERITY_RANK.get(rule.min_severity, 1):
        return False
    return kind_matches(rule.alert_kinds, alert.kind)


def rule_subject(rule_id: int) -> str:
    return f"alert_rule:{rule_id}"


def org_channels(session: Session, org_id: str) -> list[AlertChannel]:
    stmt = select(AlertChannel).where(AlertChannel.org_id == org_id, col(AlertChannel.enabled))
    return list(session.exec(stmt.order_by(col(AlertChannel.id))))


def agent_rules(session: Session, agent_id: str) -> list[AlertRule]:
    stmt = select(AlertRule).where(AlertRule.agent_id == agent_id)
    return list(session.exec(stmt.order_by(col(AlertRule.id))))


def routes(session: Session, alert: Alert) -> list[Route]:
    """The channels this alert notifies, one route per channel (the first matching rule's)."""
    channels = org_channels(session, alert.org_id)
    if not channels:
        return []
    enabled = (
        [r for r in agent_rules(session, alert.agent_id) if r.enabled] if alert.agent_id else []
    )
    if not enabled:
        if SEVERITY_RANK.get(alert.severity, 0) < SEVERITY_RANK[DEFAULT_MIN_SEVERITY]:
            return []
        return [Route(c.id or 0, None, DEFAULT_COOLDOWN_MINUTES) for c in channels]
    found: dict[int, Route] = {}
    ids = {c.id for c in channels}
    for rule in enabled:
        if not rule_matches(rule, alert):
            continue
        for channel_id in rule.channel_ids or [c.id or 0 for c in channels]:
            if channel_id in ids and channel_id not in found:
                found[channel_id] = Route(channel_id, rule.id, rule.cooldown_minutes)
    return list(found.values())


def cooldown_key(alert: Alert) -> str:
    return (alert.subject or f"kind:{alert.kind}:{alert.agent_id or ''}")[:200]


def _last_firing(session: Session, org_id: str, subject: str, channel_id: int) -> datetime | None:
    stmt = (
        select(AlertDelivery.created_at)
        .where(
            AlertDelivery.org_id == org_id,
            AlertDelivery.subject == subject,
            AlertDelivery.channel_id == channel_id,
            AlertDelivery.event == "firing",
            AlertDelivery.status != "suppressed",
        )
        .order_by(col(AlertDelivery.created_at).desc())
        .limit(1)
    )
    return session.exec(stmt).first()


def payload(alert: Alert, event: str, key: str) -> dict[str, Any]:
    """The JSON body a webhook receives (docs/alerts.md); Slack's is built from it."""
    return {
        "id": key,
        "type": f"alert.{event}",
        "alert": {
            "id": alert.id,
            "org_id": alert.org_id,
            "agent_id": alert.agent_id,
            "kind": alert.kind,
            "severity": alert.severity,
            "state": alert.state,
            "subject": alert.subject,
            "message": alert.message,
            "detail": alert.detail,
            "created_at": alert.created_at.isoformat() if alert.created_at else None,
            "acknowledged_by": alert.acknowledged_by,
            "resolved_by": alert.resolved_by,
            "resolution": alert.resolution,
        },
    }


def idempotency_key(alert_id: int, channel_id: int, event: str) -> str:
    return f"alert-{alert_id}-{channel_id}-{event}"


def enqueue(session: Session, alert: Alert, event: str, now: datetime | None = None) -> int:
    """Write the outbox rows of one alert state change (in the caller's transaction); returns
    how many will be sent. Idempotent per (alert, channel, event)."""
    if event not in EVENTS:
        raise ValueError(f"unknown alert event '{event}'")
    found = routes(session, alert)
    if not found:
        return 0
    if alert.id is None:
        session.flush()
    assert alert.id is not None
    now = now or utcnow()
    subject = cooldown_key(alert)
    queued = 0
    for route in found:
        key = idempotency_key(alert.id, route.channel_id, event)
        if session.exec(select(AlertDelivery).where(AlertDelivery.idempotency_key == key)).first():
            continue
        status = "pending"
        if event == "firing":
            last = _last_firing(session, alert.org_id, subject, route.channel_id)
            if last is not None and now - last < timedelta(minutes=route.cooldown_minutes):
                status = "suppressed"
        else:  # a state change of an alert whose firing was not notified stays quiet
            fired = session.exec(
                select(AlertDelivery.status).where(
                    AlertDelivery.idempotency_key
                    == idempotency_key(alert.id, route.channel_id, "firing")
                )
            ).first()
            if fired is None or fired == "suppressed":
                status = "suppressed"
        session.add(
            AlertDelivery(
                org_id=alert.org_id,
                alert_id=alert.id,
                channel_id=route.channel_id,
                rule_id=route.rule_id,
                event=event,
                subject=subject,
                idempotency_key=key,
                status=status,
                payload=payload(alert, event, key),
                created_at=now,
            )
        )
        queued += status == "pending"
    return queued


def deliveries_of(session: Session, alert_id: int) -> list[AlertDelivery]:
    stmt = select(AlertDelivery).where(AlertDelivery.alert_id == alert_id)
    return list(session.exec(stmt.order_by(col(AlertDelivery.id))))


def undispatched(session: Session, limit: int = 100) -> list[AlertDelivery]:
    stmt = (
        select(AlertDelivery)
        .where(AlertDelivery.status == "pending", col(AlertDelivery.dispatched_at).is_(None))
        .order_by(col(AlertDelivery.id))
        .limit(limit)
    )
    return list(session.exec(stmt))


# -- bodies and signatures ------------------------------------------------------------------


def new_signing_secret() -> str:
    return f"whsec_{secrets.token_urlsafe(32)}"


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """``Backline-Signature`` value: ``t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify_signature(
    secret: str, header: str, body: bytes, now: int, tolerance_s: int = SIGNATURE_TOLERANCE_S
) -> bool:
    """What a receiver does (docs/alerts.md has the same check, standalone)."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        timestamp = int(parts.get("t", ""))
    except ValueError:
        return False
    if abs(now - timestamp) > tolerance_s:
        return False
    expected = signature(secret, timestamp, body).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))


def webhook_body(data: dict[str, Any]) -> bytes:
    return json.dumps(data, separators=(",", ":"), sort_keys=True).encode()


_EMOJI = {"critical": ":rotating_light:", "warning": ":warning:", "info": ":information_source:"}


def slack_body(data: dict[str, Any]) -> bytes:
    """Slack's incoming-webhook message: ``text`` (the notification fallback) and ``blocks``."""
    alert = data["alert"]
    event = data["type"].removeprefix("alert.")
    icon = ":white_check_mark:" if event == "resolved" else _EMOJI.get(alert["severity"], "")
    title = f"{icon} [{alert['severity']}] {alert['kind']} {event}".strip()
    context = [f"alert {alert['id']}", f"org {alert['org_id']}"]
    if alert.get("agent_id"):
        context.append(f"agent {alert['agent_id']}")
    if event == "acknowledged" and alert.get("acknowledged_by"):
        context.append(f"acknowledged by {alert['acknowledged_by']}")
    if event == "resolved" and alert.get("resolution"):
        context.append(f"resolution: {alert['resolution']}")
    message = str(alert["message"])[:2900]
    body = {
        "text": f"{title}: {message}"[:3000],
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": title[:150]}},
            {"type": "section", "text": {"type": "mrkdwn", "text": message}},
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": " · ".join(context)[:3000]}],
            },
        ],
    }
    return json.dumps(body).encode()


# -- the sender's bookkeeping (one short transaction each) ---------------------------------


def begin_attempt(session: Session, delivery_id: int) -> AlertDelivery | None:
    """Count one attempt of a pending delivery; None when there is nothing left to send."""
    row = session.get(AlertDelivery, delivery_id)
    if row is None or row.status != "pending":
        return None
    row.attempts += 1
    session.add(row)
    return row


def record_sent(session: Session, delivery_id: int, status_code: int) -> None:
    row = session.get(AlertDelivery, delivery_id)
    if row is not None:
        row.status = "sent"
        row.sent_at = utcnow()
        row.response_status = status_code
        row.last_error = None
        session.add(row)


def record_error(
    session: Session, delivery_id: int, error: str, status_code: int | None, *, final: bool
) -> None:
    row = session.get(AlertDelivery, delivery_id)
    if row is not None:
        row.last_error = error[:500]
        if status_code is not None:
            row.response_status = status_code
        if final:
            row.status = "failed"
        session.add(row)


def mark_dispatched(session: Session, delivery_id: int, now: datetime) -> None:
    row = session.get(AlertDelivery, delivery_id)
    if row is not None and row.dispatched_at is None:
        row.dispatched_at = now
        session.add(row)
