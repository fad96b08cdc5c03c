"""Alert rules (per agent), alert channels (per organization) and one alert with its deliveries.

Rules decide which alerts notify (docs/alerts.md); channels are where they go: a signed generic
webhook or a Slack incoming webhook. A channel's URL must pass the egress policy when it is
created (422 naming the refused address class) and again each time it is sent to.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from starlette.concurrency import run_in_threadpool

from api.deps import PrincipalDep, SessionDep, StateDep, TenancyDep, auth
from connectors.alert_channels import send
from connectors.egress import acheck_url
from core.db import INT_COLUMN_MAX
from core.errors import InvalidInputError
from core.monitoring import delivery, rules
from core.monitoring.rules import (
    AlertChannelCreate,
    AlertChannelCreated,
    AlertChannelPublic,
    AlertDetail,
    AlertRuleCreate,
    AlertRulePublic,
    ChannelTestResult,
)
from core.tenancy.service import Principal

router = APIRouter(prefix="/v1", tags=["alerts"])

RuleId = Annotated[int, Path(ge=1, le=INT_COLUMN_MAX, description="Alert rule id")]
ChannelId = Annotated[int, Path(ge=1, le=INT_COLUMN_MAX, description="Alert channel id")]
AlertId = Annotated[int, Path(ge=1, le=INT_COLUMN_MAX, description="Alert id")]
OrgQuery = Annotated[str | None, Query(description="The organization (the operator must name one)")]


def _org(principal: Principal, org_id: str | None, scope: str) -> str:
    org = org_id or principal.org_id
    if org is None:
        raise InvalidInputError("the operator must name an org: add ?org_id=<org>")
    principal.require(scope, org)
    return org


# -- rules ------------------------------------------------------------------------------------


@router.get(
    "/agents/{agent_id}/alert-rules",
    response_model=list[AlertRulePublic],
    openapi_extra=auth("viewer"),
)
def list_rules(
    agent_id: str, principal: PrincipalDep, tenancy: TenancyDep, session: SessionDep
) -> list[AlertRulePublic]:
    """The agent's rules, oldest first. None: every alert of severity warning or worse goes
    to every channel of the organization."""
    agent = tenancy.require_agent(agent_id)
    principal.require("viewer", agent.org_id)
    return [rules.rule_public(r) for r in rules.list_rules(session, agent_id)]


@router.post(
    "/agents/{agent_id}/alert-rules",
    response_model=AlertRulePublic,
    status_code=201,
    openapi_extra=auth("release"),
)
def create_rule(
    agent_id: str,
    body: AlertRuleCreate,
    principal: PrincipalDep,
    tenancy: TenancyDep,
    session: SessionDep,
) -> AlertRulePublic:
    """Add a rule (audited ``alert_rule.create``)."""
    agent = tenancy.require_agent(agent_id)
    principal.require("release", agent.org_id)
    rule = rules.create_rule(session, agent.org_id, agent_id, body, principal.actor)
    return rules.rule_public(rule)


@router.get(
    "/agents/{agent_id}/alert-rules/{rule_id}",
    response_model=AlertRulePublic,
    openapi_extra=auth("viewer"),
)
def get_rule(
    agent_id: str,
    rule_id: RuleId,
    principal: PrincipalDep,
    tenancy: TenancyDep,
    session: SessionDep,
) -> AlertRulePublic:
    agent = tenancy.require_agent(agent_id)
    principal.require("viewer", agent.org_id)
    return rules.rule_public(rules.require_rule(session, agent_id, rule_id))


@router.put(
    "/agents/{agent_id}/alert-rules/{rule_id}",
    response_model=AlertRulePublic,
    openapi_extra=auth("release"),
)
def update_rule(
    agent_id: str,
    rule_id: RuleId,
    body: AlertRuleCreate,
    principal: PrincipalDep,
    tenancy: TenancyDep,
    session: SessionDep,
) -> AlertRulePublic:
    """Replace the rule's definition (audited ``alert_rule.update``)."""
    agent = tenancy.require_agent(agent_id)
    principal.require("release", agent.org_id)
    return rules.rule_public(rules.update_rule(session, agent_id, rule_id, body, principal.actor))


@router.delete(
    "/agents/{agent_id}/alert-rules/{rule_id}",
    response_model=AlertRulePublic,
    openapi_extra=auth("release"),
)
def delete_rule(
    agent_id: str,
    rule_id: RuleId,
    principal: PrincipalDep,
    tenancy: TenancyDep,
    session: SessionDep,
) -> AlertRulePublic:
    """Remove the rule (audited ``alert_rule.delete``); answers the rule removed."""
    agent = tenancy.require_agent(agent_id)
    principal.require("release", agent.org_id)
    return rules.rule_public(rules.delete_rule(session, agent_id, rule_id, principal.actor))


