"""Alerts of an organization: list (viewer), acknowledge and resolve (release).

Alerts are raised by the system (a rollout rolled back or paused, a knowledge source failing or
past its maximum staleness) and resolve by themselves when their condition clears; these routes
let a human take one (``ack``) or close it (``resolve``). Every change is audited.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from api.deps import PrincipalDep, SessionDep, auth
from core.db import INT_COLUMN_MAX
from core.monitoring import alerts
from core.monitoring.alerts import AlertPublic
from core.monitoring.repository import AlertFilter

router = APIRouter(prefix="/v1/orgs/{org_id}/alerts", tags=["alerts"])


class AlertResolve(BaseModel):
    note: str | None = Field(default=None, max_length=500, description="Why it is resolved")


AlertId = Annotated[int, Path(ge=1, le=INT_COLUMN_MAX, description="Alert id")]


@router.get("", response_model=list[AlertPublic], openapi_extra=auth("viewer"))
def list_alerts(
    org_id: str,
    principal: PrincipalDep,
    session: SessionDep,
    agent_id: Annotated[str | None, Query(description="Only this agent")] = None,
    kind: Annotated[str | None, Query(description="e.g. knowledge_source_failing")] = None,
    state: Annotated[str | None, Query(description="firing, acknowledged or resolved")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[AlertPublic]:
    """Newest first."""
    principal.require("viewer", org_id)
    f = AlertFilter(org_id=org_id, agent_id=agent_id, kind=kind, state=state, limit=limit)
    found = alerts.list_alerts(session, f)
    return [alerts.public(a) for a in found]


@router.post("/{alert_id}/ack", response_model=AlertPublic, openapi_extra=auth("release"))
def acknowledge(
    org_id: str, alert_id: AlertId, principal: PrincipalDep, session: SessionDep
) -> AlertPublic:
    """Take the alert: it stays open (acknowledged) until resolved."""
    principal.require("release", org_id)
    return alerts.public(alerts.acknowledge_alert(session, org_id, alert_id, principal.actor))


@router.post("/{alert_id}/resolve", response_model=AlertPublic, openapi_extra=auth("release"))
def resolve(
    org_id: str,
    alert_id: AlertId,
    principal: PrincipalDep,
    session: SessionDep,
    body: AlertResolve | None = None,
) -> AlertPublic:
    """Close the alert (idempotent)."""
    principal.require("release", org_id)
    note = body.note if body is not None else None
    return alerts.public(alerts.resolve_alert(session, org_id, alert_id, principal.actor, note))
