"""Appending to and reading the audit trail.

Each append links the row into its organization's hash chain under a lock on the chain head
(``SELECT ... FOR UPDATE`` on Postgres; on SQLite the insert that creates the head takes the
single writer lock first), so concurrent writers queue instead of forking the chain. ``detail``
holds ids and counts, never raw phone numbers, caller content or secrets.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from core.audit.chain import (
    GENESIS,
    ChainReport,
    ChainRow,
    chain_key,
    link_hash,
    verify_chain,
)
from core.audit.models import AuditChainHead, AuditEvent
from core.audit.targets import agent_prefix, agent_target
from core.db import utcnow


def _lock_head(session: Session, chain: str) -> tuple[int, str]:
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


def record_audit(
    session: Session,
    *,
    actor: str,
    action: str,
    target: str,
    org_id: str | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    chain = chain_key(org_id)
    seq, prev = _lock_head(session, chain)
    body = detail or {}
    at = utcnow()
    digest = link_hash(
        org_id=org_id,
        actor=actor,
        action=action,
        target=target,
        detail=body,
        at=at,
        prev_hash=prev,
    )
    event = AuditEvent(
        org_id=org_id,
        actor=actor,
        action=action,
        target=target,
        detail=body,
        at=at,
        seq=seq + 1,
        prev_hash=prev,
        hash=digest,
    )
    session.add(event)
    session.execute(
        update(AuditChainHead)
        .where(col(AuditChainHead.chain) == chain)
        .values(seq=seq + 1, hash=digest)
    )
    return event


@dataclass(frozen=True)
class AuditFilter:
    org_id: str
    agent_id: str | None = None
    action: str | None = None
    actor: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 100


def list_audit(session: Session, f: AuditFilter) -> list[AuditEvent]:
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


def _chain_rows(session: Session, org_id: str) -> Iterator[ChainRow]:
    stmt = (
        select(AuditEvent)
        .where(AuditEvent.org_id == org_id)
        .order_by(col(AuditEvent.seq), col(AuditEvent.id))
        .execution_options(yield_per=1000)
    )
    for e in session.exec(stmt):
        assert e.id is not None
        yield ChainRow(
            id=e.id,
            org_id=e.org_id,
            actor=e.actor,
            action=e.action,
            target=e.target,
            detail=e.detail,
            at=e.at,
            seq=e.seq,
            prev_hash=e.prev_hash,
            hash=e.hash,
        )


def verify_org_chain(session: Session, org_id: str) -> ChainReport:
    """Recompute the organization's chain from the stored rows (nothing is trusted)."""
    head = session.get(AuditChainHead, chain_key(org_id))
    head_seq, head_hash = (head.seq, head.hash) if head is not None else (0, GENESIS)
    return verify_chain(_chain_rows(session, org_id), head_seq, head_hash)
