"""Audit queries: the chain head, the event listing, the events of one action on one target and
the rows of one chain. Returns models, rows or None; never commits."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from core.audit.chain import GENESIS
from core.audit.models import AuditChainHead, AuditEvent
from core.audit.targets import agent_prefix, agent_target


@dataclass(frozen=True)
class AuditFilter:
    org_id: str
    agent_id: str | None = None
    action: str | None = None
    actor: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 100


def lock_head(session: Session, chain: str) -> tuple[int, str]:
    """Create the chain head if missing, then lock and read it."""
    dialect = session.get_bind().dialect.name
    values = {"chain": chain, "seq": 0, "hash": GENESIS}
    if dialect == "postgresql":
        ins: Any = postgresql.insert(AuditChainHead).values(**values).on_conflict_do_nothing()
    else:
        # On SQLite this write is what takes the database's one writer lock, before the read.
        ins = sqlite.insert(AuditChainHead).values(**values).on_conflict_do_nothing()
    session.execute(ins)
    row = session.execute(
        select(AuditChainHead.seq, AuditChainHead.hash)
        .where(AuditChainHead.chain == chain)
        .with_for_update()
    ).one()
    return int(row[0]), str(row[1])


def move_head(session: Session, chain: str, seq: int, digest: str) -> None:
    session.execute(
        update(AuditChainHead)
        .where(col(AuditChainHead.chain) == chain)
        .values(seq=seq, hash=digest)
    )


def get_head(session: Session, chain: str) -> AuditChainHead | None:
    return session.get(AuditChainHead, chain)


def list_events(session: Session, f: AuditFilter) -> list[AuditEvent]:
    """Newest first. ``action`` ending in ``.`` or ``*`` matches a family (``prompt.*``);
    ``agent_id`` matches rows whose target names the agent."""
    stmt = select(AuditEvent).where(AuditEvent.org_id == f.org_id)
    if f.agent_id is not None:
        target = col(AuditEvent.target)
        stmt = stmt.where(
            (target == agent_target(f.agent_id)) | target.startswith(agent_prefix(f.agent_id))
        )
    if f.action is not None:
        if f.action.endswith(("*", ".")):
            stmt = stmt.where(col(AuditEvent.action).startswith(f.action.rstrip("*")))
        else:
            stmt = stmt.where(AuditEvent.action == f.action)
    if f.actor is not None:
        stmt = stmt.where(AuditEvent.actor == f.actor)
    if f.since is not None:
        stmt = stmt.where(col(AuditEvent.at) >= f.since)
    if f.until is not None:
        stmt = stmt.where(col(AuditEvent.at) < f.until)
    stmt = stmt.order_by(col(AuditEvent.seq).desc(), col(AuditEvent.id).desc()).limit(f.limit)
    return list(session.exec(stmt))


def events_for(session: Session, org_id: str | None, action: str, target: str) -> list[AuditEvent]:
    """The events of one action on one target in the organization's chain."""
    stmt = select(AuditEvent).where(
        AuditEvent.org_id == org_id, AuditEvent.action == action, AuditEvent.target == target
    )
    return list(session.exec(stmt))


def chain_events(session: Session, org_id: str) -> Iterator[AuditEvent]:
    """The organization's events in chain order, streamed."""
    stmt = (
        select(AuditEvent)
        .where(AuditEvent.org_id == org_id)
        .order_by(col(AuditEvent.seq), col(AuditEvent.id))
        .execution_options(yield_per=1000)
    )
    yield from session.exec(stmt)
