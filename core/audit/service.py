"""Appending to and reading the audit trail.

Each append links the row into its organization's hash chain under a lock on the chain head
(``SELECT ... FOR UPDATE`` on Postgres; on SQLite the insert that creates the head takes the
single writer lock first), so concurrent writers queue instead of forking the chain. ``detail``
holds ids and counts, never raw phone numbers, caller content or secrets.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlmodel import Session

from core.audit import repository as repo
from core.audit.chain import (
    GENESIS,
    ChainReport,
    ChainRow,
    chain_key,
    link_hash,
    verify_chain,
)
from core.audit.models import AuditEvent
from core.db import utcnow


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
    seq, prev = repo.lock_head(session, chain)
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
    repo.move_head(session, chain, seq + 1, digest)
    return event


def record_audit_once(
    session: Session,
    *,
    actor: str,
    action: str,
    target: str,
    org_id: str | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEvent | None:
    """Append the event unless the same action on the same target with the same detail is
    already recorded (a retried activity whose completion was lost); None when it was."""
    body = detail or {}
    if any(e.detail == body for e in repo.events_for(session, org_id, action, target)):
        return None
    return record_audit(
        session, actor=actor, action=action, target=target, org_id=org_id, detail=body
    )


def _chain_rows(session: Session, org_id: str) -> Iterator[ChainRow]:
    for e in repo.chain_events(session, org_id):
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
    head = repo.get_head(session, chain_key(org_id))
    head_seq, head_hash = (head.seq, head.hash) if head is not None else (0, GENESIS)
    return verify_chain(_chain_rows(session, org_id), head_seq, head_hash)
