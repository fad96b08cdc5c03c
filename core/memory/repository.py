"""Memory queries. Returns models or None; never commits."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, text
from sqlmodel import Session, col, select

from core.memory.models import CallerProfile, Fact, Memory


def lock_caller(session: Session, partition: str) -> None:
    """Hold the caller's memory for the rest of the transaction: two calls of one caller
    processed at once write one after the other, each reading what the other committed.
    Postgres only (a transaction-scoped advisory lock); SQLite has one writer at a time."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": partition}
        )


def get_profile(
    session: Session, org_id: str, agent_id: str, caller_hash: str
) -> CallerProfile | None:
    stmt = select(CallerProfile).where(
        CallerProfile.org_id == org_id,
        CallerProfile.agent_id == agent_id,
        CallerProfile.caller_hash == caller_hash,
    )
    return session.exec(stmt).first()


def profile_stamp(
    session: Session, org_id: str, agent_id: str, caller_hash: str
) -> datetime | None:
    """When the caller's profile was last rebuilt (any memory write does), None without one."""
    stmt = select(CallerProfile.updated_at).where(
        CallerProfile.org_id == org_id,
        CallerProfile.agent_id == agent_id,
        CallerProfile.caller_hash == caller_hash,
    )
    return session.exec(stmt).first()


def list_summaries(
    session: Session, org_id: str, agent_id: str, caller_hash: str, limit: int | None = None
) -> list[Memory]:
    stmt = (
        select(Memory)
        .where(
            Memory.org_id == org_id, Memory.agent_id == agent_id, Memory.caller_hash == caller_hash
        )
        .order_by(col(Memory.created_at).desc(), col(Memory.id).desc())
    )
    if limit is not None:
        stmt = stmt.limit(limit)
    return list(session.exec(stmt))


def memories_for_call(session: Session, agent_id: str, platform: str, call_id: str) -> list[Memory]:
    stmt = select(Memory).where(
        Memory.agent_id == agent_id, Memory.platform == platform, Memory.source_call_id == call_id
    )
    return list(session.exec(stmt))


def list_facts(
    session: Session, org_id: str, agent_id: str, caller_hash: str, current_only: bool = False
) -> list[Fact]:
    stmt = select(Fact).where(
        Fact.org_id == org_id, Fact.agent_id == agent_id, Fact.caller_hash == caller_hash
    )
    if current_only:
        stmt = stmt.where(col(Fact.valid_to).is_(None))
    return list(session.exec(stmt.order_by(col(Fact.valid_from), col(Fact.id))))


def current_facts_by_id(
    session: Session, org_id: str, agent_id: str, caller_hash: str, ids: Sequence[int]
) -> list[Fact]:
    """The caller's current facts among ``ids`` (a search's hits)."""
    if not ids:
        return []
    stmt = select(Fact).where(
        Fact.org_id == org_id,
        Fact.agent_id == agent_id,
        Fact.caller_hash == caller_hash,
        col(Fact.id).in_(list(ids)),
        col(Fact.valid_to).is_(None),
    )
    return list(session.exec(stmt))


def facts_from_call(session: Session, agent_id: str, platform: str, call_id: str) -> list[Fact]:
    stmt = select(Fact).where(
        Fact.agent_id == agent_id, Fact.platform == platform, Fact.source_call_id == call_id
    )
    return list(session.exec(stmt))


def facts_closed_by_call(
    session: Session, agent_id: str, platform: str, call_id: str
) -> list[Fact]:
    stmt = select(Fact).where(
        Fact.agent_id == agent_id,
        Fact.superseded_by_platform == platform,
        Fact.superseded_by_call_id == call_id,
    )
    return list(session.exec(stmt))


def memories_by_source(
    session: Session, org_id: str, agent_id: str, caller_hash: str, keys: Sequence[tuple[str, str]]
) -> list[Memory]:
    if not keys:
        return []
    call_ids = [c for _, c in keys]
    stmt = select(Memory).where(
        Memory.org_id == org_id,
        Memory.agent_id == agent_id,
        Memory.caller_hash == caller_hash,
        col(Memory.source_call_id).in_(call_ids),
    )
    wanted = set(keys)
    return [m for m in session.exec(stmt) if (m.platform, m.source_call_id) in wanted]


def rows_before(session: Session, org_id: str, before: datetime) -> tuple[list[Memory], list[Fact]]:
    """An organization's summaries and facts derived from calls before ``before``."""
    memories = session.exec(
        select(Memory).where(Memory.org_id == org_id, col(Memory.created_at) < before)
    ).all()
    facts = session.exec(
        select(Fact).where(Fact.org_id == org_id, col(Fact.recorded_at) < before)
    ).all()
    return list(memories), list(facts)


# Tables ``delete_caller_rows`` deletes from.
CALLER_TABLES: tuple[str, ...] = tuple(str(m.__tablename__) for m in (Memory, Fact, CallerProfile))


def delete_caller_rows(session: Session, org_id: str, agent_id: str, caller_hash: str) -> int:
    total = 0
    for model in (Memory, Fact, CallerProfile):
        result = session.execute(
            delete(model).where(
                col(model.org_id) == org_id,
                col(model.agent_id) == agent_id,
                col(model.caller_hash) == caller_hash,
            )
        )
        total += int(getattr(result, "rowcount", 0) or 0)
    return total
