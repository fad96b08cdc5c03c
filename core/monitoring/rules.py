"""Alert rules (per agent) and alert channels (per organization): schemas and management.

The URL of a channel is checked against the egress policy by the caller (the API) before it
gets here; this module stores it encrypted, with the signing secret (``SecretBox``), and never
returns either after creation except the signing secret, once, when Backline generated it.
Every change is audited. See docs/alerts.md.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, model_validator
from sqlmodel import Session, col, select

from core.audit.service import record_audit
from core.audit.targets import agent_target
from core.db import INT_COLUMN_MAX
from core.errors import InvalidInputError, NotFoundError
from core.monitoring import delivery
from core.monitoring.alerts import AlertPublic, public, require_alert
from core.monitoring.models import AlertChannel, AlertDelivery, AlertRule
from core.tenancy.security import SecretBox

RuleKind = Literal["single", "trend", "threshold"]
Severity = Literal["info", "warning", "critical"]
Metric = Literal["score_mean", "score_min"]
Op = Literal["<", "<=", ">", ">="]
ChannelKind = Literal["webhook", "slack"]
ChannelId = Annotated[int, Field(strict=True, ge=1, le=INT_COLUMN_MAX)]
TREND_DEFAULT_KINDS = ["drift_*"]


class AlertRuleCreate(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    kind: RuleKind = Field(description="single, trend or threshold")
    alert_kinds: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        default_factory=list,
        max_length=50,
        description="Alert kinds it matches (single, trend); 'drift_*' matches a prefix; "
        "empty: every kind (a trend rule defaults to drift_*)",
    )
    min_severity: Severity = "warning"
    metric: Metric | None = Field(default=None, description="threshold: score_mean or score_min")
    op: Op | None = Field(default=None, description="threshold: <, <=, > or >=")
    value: float | None = Field(default=None, strict=True, description="threshold: the bound")
    window_calls: int | None = Field(
        default=None, strict=True, ge=1, le=1000, description="threshold: the last N scored calls"
    )
    cooldown_minutes: int = Field(default=delivery.DEFAULT_COOLDOWN_MINUTES, strict=True, ge=0,
                                  le=10080)  # fmt: skip
    channel_ids: list[ChannelId] = Field(
        default_factory=list, max_length=50, description="Empty: every channel of the org"
    )
    enabled: bool = True

    @model_validator(mode="after")
    def _complete(self) -> AlertRuleCreate:
        if self.kind == "threshold":
            missing = [
                n for n in ("metric", "op", "value", "window_calls") if getattr(self, n) is None
            ]
            if missing:
                raise ValueError(f"a threshold rule needs {', '.join(missing)}")
        elif any(getattr(self, n) is not None for n in ("metric", "op", "value", "window_calls")):
            raise ValueError("metric, op, value and window_calls belong to threshold rules only")
        if self.kind == "trend" and not self.alert_kinds:
            self.alert_kinds = list(TREND_DEFAULT_KINDS)
        return self


class AlertRulePublic(BaseModel):
    id: int
    org_id: str
    agent_id: str
    name: str
    kind: str
    alert_kinds: list[str]
    min_severity: str
    metric: str | None
    op: str | None
    value: float | None
    window_calls: int | None
    cooldown_minutes: int
    channel_ids: list[int]
    enabled: bool
    created_at: datetime
    created_by: str


class AlertChannelCreate(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    kind: ChannelKind = Field(description="webhook (signed JSON) or slack (incoming webhook)")
    url: str = Field(min_length=1, max_length=2000, description="http(s) URL it posts to")
    secret: str | None = Field(
        default=None,
        min_length=16,
        max_length=200,
        description="webhook: the signing secret (default: Backline generates one, shown once)",
    )

    @model_validator(mode="after")
    def _kind_fields(self) -> AlertChannelCreate:
        if self.kind == "slack" and self.secret is not None:
            raise ValueError("a slack channel has no signing secret (Slack does not verify one)")
        return self


class AlertChannelPublic(BaseModel):
    id: int
    org_id: str
    name: str
    kind: str
    url_host: str
    signed: bool
    enabled: bool
    created_at: datetime
    created_by: str


class AlertChannelCreated(AlertChannelPublic):
    signing_secret: str | None = Field(
        default=None, description="Shown once, when Backline generated it; keep it"
    )


class AlertDeliveryPublic(BaseModel):
    id: int
    alert_id: int
    channel_id: int
    rule_id: int | None
    event: str
    status: str
    attempts: int
    last_error: str | None
    response_status: int | None
    idempotency_key: str
    created_at: datetime
    sent_at: datetime | None


class AlertDetail(AlertPublic):
    deliveries: list[AlertDeliveryPublic]


class ChannelTestResult(BaseModel):
    channel_id: int
    ok: bool
    status_code: int | None
    error: str | None


# -- rules ------------------------------------------------------------------------------------


def rule_public(rule: AlertRule) -> AlertRulePublic:
    return AlertRulePublic.model_validate(rule, from_attributes=True)


def _check_channels(session: Session, org_id: str, ids: list[int]) -> None:
    known = {c.id for c in list_channels(session, org_id)}
    unknown = [i for i in ids if i not in known]
    if unknown:
        raise InvalidInputError(
            f"organization '{org_id}' has no alert channel {unknown[0]}; list them with "
            "`backline alerts channels list`"
        )


def create_rule(
    session: Session, org_id: str, agent_id: str, body: AlertRuleCreate, actor: str
) -> AlertRule:
    _check_channels(session, org_id, body.channel_ids)
    rule = AlertRule(org_id=org_id, agent_id=agent_id, created_by=actor, **body.model_dump())
    session.add(rule)
    session.flush()
    record_audit(
        session,
        actor=actor,
        action="alert_rule.create",
        target=agent_target(agent_id),
        org_id=org_id,
        detail={"rule_id": rule.id, "kind": rule.kind, "name": rule.name},
    )
    return rule


def list_rules(session: Session, agent_id: str) -> list[AlertRule]:
    return delivery.agent_rules(session, agent_id)


def require_rule(session: Session, agent_id: str, rule_id: int) -> AlertRule:
    rule = session.get(AlertRule, rule_id)
    if rule is None or rule.agent_id != agent_id:
        raise NotFoundError(
            f"agent '{agent_id}' has no alert rule {rule_id}; list them with "
            f"`backline alerts rules list --agent {agent_id}`"
        )
    return rule


def update_rule(
    session: Session, agent_id: str, rule_id: int, body: AlertRuleCreate, actor: str
) -> AlertRule:
    rule = require_rule(session, agent_id, rule_id)
    _check_channels(session, rule.org_id, body.channel_ids)
    for name, value in body.model_dump().items():
        setattr(rule, name, value)
    session.add(rule)
    record_audit(
        session,
        actor=actor,
        action="alert_rule.update",
        target=agent_target(agent_id),
        org_id=rule.org_id,
        detail={"rule_id": rule_id, "kind": rule.kind, "name": rule.name},
    )
    return rule


def delete_rule(session: Session, agent_id: str, rule_id: int, actor: str) -> AlertRule:
    rule = require_rule(session, agent_id, rule_id)
    session.delete(rule)
    record_audit(
        session,
        actor=actor,
        action="alert_rule.delete",
        target=agent_target(agent_id),
        org_id=rule.org_id,
        detail={"rule_id": rule_id, "name": rule.name},
    )
    return rule


# -- channels ---------------------------------------------------------------------------------


def channel_public(channel: AlertChannel) -> AlertChannelPublic:
    return AlertChannelPublic(
        id=channel.id or 0,
        org_id=channel.org_id,
        name=channel.name,
        kind=channel.kind,
        url_host=channel.url_host,
        signed=channel.secret_encrypted is not None,
        enabled=channel.enabled,
        created_at=channel.created_at,
        created_by=channel.created_by,
    )


def list_channels(session: Session, org_id: str) -> list[AlertChannel]:
    stmt = select(AlertChannel).where(AlertChannel.org_id == org_id)
    return list(session.exec(stmt.order_by(col(AlertChannel.id))))


def require_channel(session: Session, org_id: str, channel_id: int) -> AlertChannel:
    channel = session.get(AlertChannel, channel_id)
    if channel is None or channel.org_id != org_id:
        raise NotFoundError(
            f"organization '{org_id}' has no alert channel {channel_id}; list them with "
            "`backline alerts channels list`"
        )
    return channel


def create_channel(
    session: Session, org_id: str, body: AlertChannelCreate, actor: str, secret_key: str
) -> AlertChannelCreated:
    """Store the channel (URL and secret encrypted). The URL was egress-checked by the caller."""
    host = urlsplit(body.url).hostname or ""
    box = SecretBox(secret_key)
    generated = None
    secret = body.secret
    if body.kind == "webhook" and secret is None:
        secret = generated = delivery.new_signing_secret()
    channel = AlertChannel(
        org_id=org_id,
        name=body.name,
        kind=body.kind,
        url_encrypted=box.encrypt(body.url),
        url_host=host[:255],
        secret_encrypted=box.encrypt(secret) if secret else None,
        created_by=actor,
    )
    session.add(channel)
    session.flush()
    record_audit(
        session,
        actor=actor,
        action="alert_channel.create",
        target=f"org:{org_id}",
        org_id=org_id,
        detail={"channel_id": channel.id, "kind": channel.kind, "host": channel.url_host},
    )
    return AlertChannelCreated(**channel_public(channel).model_dump(), signing_secret=generated)


def delete_channel(session: Session, org_id: str, channel_id: int, actor: str) -> AlertChannel:
    channel = require_channel(session, org_id, channel_id)
    session.delete(channel)
    record_audit(
        session,
        actor=actor,
        action="alert_channel.delete",
        target=f"org:{org_id}",
        org_id=org_id,
        detail={"channel_id": channel_id, "kind": channel.kind},
    )
    return channel


def channel_target(
    session: Session, org_id: str, channel_id: int, secret_key: str
) -> tuple[AlertChannel, str, str | None]:
    """The channel with its decrypted URL and signing secret (for sending only)."""
    channel = require_channel(session, org_id, channel_id)
    box = SecretBox(secret_key)
    secret = box.decrypt(channel.secret_encrypted) if channel.secret_encrypted else None
    return channel, box.decrypt(channel.url_encrypted), secret


# -- alerts with their deliveries ---------------------------------------------------------------


def delivery_public(row: AlertDelivery) -> AlertDeliveryPublic:
    return AlertDeliveryPublic.model_validate(row, from_attributes=True)


def alert_detail(session: Session, org_id: str, alert_id: int) -> AlertDetail:
    alert = require_alert(session, org_id, alert_id)
    rows = delivery.deliveries_of(session, alert_id)
    return AlertDetail(**public(alert).model_dump(), deliveries=[delivery_public(r) for r in rows])
