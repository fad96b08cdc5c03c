"""An agent's call quality: the four-layer scorecard aggregated per prompt version (viewer)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import PrincipalDep, TenancyDep, auth
from core.db import utcnow
from core.monitoring.queries import agent_quality
from core.monitoring.schemas import AgentQuality

router = APIRouter(prefix="/v1/agents/{agent_id}", tags=["quality"])


@router.get("/quality", response_model=AgentQuality, openapi_extra=auth("viewer"))
def quality(
    agent_id: str,
    principal: PrincipalDep,
    tenancy: TenancyDep,
    period: Annotated[
        str, Query(max_length=8, description="Hours or days back: 24h, 7d (default), 30d")
    ] = "7d",
    version: Annotated[
        str | None, Query(max_length=12, description="Only this prompt version, e.g. v3")
    ] = None,
) -> AgentQuality:
    """Scored calls of the period: count, mean score, per-layer means, grounded share, words
    per agent turn, tool failure rate and containment, overall and per prompt version."""
    agent = tenancy.require_agent(agent_id)
    principal.require("viewer", agent.org_id)
    return agent_quality(tenancy.session, agent_id, period=period, version=version, now=utcnow())
