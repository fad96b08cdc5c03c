"""Read-only memory queries for dashboards: the callers an agent remembers and one timeline.

Each function takes a ``Session`` and returns plain dicts. They never write, flush or commit.
Callers are identified by their keyed hash and shown by the masked ``caller_display`` only; no
raw number is stored, so none can leave here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypedDict

from sqlmodel import Session, col, select

from core.memory import repository as repo
from core.memory.models import CallerProfile
from core.memory.schemas import CallerContext, CallerTimeline, FactPublic, SummaryPublic


class CallerRow(TypedDict):
    org_id: str
    agent_id: str
    caller_hash: str
    caller_display: str | None
    call_count: int
    last_call_at: datetime | None


def list_callers(session: Session, agent_id: str, limit: int = 500) -> list[CallerRow]:
    """The agent's remembered callers, most recently heard from first."""
    stmt = (
        select(CallerProfile)
        .where(CallerProfile.agent_id == agent_id)
        .order_by(col(CallerProfile.last_call_at).desc(), col(CallerProfile.id).desc())
        .limit(limit)
    )
    return [
        CallerRow(
            org_id=p.org_id,
            agent_id=p.agent_id,
            caller_hash=p.caller_hash,
            caller_display=p.caller_display,
            call_count=p.call_count,
            last_call_at=p.last_call_at,
        )
        for p in session.exec(stmt)
    ]


def get_caller_timeline(
    session: Session, org_id: str, agent_id: str, caller_hash: str
) -> dict[str, Any] | None:
    """A ``CallerTimeline`` as a dict: current context, every fact (closed ones too), summaries.

    ``MemoryService.timeline`` builds the same model but needs an embedder and a vector store,
    which a read-only reader has no reason to construct; this uses the same repository reads.
    """
    profile = repo.get_profile(session, org_id, agent_id, caller_hash)
    if profile is None:
        return None
    timeline = CallerTimeline(
        caller_hash=caller_hash,
        caller_display=profile.caller_display,
        context=CallerContext.model_validate(profile.context or {}),
        summaries=[
            SummaryPublic.model_validate(m, from_attributes=True)
            for m in repo.list_summaries(session, org_id, agent_id, caller_hash)
        ],
        facts=[
            FactPublic.model_validate(f, from_attributes=True)
            for f in repo.list_facts(session, org_id, agent_id, caller_hash)
        ],
    )
    return timeline.model_dump()