# -- channels ---------------------------------------------------------------------------------


@router.get(
    "/alert-channels", response_model=list[AlertChannelPublic], openapi_extra=auth("viewer")
)
def list_channels(
    principal: PrincipalDep, session: SessionDep, org_id: OrgQuery = None
) -> list[AlertChannelPublic]:
    """The organization's channels (never their URL or secret: ``url_host`` only)."""
    org = _org(principal, org_id, "viewer")
    return [rules.channel_public(c) for c in rules.list_channels(session, org)]


@router.post(
    "/alert-channels",
    response_model=AlertChannelCreated,
    status_code=201,
    openapi_extra=auth("admin"),
)
async def create_channel(
    body: AlertChannelCreate,
    principal: PrincipalDep,
    session: SessionDep,
    state: StateDep,
    org_id: OrgQuery = None,
) -> AlertChannelCreated:
    """Add a channel. The URL must pass the egress policy (422 ``EgressDeniedError`` names the
    address class otherwise); a webhook's generated signing secret is shown once."""
    org = _org(principal, org_id, "admin")
    await acheck_url(body.url, state.egress)
    secret_key = state.settings.secret_key.get_secret_value()
    return await run_in_threadpool(
        rules.create_channel, session, org, body, principal.actor, secret_key
    )


@router.get(
    "/alert-channels/{channel_id}",
    response_model=AlertChannelPublic,
    openapi_extra=auth("viewer"),
)
def get_channel(
    channel_id: ChannelId, principal: PrincipalDep, session: SessionDep, org_id: OrgQuery = None
) -> AlertChannelPublic:
    org = _org(principal, org_id, "viewer")
    return rules.channel_public(rules.require_channel(session, org, channel_id))


@router.delete(
    "/alert-channels/{channel_id}", response_model=AlertChannelPublic, openapi_extra=auth("admin")
)
def delete_channel(
    channel_id: ChannelId, principal: PrincipalDep, session: SessionDep, org_id: OrgQuery = None
) -> AlertChannelPublic:
    """Remove the channel (audited ``alert_channel.delete``); answers the channel removed. Its
    deliveries not yet sent end ``failed``."""
    org = _org(principal, org_id, "admin")
    return rules.channel_public(rules.delete_channel(session, org, channel_id, principal.actor))


@router.post(
    "/alert-channels/{channel_id}/test",
    response_model=ChannelTestResult,
    openapi_extra=auth("admin"),
)
async def test_channel(
    channel_id: ChannelId,
    principal: PrincipalDep,
    session: SessionDep,
    state: StateDep,
    org_id: OrgQuery = None,
) -> ChannelTestResult:
    """Send a test notification now (signed like a real one, ``type: alert.test``) and answer
    what the receiver said; nothing is stored or retried."""
    org = _org(principal, org_id, "admin")
    secret_key = state.settings.secret_key.get_secret_value()
    channel, url, secret = await run_in_threadpool(
        rules.channel_target, session, org, channel_id, secret_key
    )
    key = f"alert-test-{channel_id}-{delivery.new_signing_secret()[6:18]}"
    data = {
        "id": key,
        "type": "alert.test",
        "alert": {
            "id": 0,
            "org_id": org,
            "agent_id": None,
            "kind": "test",
            "severity": "info",
            "state": "firing",
            "subject": None,
            "message": f"Test notification for alert channel '{channel.name}'",
            "detail": {},
            "created_at": None,
            "acknowledged_by": None,
            "resolved_by": None,
            "resolution": None,
        },
    }
    result = await run_in_threadpool(
        send,
        state.egress,
        kind=channel.kind,
        url=url,
        secret=secret,
        data=data,
        idempotency_key=key,
    )
    return ChannelTestResult(
        channel_id=channel_id, ok=result.ok, status_code=result.status_code, error=result.error
    )


# -- one alert with its deliveries ------------------------------------------------------------


@router.get("/alerts/{alert_id}", response_model=AlertDetail, openapi_extra=auth("viewer"))
def get_alert(
    alert_id: AlertId, principal: PrincipalDep, session: SessionDep, org_id: OrgQuery = None
) -> AlertDetail:
    """The alert and its deliveries: per channel and state change, ``pending``, ``sent``,
    ``failed`` (with ``last_error``) or ``suppressed`` (cool-down)."""
    org = _org(principal, org_id, "viewer")
    return rules.alert_detail(session, org, alert_id)
