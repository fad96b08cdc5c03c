"""Knowledge queries: the only place that reads or writes knowledge tables. Never commits."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, update
from sqlmodel import Session, col, select

from core.knowledge.models import (
    KnowledgeBase,
    KnowledgeBlob,
    KnowledgeChunk,
    KnowledgeKV,
    KnowledgeSource,
)

# -- knowledge bases -------------------------------------------------------------------------


def get_kb(session: Session, kb_id: str) -> KnowledgeBase | None:
    return session.get(KnowledgeBase, kb_id)


def get_kb_by_name(session: Session, agent_id: str, name: str) -> KnowledgeBase | None:
    stmt = select(KnowledgeBase).where(
        KnowledgeBase.agent_id == agent_id, KnowledgeBase.name == name
    )
    return session.exec(stmt).first()


def list_kbs(session: Session, agent_id: str) -> list[KnowledgeBase]:
    stmt = (
        select(KnowledgeBase)
        .where(KnowledgeBase.agent_id == agent_id)
        .order_by(col(KnowledgeBase.name))
    )
    return list(session.exec(stmt))


def all_kb_partitions(session: Session) -> list[tuple[str, str]]:
    """(org id, knowledge base id) of every knowledge base, oldest first."""
    stmt = select(KnowledgeBase.org_id, KnowledgeBase.id).order_by(col(KnowledgeBase.created_at))
    return [(str(org), str(kb)) for org, kb in session.exec(stmt)]


def kb_versions(session: Session, agent_id: str) -> list[tuple[str, str, str, int]]:
    """(id, org, name, version) of an agent's bases: the hot path's cheap read."""
    stmt = select(
        KnowledgeBase.id, KnowledgeBase.org_id, KnowledgeBase.name, KnowledgeBase.version
    ).where(KnowledgeBase.agent_id == agent_id)
    return [(r[0], r[1], r[2], r[3]) for r in session.exec(stmt)]


# -- sources ---------------------------------------------------------------------------------


def get_source(session: Session, source_id: str) -> KnowledgeSource | None:
    return session.get(KnowledgeSource, source_id)


def get_source_by_name(session: Session, kb_id: str, name: str) -> KnowledgeSource | None:
    stmt = select(KnowledgeSource).where(
        KnowledgeSource.kb_id == kb_id, KnowledgeSource.name == name
    )
    return session.exec(stmt).first()


def list_sources(
    session: Session, agent_id: str | None = None, kb_id: str | None = None
) -> list[KnowledgeSource]:
    stmt = select(KnowledgeSource)
    if agent_id is not None:
        stmt = stmt.where(KnowledgeSource.agent_id == agent_id)
    if kb_id is not None:
        stmt = stmt.where(KnowledgeSource.kb_id == kb_id)
    return list(session.exec(stmt.order_by(col(KnowledgeSource.created_at))))


def sources_with_staleness(session: Session) -> list[KnowledgeSource]:
    stmt = select(KnowledgeSource).where(col(KnowledgeSource.max_staleness_s).is_not(None))
    return list(session.exec(stmt))


def unsynced_sources(session: Session, limit: int = 100) -> list[KnowledgeSource]:
    stmt = (
        select(KnowledgeSource).where(col(KnowledgeSource.schedule_synced).is_(False)).limit(limit)
    )
    return list(session.exec(stmt))


def sources_by_ids(session: Session, ids: Iterable[str]) -> dict[str, KnowledgeSource]:
    wanted = list(set(ids))
    if not wanted:
        return {}
    stmt = select(KnowledgeSource).where(col(KnowledgeSource.id).in_(wanted))
    return {s.id: s for s in session.exec(stmt)}


# -- blobs -----------------------------------------------------------------------------------


def get_blob(session: Session, source_id: str, content_hash: str) -> KnowledgeBlob | None:
    stmt = select(KnowledgeBlob).where(
        KnowledgeBlob.source_id == source_id, KnowledgeBlob.content_hash == content_hash
    )
    return session.exec(stmt).first()


def delete_blobs_except(session: Session, source_id: str, keep: Sequence[str | None]) -> int:
    kept = [h for h in keep if h]
    stmt = delete(KnowledgeBlob).where(col(KnowledgeBlob.source_id) == source_id)
    if kept:
        stmt = stmt.where(col(KnowledgeBlob.content_hash).not_in(kept))
    return int(session.execute(stmt).rowcount or 0)  # type: ignore[attr-defined]


# -- chunks ----------------------------------------------------------------------------------


def chunks_for_source(session: Session, source_id: str) -> list[KnowledgeChunk]:
    stmt = select(KnowledgeChunk).where(KnowledgeChunk.source_id == source_id)
    return list(session.exec(stmt))


def chunk_ids_for_source(session: Session, source_id: str) -> list[str]:
    stmt = select(KnowledgeChunk.id).where(KnowledgeChunk.source_id == source_id)
    return list(session.exec(stmt))


def chunks_by_ids(session: Session, ids: Sequence[str]) -> dict[str, KnowledgeChunk]:
    if not ids:
        return {}
    stmt = select(KnowledgeChunk).where(col(KnowledgeChunk.id).in_(list(ids)))
    return {c.id: c for c in session.exec(stmt)}


def delete_chunks(session: Session, ids: Sequence[str]) -> int:
    if not ids:
        return 0
    result = session.execute(delete(KnowledgeChunk).where(col(KnowledgeChunk.id).in_(list(ids))))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def delete_source_rows(session: Session, source_id: str) -> int:
    removed = 0
    for table in (KnowledgeChunk, KnowledgeBlob):
        result = session.execute(delete(table).where(col(table.source_id) == source_id))
        removed += int(result.rowcount or 0)  # type: ignore[attr-defined]
    return removed


def set_chunks_fetched_at(session: Session, source_id: str, fetched_at: datetime) -> None:
    session.execute(
        update(KnowledgeChunk)
        .where(col(KnowledgeChunk.source_id) == source_id)
        .values(fetched_at=fetched_at)
    )


def set_section_order(session: Session, source_id: str, doc_key: str, order: int) -> None:
    session.execute(
        update(KnowledgeChunk)
        .where(col(KnowledgeChunk.source_id) == source_id, col(KnowledgeChunk.doc_key) == doc_key)
        .values(section_order=order)
    )


def count_chunks(session: Session, source_id: str) -> int:
    stmt = (
        select(func.count())
        .select_from(KnowledgeChunk)
        .where(KnowledgeChunk.source_id == source_id)
    )
    return int(session.exec(stmt).one())


def kb_chunk_texts(session: Session, kb_id: str) -> Iterable[str]:
    stmt = select(KnowledgeChunk.section, KnowledgeChunk.text).where(KnowledgeChunk.kb_id == kb_id)
    for section, text in session.exec(stmt):
        yield f"{section}\n{text}"


def kb_chunks(session: Session, kb_id: str) -> list[KnowledgeChunk]:
    stmt = select(KnowledgeChunk).where(KnowledgeChunk.kb_id == kb_id)
    return list(session.exec(stmt))


# -- docstore key-value ----------------------------------------------------------------------


def kv_get(session: Session, namespace: str, collection: str, key: str) -> KnowledgeKV | None:
    stmt = select(KnowledgeKV).where(
        KnowledgeKV.namespace == namespace,
        KnowledgeKV.collection == collection,
        KnowledgeKV.key == key,
    )
    return session.exec(stmt).first()


def kv_all(session: Session, namespace: str, collection: str) -> dict[str, dict[str, Any]]:
    stmt = select(KnowledgeKV.key, KnowledgeKV.value).where(
        KnowledgeKV.namespace == namespace, KnowledgeKV.collection == collection
    )
    return {k: dict(v) for k, v in session.exec(stmt)}


def kv_clear(session: Session, namespace: str) -> None:
    session.execute(delete(KnowledgeKV).where(col(KnowledgeKV.namespace) == namespace))


def chunks_with_sources(
    session: Session, ids: Sequence[str]
) -> dict[str, tuple[KnowledgeChunk, KnowledgeSource]]:
    """Chunks and their sources in one indexed read (the hot path's only chunk query)."""
    if not ids:
        return {}
    stmt = (
        select(KnowledgeChunk, KnowledgeSource)
        .join(KnowledgeSource, col(KnowledgeSource.id) == col(KnowledgeChunk.source_id))
        .where(col(KnowledgeChunk.id).in_(list(ids)))
    )
    return {c.id: (c, s) for c, s in session.exec(stmt)}


def kb_vocabulary(session: Session, kb_id: str) -> list[str]:
    stmt = select(KnowledgeBase.vocabulary).where(KnowledgeBase.id == kb_id)
    found = session.exec(stmt).first()
    return list(found or [])


def never_attempted_sources(
    session: Session, created_before: datetime | None = None, limit: int = 50
) -> list[KnowledgeSource]:
    """Sources whose first refresh never started (Temporal was down when they were added)."""
    stmt = select(KnowledgeSource).where(col(KnowledgeSource.last_attempt_at).is_(None))
    if created_before is not None:
        stmt = stmt.where(col(KnowledgeSource.created_at) < created_before)
    return list(session.exec(stmt.limit(limit)))
