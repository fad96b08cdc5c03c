"""An agent's drift monitors: per prompt version and metric, the detectors' state (viewer),
and acknowledging an alarm, optionally re-learning the metric's baseline (release)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field

from api.deps import PrincipalDep, TenancyDep, auth
from core.monitoring.drift_watch import acknowledge_drift, drift_view

router = APIRouter(prefix="/v1/agents/{agent_id}/drift", tags=["quality"])


class DriftDetector(BaseModel):
    detector: str  # cusum | window
    direction: str  # up | down | both
    statistic: float | None = None
    threshold: float | None = None
    fraction: float | None = None  # statistic / threshold: 1 alarms
    alarmed: bool
    calls_since_change: int | None = None
    recent: float | None = None
    calls: int | None = None  # window: calls so far
    of: int | None = None  # window: its length


class DriftMetric(BaseModel):
    metric: str
    watched: str
    observations: int
    phase: str  # reference | watching | alarmed
    alarm_latched: bool
    reference_size: float
    reference_needed: int
    baseline: float | None
    recent: float | None
    recent_calls: int | None = None
    detectors: list[DriftDetector]


class DriftVersion(BaseModel):
    prompt_version: str
    calls_seen: int
    last_call_score_id: int
    updated_at: datetime
    metrics: list[DriftMetric]


class AgentDrift(BaseModel):
    agent_id: str
    versions: list[DriftVersion]


class DriftAck(BaseModel):
    rebaseline: bool = Field(
        default=False,
        description="Also drop the metric's reference: it learns its new normal from the next "
        "calls (the change was intended)",
    )


class DriftAckResult(BaseModel):
    agent_id: str
    prompt_version: str
    rebaseline: bool
    metric: DriftMetric


Version = Annotated[str, Path(max_length=32, description="Prompt version, e.g. v3")]
Metric = Annotated[str, Path(max_length=32, description="e.g. words_per_agent_turn")]


@router.get("", response_model=AgentDrift, openapi_extra=auth("viewer"))
def get_drift(agent_id: str, principal: PrincipalDep, tenancy: TenancyDep) -> AgentDrift:
    """Per prompt version (latest first) and metric: the phase, the baseline against the recent
    value, each detector's statistic and threshold, and whether an alarm is latched."""
    agent = tenancy.require_agent(agent_id)
    principal.require("viewer", agent.org_id)
    versions: list[dict[str, Any]] = drift_view(tenancy.session, agent_id)
    return AgentDrift.model_validate({"agent_id": agent_id, "versions": versions})


@router.post(
    "/{version}/{metric}/acknowledge",
    response_model=DriftAckResult,
    openapi_extra=auth("release"),
)
def acknowledge(
    agent_id: str,
    version: Version,
    metric: Metric,
    principal: PrincipalDep,
    tenancy: TenancyDep,
    body: DriftAck | None = None,
) -> DriftAckResult:
    """Zero the metric's latched detectors and resolve its drift alert; with ``rebaseline`` the
    metric also re-learns its reference from the next calls."""
    agent = tenancy.require_agent(agent_id)
    principal.require("release", agent.org_id)
    rebaseline = body.rebaseline if body is not None else False
    view = acknowledge_drift(
        tenancy.session,
        org_id=agent.org_id,
        agent_id=agent_id,
        version=version,
        metric=metric,
        rebaseline=rebaseline,
        actor=principal.actor,
    )
    return DriftAckResult.model_validate(
        {
            "agent_id": agent_id,
            "prompt_version": version,
            "rebaseline": rebaseline,
            "metric": view,
        }
    )
