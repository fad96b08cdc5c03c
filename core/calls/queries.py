"""Read-only call queries for dashboards and reports: lists, activity and one call's trace.

Each function takes a ``Session`` and returns plain dicts (JSON-friendly values, datetimes kept
as naive UTC), so a reader needs no ORM object. They never write, flush or commit, and never
return a caller's raw number: only the masked ``caller_display`` leaves this module.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypedDict

from sqlalchemy import and_, func
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from core.calls import repository as repo
from core.calls.models import ABANDONED, Call
from core.memory import repository as memory_repo
from core.memory.models import Fact
from core.monitoring.models import CallScore
from core.monitoring.service import MonitoringService
from core.tenancy.models import Agent


class AgentRow(TypedDict):
    agent_id: str
    org_id: str
    name: str
    calls: int


class CallRow(TypedDict):
    agent_id: str
    platform: str
    call_id: str
    time: datetime
    caller_display: str | None
    status: str
    ended_reason: str | None
    score: float | None
    summary: str | None
    prompt_version: str | None


class CallEventRow(TypedDict):
    at: datetime
    type: str
    platform_type: str
    data: dict[str, Any]


class MemoryRow(TypedDict):
    kind: str
    text: str
    method: str
    revision: int
    created_at: datetime


class FactRow(TypedDict):
    key: str
    value: str
    valid_from: datetime
    valid_to: datetime | None
    current: bool


class CallTrace(TypedDict):
    call: CallRow
    direction: str | None
    started_at: datetime | None
    ended_at: datetime | None
    transcript: list[dict[str, Any]]
    platform_summary: str | None
    analysis: dict[str, Any]
    events: list[CallEventRow]
    score_parts: dict[str, Any]
    score_layers: dict[str, Any]
    memories: list[MemoryRow]
    facts: list[FactRow]
    facts_closed: list[FactRow]


def _score_join() -> Any:
    return and_(
        col(CallScore.agent_id) == col(Call.agent_id),
        col(CallScore.platform) == col(Call.platform),
        col(CallScore.platform_call_id) == col(Call.platform_call_id),
    )


def _call_time() -> Any:
    # A call whose start the platform never reported still has the time we first saw it.
    return func.coalesce(col(Call.started_at), col(Call.created_at))


def list_agents_with_calls(session: Session) -> list[AgentRow]:
    """Every agent of every organization with its call count, busiest first."""
    calls = func.count(col(Call.id))
    stmt = (
        select(Agent.id, Agent.org_id, Agent.name, calls)
        .outerjoin(Call, col(Call.agent_id) == col(Agent.id))
        .group_by(col(Agent.id), col(Agent.org_id), col(Agent.name))
        .order_by(calls.desc(), col(Agent.org_id), col(Agent.id))
    )
    return [
        AgentRow(agent_id=agent_id, org_id=org_id, name=name, calls=int(count))
        for agent_id, org_id, name, count in session.exec(stmt)
    ]


def list_recent_calls(session: Session, agent_id: str | None, limit: int = 200) -> list[CallRow]:
    """The newest calls (of one agent, or all), each with its quality score when scored."""
    when = _call_time().label("time")
    # SQLModel's typed ``select`` stops at four columns; SQLAlchemy's takes any number.
    stmt = sa_select(
        col(Call.agent_id),
        col(Call.platform),
        col(Call.platform_call_id),
        when,
        col(Call.caller_display),
        col(Call.status),
        col(Call.ended_reason),
        col(CallScore.score),
        col(Call.summary),
        col(Call.prompt_version),
    ).outerjoin(CallScore, _score_join())
    if agent_id:
        stmt = stmt.where(col(Call.agent_id) == agent_id)
    stmt = stmt.order_by(when.desc(), col(Call.id).desc()).limit(limit)
    return [
        CallRow(
            agent_id=row[0],
            platform=row[1],
            call_id=row[2],
            time=row[3],
            caller_display=row[4],
            status=row[5],
            ended_reason=row[6],
            score=None if row[7] is None else float(row[7]),
            summary=row[8],
            prompt_version=row[9],
        )
        for row in session.execute(stmt)
    ]


class ActivityRow(TypedDict):
    time: datetime
    platform: str
    score: float | None


def list_call_activity(
    session: Session, agent_id: str | None, since: datetime
) -> list[ActivityRow]:
    """Time, platform and score of every call since ``since``: the input of trend charts.
    Abandoned calls (no end-of-call ever came) are left out: they are not calls that happened
    as far as quality and volume go; ``count_abandoned_calls`` counts them."""
    when = _call_time().label("time")
    stmt = (
        select(when, Call.platform, CallScore.score)
        .outerjoin(CallScore, _score_join())
        .where(when >= since, col(Call.status) != ABANDONED)
    )
    if agent_id:
        stmt = stmt.where(col(Call.agent_id) == agent_id)
    return [
        ActivityRow(time=t, platform=p, score=None if s is None else float(s))
        for t, p, s in session.exec(stmt.order_by(when))
    ]


def count_abandoned_calls(session: Session, agent_id: str | None, since: datetime) -> int:
    when = _call_time()
    stmt = select(func.count(col(Call.id))).where(when >= since, col(Call.status) == ABANDONED)
    if agent_id:
        stmt = stmt.where(col(Call.agent_id) == agent_id)
    return int(session.exec(stmt).one())


def _fact_row(fact: Fact) -> FactRow:
    return FactRow(
        key=fact.key,
        value=fact.value,
        valid_from=fact.valid_from,
        valid_to=fact.valid_to,
        current=fact.valid_to is None,
    )


def get_call_trace(
    session: Session, agent_id: str, platform: str, call_id: str
) -> CallTrace | None:
    """One call end to end: events in order, redacted transcript, scorecard, derived memory."""
    call = repo.get_call(session, agent_id, platform, call_id)
    if call is None:
        return None
    score = MonitoringService(session).get_score(agent_id, platform, call_id)
    events = repo.list_call_events(session, agent_id, platform, call_id)
    memories = memory_repo.memories_for_call(session, agent_id, platform, call_id)
    facts = memory_repo.facts_from_call(session, agent_id, platform, call_id)
    closed = memory_repo.facts_closed_by_call(session, agent_id, platform, call_id)
    return CallTrace(
        call=CallRow(
            agent_id=call.agent_id,
            platform=call.platform,
            call_id=call.platform_call_id,
            time=call.started_at or call.created_at,
            caller_display=call.caller_display,
            status=call.status,
            ended_reason=call.ended_reason,
            score=score.score if score else None,
            summary=call.summary,
            prompt_version=call.prompt_version,
        ),
        direction=call.direction,
        started_at=call.started_at,
        ended_at=call.ended_at,
        transcript=list(call.transcript or []),
        platform_summary=call.platform_summary,
        analysis=dict(call.analysis or {}),
        events=[
            CallEventRow(at=e.at, type=e.type, platform_type=e.platform_type, data=dict(e.data))
            for e in events
        ],
        score_parts=dict(score.parts) if score else {},
        score_layers=dict(score.layers or {}) if score else {},
        memories=[
            MemoryRow(
                kind=m.kind,
                text=m.text,
                method=m.method,
                revision=m.revision,
                created_at=m.created_at,
            )
            for m in sorted(memories, key=lambda m: (m.created_at, m.id or 0))
        ],
        facts=[_fact_row(f) for f in sorted(facts, key=lambda f: (f.valid_from, f.key))],
        facts_closed=[_fact_row(f) for f in sorted(closed, key=lambda f: (f.valid_from, f.key))],
    )
