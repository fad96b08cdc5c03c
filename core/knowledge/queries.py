"""Read-only knowledge queries for dashboards: sources with their freshness, and retrievals.

Each function takes a ``Session`` and returns plain dicts; freshness is judged with the ``now``
the caller passes. They never write, flush or commit. Retrieval rows come from call events,
whose queries were redacted when they were recorded.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypedDict

from sqlalchemy import func
from sqlmodel import Session, col, select

from core.calls.models import CallEvent
from core.knowledge.freshness import judge
from core.knowledge.models import KnowledgeBase, KnowledgeSource
from core.tenancy.models import Agent

RETRIEVAL_EVENT_TYPES = ("knowledge_request", "knowledge_retrieval")


class KnowledgeAgentRow(TypedDict):
    agent_id: str
    org_id: str
    name: str
    sources: int


class SourceRow(TypedDict):
    source_id: str
    kb: str
    name: str
    kind: str
    url: str | None
    freshness: str
    age_s: float | None
    verified_at: datetime | None
    last_attempt_at: datetime | None
    fetched_at: datetime | None
    chunks: int
    documents: int
    refresh_interval_s: int | None
    max_staleness_s: int | None
    failures: int
    last_error: str | None


class RetrievalRow(TypedDict):
    at: datetime
    platform: str
    call_id: str
    via: str
    status: str
    latency_ms: float | None
    hits: int
    withheld: int
    query: str


def list_knowledge_agents(session: Session) -> list[KnowledgeAgentRow]:
    """Agents that have at least one knowledge base, with their source counts."""
    counts = dict(
        session.exec(
            select(KnowledgeSource.agent_id, func.count()).group_by(col(KnowledgeSource.agent_id))
        ).all()
    )
    with_bases = set(session.exec(select(KnowledgeBase.agent_id)).all())
    agents = session.exec(select(Agent).where(col(Agent.id).in_(with_bases | set(counts))))
    return [
        KnowledgeAgentRow(
            agent_id=a.id, org_id=a.org_id, name=a.name, sources=int(counts.get(a.id, 0))
        )
        for a in sorted(agents, key=lambda a: a.name)
    ]


def list_source_rows(session: Session, agent_id: str, now: datetime) -> list[SourceRow]:
    names = dict(
        session.exec(
            select(KnowledgeBase.id, KnowledgeBase.name).where(KnowledgeBase.agent_id == agent_id)
        ).all()
    )
    sources = session.exec(
        select(KnowledgeSource)
        .where(KnowledgeSource.agent_id == agent_id)
        .order_by(col(KnowledgeSource.name))
    )
    rows: list[SourceRow] = []
    for s in sources:
        fresh = judge(
            verified_at=s.verified_at,
            max_staleness_s=s.max_staleness_s,
            failure_count=s.failure_count,
            now=now,
        )
        rows.append(
            SourceRow(
                source_id=s.id,
                kb=names.get(s.kb_id, "?"),
                name=s.name,
                kind=s.kind,
                url=s.url,
                freshness=fresh.state,
                age_s=fresh.age_s,
                verified_at=s.verified_at,
                last_attempt_at=s.last_attempt_at,
                fetched_at=s.fetched_at,
                chunks=s.chunk_count,
                documents=s.document_count,
                refresh_interval_s=s.refresh_interval_s,
                max_staleness_s=s.max_staleness_s,
                failures=s.failure_count,
                last_error=s.last_error,
            )
        )
    return rows


def list_retrievals(
    session: Session, agent_id: str, since: datetime, limit: int = 5000
) -> list[RetrievalRow]:
    """Every recorded retrieval of the agent since ``since``, oldest first."""
    events = session.exec(
        select(CallEvent)
        .where(
            CallEvent.agent_id == agent_id,
            col(CallEvent.type).in_(RETRIEVAL_EVENT_TYPES),
            col(CallEvent.at) >= since,
        )
        .order_by(col(CallEvent.at).desc())
        .limit(limit)
    )
    rows: list[RetrievalRow] = []
    for e in events:
        data: dict[str, Any] = dict(e.data or {})
        latency = data.get("latency_ms")
        rows.append(
            RetrievalRow(
                at=e.at,
                platform=e.platform,
                call_id=e.platform_call_id,
                via=str(data.get("via") or e.platform_type),
                status=str(data.get("status") or "?"),
                latency_ms=float(latency) if isinstance(latency, int | float) else None,
                hits=len(data.get("chunk_ids") or []),
                withheld=len(data.get("withheld") or []),
                query=str(data.get("query") or ""),
            )
        )
    rows.reverse()
    return rows
