"""Calls, their traces, a regression scenario made from a call, and rejected webhooks
(read-only)."""

from __future__ import annotations

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from api.deps import PrincipalDep, TenancyDep, auth
from core.calls import repository as repo
from core.calls.schemas import CallDetail, CallPublic, RejectedWebhookPublic
from core.calls.service import call_detail
from core.errors import InvalidInputError, NotFoundError
from core.monitoring.service import MonitoringService
from evals.from_call import NoCallerTurnsError, scenario_from_call

router = APIRouter(prefix="/v1", tags=["calls"])


@router.get("/calls", response_model=list[CallPublic], openapi_extra=auth("viewer"))
def list_calls(
    principal: PrincipalDep,
    tenancy: TenancyDep,
    org_id: str | None = None,
    agent_id: str | None = None,
    limit: int = Query(default=50, ge=1, le=500),
) -> list[CallPublic]:
    org = org_id or principal.org_id
    if org is None:
        raise InvalidInputError(
            "the operator token must name an organization: `backline calls list --org-id <org>` "
            "(API: the org_id query parameter)"
        )
    principal.require("viewer", org)
    return [
        CallPublic.model_validate(c, from_attributes=True)
        for c in repo.list_calls(tenancy.session, org, agent_id, limit)
    ]


@router.get(
    "/calls/{agent_id}/{platform}/{call_id}",
    response_model=CallDetail,
    openapi_extra=auth("viewer"),
)
def get_call(
    agent_id: str, platform: str, call_id: str, principal: PrincipalDep, tenancy: TenancyDep
) -> CallDetail:
    agent = tenancy.require_agent(agent_id)
    principal.require("viewer", agent.org_id)
    call = repo.get_call(tenancy.session, agent_id, platform, call_id)
    if call is None:
        raise NotFoundError(f"no {platform} call '{call_id}' for agent '{agent_id}'")
    score = MonitoringService(tenancy.session).get_score(agent_id, platform, call_id)
    events = repo.list_call_events(tenancy.session, agent_id, platform, call_id)
    return call_detail(call, events, score)


class CallScenario(BaseModel):
    yaml: str = Field(description="One scenario file (docs/evals.md); loads with load_suite")


@router.get(
    "/calls/{agent_id}/{platform}/{call_id}/scenario",
    response_model=CallScenario,
    openapi_extra=auth("viewer"),
)
def call_scenario(
    agent_id: str, platform: str, call_id: str, principal: PrincipalDep, tenancy: TenancyDep
) -> CallScenario:
    """The call as a regression scenario: its (redacted) caller lines as turns, its successful
    tool calls as ``tools_called`` expectations, its prompt version, transfer and turn cap.
    422 when the call has no caller line to script."""
    agent = tenancy.require_agent(agent_id)
    principal.require("viewer", agent.org_id)
    call = repo.get_call(tenancy.session, agent_id, platform, call_id)
    if call is None:
        raise NotFoundError(f"no {platform} call '{call_id}' for agent '{agent_id}'")
    events = repo.list_call_events(tenancy.session, agent_id, platform, call_id)
    tool_calls = [e.data for e in events if e.type == "tool_call" and isinstance(e.data, dict)]
    try:
        return CallScenario(yaml=scenario_from_call(call, events, tool_calls))
    except NoCallerTurnsError as exc:
        raise InvalidInputError(f"no scenario from {platform} call '{call_id}': {exc}") from exc


@router.get(
    "/rejected-webhooks", response_model=list[RejectedWebhookPublic], openapi_extra=auth("viewer")
)
def rejected_webhooks(
    principal: PrincipalDep,
    tenancy: TenancyDep,
    org_id: str | None = None,
    limit: int = Query(default=50, ge=1, le=500),
) -> list[RejectedWebhookPublic]:
    if not principal.operator:
        principal.require("viewer", principal.org_id)
        org_id = principal.org_id
    return [
        RejectedWebhookPublic.model_validate(r, from_attributes=True)
        for r in repo.list_rejected(tenancy.session, org_id, limit)
    ]
