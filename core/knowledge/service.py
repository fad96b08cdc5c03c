"""Knowledge rules: bases and sources, the refresh steps, freshness sweeps.

Rows go through ``session`` and are never committed here (the API request, the activity or the
CLI commits). Search-index writes wait in ``pending`` and are also written to the source's
``index_outbox`` in the same transaction: the caller applies them after committing
(``apply_pending_index``) and then clears the outbox; if it crashes in between, the next
ingest or refresh of that source finishes the job (``recover_outbox``). A failing fetch never
deletes anything: the last good chunks stay until a fetch succeeds.
"""

from __future__ import annotations

import base64
import binascii
import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from sqlmodel import Session

from core.audit.service import record_audit
from core.audit.targets import agent_target
from core.db import utcnow
from core.errors import ConflictError, InvalidInputError, NotFoundError
from core.knowledge import repository as repo
from core.knowledge.docstore import SqlKeyValueStore, source_namespace
from core.knowledge.freshness import judge
from core.knowledge.models import KnowledgeBase, KnowledgeBlob, KnowledgeChunk, KnowledgeSource
from core.knowledge.normalize import vocabulary_terms
from core.knowledge.ports import (
    FetchRequest,
    IndexEntry,
    Ingestor,
    KnowledgeIndex,
    ProgressFn,
    RestemmableIndex,
    SourceDocument,
    SourceFetcher,
    UnreadableContentError,
)
from core.knowledge.schemas import (
    MAX_UPLOAD_BYTES,
    KnowledgeBaseCreate,
    SourceCreate,
    SourcePublic,
    SourceUpdate,
)
from core.knowledge.text import index_text, sha256_hex
from core.monitoring.alerts import (
    KNOWLEDGE_FAILING,
    KNOWLEDGE_STALE,
    knowledge_subject,
    resolve_subject,
)
from core.ports import Embedder

log = logging.getLogger("backline.knowledge")

CONTENT_TYPES = {
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".txt": "text/plain",
    ".html": "text/html",
    ".htm": "text/html",
    ".pdf": "application/pdf",
}
DEFAULT_KB = "default"
# URL sources are re-checked hourly unless told otherwise; uploads only change when re-uploaded.
DEFAULT_URL_INTERVAL_S = 3600


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:20]}"


def content_type_for(filename: str) -> str:
    lower = filename.lower()
    for ext, kind in CONTENT_TYPES.items():
        if lower.endswith(ext):
            return kind
    raise InvalidInputError(
        f"unsupported file type for '{filename}'; use one of {sorted(CONTENT_TYPES)}"
    )


def decode_upload(content_base64: str) -> bytes:
    try:
        raw = base64.b64decode(content_base64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidInputError("content_base64 is not valid base64") from exc
    if not raw:
        raise InvalidInputError("the uploaded file is empty")
    if len(raw) > MAX_UPLOAD_BYTES:
        raise InvalidInputError(f"the file is larger than {MAX_UPLOAD_BYTES} bytes")
    return raw


@dataclass
class IndexOps:
    source_id: str
    tenant: str
    partition: str
    token: str
    upserts: list[IndexEntry] = field(default_factory=list)
    deletes: list[str] = field(default_factory=list)
    drop_partition: bool = False


@dataclass(frozen=True)
class FetchOutcome:
    status: str  # "changed" | "unchanged" | "gone"
    content_hash: str | None = None
    not_modified: bool = False


@dataclass(frozen=True)
class IngestOutcome:
    chunks_added: int
    chunks_removed: int
    chunks_kept: int
    embedded: int
    reused: int
    documents: int
    documents_skipped: int
    chunk_count: int


class KnowledgeService:
    """Knowledge bases and sources in one unit of work. Index writes it queues wait in
    ``pending``; ``KnowledgeIndexing`` (which has the index and the embedder) applies them."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.pending: list[IndexOps] = []

    # -- index writes after commit --------------------------------------------------------
    def clear_outbox(self, source_id: str, token: str) -> None:
        source = repo.get_source(self.session, source_id)
        if source is not None and (source.index_outbox or {}).get("token") == token:
            source.index_outbox = None
            self.session.add(source)

    def _queue(self, ops: IndexOps, source: KnowledgeSource | None) -> None:
        self.pending.append(ops)
        if source is not None:
            source.index_outbox = {
                "token": ops.token,
                "upsert_ids": [e.chunk_id for e in ops.upserts],
                "delete_ids": list(ops.deletes),
            }
            self.session.add(source)

    # -- knowledge bases --------------------------------------------------------------------
    def create_kb(
        self, org_id: str, agent_id: str, data: KnowledgeBaseCreate, actor: str
    ) -> KnowledgeBase:
        if repo.get_kb_by_name(self.session, agent_id, data.name) is not None:
            raise ConflictError(f"agent '{agent_id}' already has a knowledge base '{data.name}'")
        kb = KnowledgeBase(id=new_id("kb"), org_id=org_id, agent_id=agent_id, name=data.name)
        self.session.add(kb)
        record_audit(
            self.session,
            actor=actor,
            action="knowledge.base.create",
            target=agent_target(agent_id, "kb", kb.id),
            org_id=org_id,
            detail={"name": data.name},
        )
        return kb

    def ensure_kb(self, org_id: str, agent_id: str, name: str, actor: str) -> KnowledgeBase:
        kb = repo.get_kb_by_name(self.session, agent_id, name)
        if kb is None:
            kb = self.create_kb(org_id, agent_id, KnowledgeBaseCreate(name=name), actor)
            self.session.flush()
        return kb

    def require_kb(self, kb_id: str) -> KnowledgeBase:
        kb = repo.get_kb(self.session, kb_id)
        if kb is None:
            raise NotFoundError(f"knowledge base '{kb_id}' does not exist")
        return kb

    # -- sources ------------------------------------------------------------------------------
    def get_source(self, source_id: str) -> KnowledgeSource | None:
        return repo.get_source(self.session, source_id)

    def require_source(self, source_id: str) -> KnowledgeSource:
        source = repo.get_source(self.session, source_id)
        if source is None:
            raise NotFoundError(f"knowledge source '{source_id}' does not exist")
        return source

    def add_source(
        self, org_id: str, agent_id: str, data: SourceCreate, actor: str
    ) -> KnowledgeSource:
        kb = self.ensure_kb(org_id, agent_id, data.kb, actor)
        if repo.get_source_by_name(self.session, kb.id, data.name) is not None:
            raise ConflictError(
                f"knowledge base '{kb.name}' already has a source named '{data.name}'; "
                "update it (PATCH /v1/knowledge/sources/{id}) or pick another name"
            )
        interval = data.refresh_interval_s
        if (
            interval is None
            and data.kind == "url"
            and "refresh_interval_s" not in (data.model_fields_set)
        ):
            interval = DEFAULT_URL_INTERVAL_S
        if (
            interval is not None
            and data.max_staleness_s is not None
            and data.max_staleness_s < interval
        ):
            raise InvalidInputError(
                f"max_staleness_s ({data.max_staleness_s}) is shorter than the refresh interval "
                f"({interval})"
            )
        source = KnowledgeSource(
            id=new_id("src"),
            org_id=org_id,
            agent_id=agent_id,
            kb_id=kb.id,
            kind=data.kind,
            name=data.name,
            url=data.url,
            origin_path=data.origin_path if data.kind == "file" else None,
            refresh_interval_s=interval,
            max_staleness_s=data.max_staleness_s,
            created_by=actor,
            schedule_synced=False,
        )
        self.session.add(source)
        if data.kind in ("file", "text"):
            self._store_upload(
                source, data.text, data.content_base64, data.filename, data.content_type
            )
        record_audit(
            self.session,
            actor=actor,
            action="knowledge.source.create",
            target=agent_target(agent_id, "source", source.id),
            org_id=org_id,
            detail={"kind": data.kind, "name": data.name, "kb": kb.name},
        )
        return source

    def _store_upload(
        self,
        source: KnowledgeSource,
        text: str | None,
        content_base64: str | None,
        filename: str | None,
        content_type: str | None,
    ) -> bool:
        """Store uploaded content as the source's desired version; True if it changed."""
        if source.kind == "text":
            if text is None:
                return False
            raw, kind, name = text.encode(), "text/markdown", None
        else:
            if content_base64 is None:
                return False
            name = filename or source.filename
            if not name:
                raise InvalidInputError("a file upload needs 'filename'")
            raw, kind = decode_upload(content_base64), content_type or content_type_for(name)
            if kind not in CONTENT_TYPES.values():
                raise InvalidInputError(
                    f"unsupported content type '{kind}'; use one of "
                    f"{sorted(set(CONTENT_TYPES.values()))}"
                )
        digest = sha256_hex(raw)
        source.filename = name
        source.content_type = kind
        if digest == source.desired_hash:
            return False
        if repo.get_blob(self.session, source.id, digest) is None:
            self.session.add(
                KnowledgeBlob(
                    source_id=source.id,
                    content_hash=digest,
                    content=raw,
                    content_type=kind,
                    filename=name,
                    fetched_at=utcnow(),
                )
            )
        source.desired_hash = digest
        source.updated_at = utcnow()
        return True

    def update_source(
        self, source_id: str, data: SourceUpdate, actor: str
    ) -> tuple[KnowledgeSource, bool, bool]:
        """Apply an update; returns (source, content changed, schedule changed)."""
        source = self.require_source(source_id)
        given = data.model_fields_set
        schedule_changed = False
        if "name" in given and data.name and data.name != source.name:
            if repo.get_source_by_name(self.session, source.kb_id, data.name) is not None:
                raise ConflictError(f"another source in this base is named '{data.name}'")
            source.name = data.name
        if "refresh_interval_s" in given and data.refresh_interval_s != source.refresh_interval_s:
            source.refresh_interval_s = data.refresh_interval_s
            schedule_changed = True
        if "max_staleness_s" in given:
            source.max_staleness_s = data.max_staleness_s
        i, m = source.refresh_interval_s, source.max_staleness_s
        if i is not None and m is not None and m < i:
            raise InvalidInputError(
                f"max_staleness_s ({m}) is shorter than refresh_interval_s ({i})"
            )
        content_changed = False
        if source.kind == "url" and "url" in given and data.url and data.url != source.url:
            if not data.url.lower().startswith(("http://", "https://")):
                raise InvalidInputError("url must start with http:// or https://")
            source.url = data.url
            source.etag = source.last_modified = None  # validators belong to the old URL
            content_changed = True
        elif source.kind in ("file", "text"):
            if source.kind == "file" and "origin_path" in given:
                source.origin_path = data.origin_path
            content_changed = self._store_upload(
                source, data.text, data.content_base64, data.filename, data.content_type
            )
        elif data.text is not None or data.content_base64 is not None:
            raise InvalidInputError("a url source takes 'url', not uploaded content")
        if schedule_changed:
            source.schedule_synced = False
        source.updated_at = utcnow()
        self.session.add(source)
        record_audit(
            self.session,
            actor=actor,
            action="knowledge.source.update",
            target=agent_target(source.agent_id, "source", source.id),
            org_id=source.org_id,
            detail={
                "fields": sorted(given - {"content_base64", "text"}),
                "content_changed": content_changed,
            },
        )
        return source, content_changed, schedule_changed

    def delete_source(self, source_id: str, actor: str) -> KnowledgeSource:
        source = self.require_source(source_id)
        chunk_ids = repo.chunk_ids_for_source(self.session, source.id)
        repo.delete_source_rows(self.session, source.id)
        SqlKeyValueStore(self.session, source_namespace(source.id)).clear()
        kb = repo.get_kb(self.session, source.kb_id)
        if kb is not None:
            self.session.flush()
            self._bump_kb(kb)
        self.session.delete(source)
        resolve_subject(
            self.session,
            subject=knowledge_subject(source.id),
            kinds=(KNOWLEDGE_FAILING, KNOWLEDGE_STALE),
            resolution="the source was deleted",
            actor=actor,
        )
        self._queue(
            IndexOps(
                source_id=source.id,
                tenant=source.org_id,
                partition=source.kb_id,
                token=uuid.uuid4().hex,
                deletes=chunk_ids,
            ),
            None,
        )
        record_audit(
            self.session,
            actor=actor,
            action="knowledge.source.delete",
            target=agent_target(source.agent_id, "source", source.id),
            org_id=source.org_id,
            detail={"name": source.name, "chunks_removed": len(chunk_ids)},
        )
        return source

    def record_refresh_request(self, source: KnowledgeSource, actor: str, force: bool) -> None:
        """A manual refresh is audited when asked for, whether or not it can start now."""
        record_audit(
            self.session,
            actor=actor,
            action="knowledge.source.refresh_requested",
            target=agent_target(source.agent_id, "source", source.id),
            org_id=source.org_id,
            detail={"force": force},
        )

    def public(
        self, source: KnowledgeSource, now: datetime, kb_name: str | None = None
    ) -> SourcePublic:
        if kb_name is None:
            kb = repo.get_kb(self.session, source.kb_id)
            kb_name = kb.name if kb else "?"
        fresh = judge(
            verified_at=source.verified_at,
            max_staleness_s=source.max_staleness_s,
            failure_count=source.failure_count,
            now=now,
        )
        return SourcePublic(
            **source.model_dump(
                include={
                    "id", "org_id", "agent_id", "kb_id", "kind", "name", "url", "filename",
                    "origin_path", "refresh_interval_s", "max_staleness_s", "status", "verified_at",
                    "fetched_at", "last_attempt_at", "last_error", "failure_count",
                    "chunk_count", "document_count", "content_hash", "schedule_synced",
                    "created_at", "updated_at",
                }
            ),
            kb_name=kb_name,
            freshness=fresh.state,
            age_s=fresh.age_s,
            index_pending=source.index_outbox is not None,
        )  # fmt: skip

    def list_public(self, agent_id: str, now: datetime) -> list[SourcePublic]:
        names = {kb.id: kb.name for kb in repo.list_kbs(self.session, agent_id)}
        return [
            self.public(s, now, names.get(s.kb_id, "?"))
            for s in repo.list_sources(self.session, agent_id=agent_id)
        ]

    # -- refresh steps ------------------------------------------------------------------------
    def fetch(
        self, source_id: str, fetcher: SourceFetcher, checked_at: datetime, force: bool = False
    ) -> FetchOutcome:
        """Fetch the source's current content; store it when it changed. Raises the
        fetcher's ``FetchFailedError`` untouched (the caller decides about retries)."""
        source = repo.get_source(self.session, source_id)
        if source is None:
            return FetchOutcome("gone")
        source.last_attempt_at = checked_at
        self.session.add(source)
        if source.kind in ("file", "text"):
            desired = source.desired_hash
            if desired is None:
                raise UnreadableContentError(f"source {source.id} has no uploaded content")
            changed = force or desired != source.content_hash
            return FetchOutcome("changed" if changed else "unchanged", desired)
        assert source.url is not None
        result = fetcher.fetch(
            FetchRequest(
                url=source.url,
                etag=None if force else source.etag,
                last_modified=None if force else source.last_modified,
            )
        )
        if result.not_modified:
            return FetchOutcome("unchanged", source.content_hash, not_modified=True)
        digest = sha256_hex(result.content)
        if digest == source.content_hash and not force:
            # Same bytes under new validators: remember them so the next check can be a 304.
            source.etag, source.last_modified = result.etag, result.last_modified
            source.fetched_at = checked_at
            return FetchOutcome("unchanged", digest)
        blob = repo.get_blob(self.session, source.id, digest)
        if blob is None:
            blob = KnowledgeBlob(source_id=source.id, content_hash=digest, content=result.content)
        blob.content_type = result.content_type
        blob.etag, blob.last_modified = result.etag, result.last_modified
        blob.fetched_at = checked_at
        self.session.add(blob)
        return FetchOutcome("changed", digest)

    def _bump_kb(self, kb: KnowledgeBase) -> None:
        kb.version += 1
        kb.vocabulary = vocabulary_terms(repo.kb_chunk_texts(self.session, kb.id))
        kb.updated_at = utcnow()
        self.session.add(kb)

    def mark_fresh(self, source_id: str, checked_at: datetime) -> KnowledgeSource | None:
        source = repo.get_source(self.session, source_id)
        if source is None:
            return None
        source.status = "fresh"
        source.verified_at = checked_at
        source.last_attempt_at = checked_at
        source.failure_count = 0
        source.last_error = None
        source.updated_at = utcnow()
        self.session.add(source)
        resolve_subject(
            self.session,
            subject=knowledge_subject(source.id),
            kinds=(KNOWLEDGE_FAILING, KNOWLEDGE_STALE),
            resolution="the source refreshed successfully",
            actor="system:knowledge-refresh",
        )
        return source

    def mark_failing(
        self, source_id: str, error: str, at: datetime
    ) -> tuple[KnowledgeSource | None, bool]:
        """Record a failed refresh; the chunks stay. Returns (source, first failure in a row)."""
        source = repo.get_source(self.session, source_id)
        if source is None:
            return None, False
        first = source.failure_count == 0
        source.failure_count += 1
        source.last_error = error[:2000]
        source.last_attempt_at = at
        fresh = judge(
            verified_at=source.verified_at,
            max_staleness_s=source.max_staleness_s,
            failure_count=source.failure_count,
            now=at,
        )
        # Past its staleness budget a source is stale whatever the fetch did; otherwise failing.
        source.status = "stale" if fresh.state == "stale" else "failing"
        source.updated_at = utcnow()
        self.session.add(source)
        return source, first

    def sweep(self, now: datetime) -> tuple[list[KnowledgeSource], int]:
        """Mark sources past their maximum staleness as stale; returns (newly stale, checked)."""
        newly: list[KnowledgeSource] = []
        checked = repo.sources_with_staleness(self.session)
        for source in checked:
            fresh = judge(
                verified_at=source.verified_at,
                max_staleness_s=source.max_staleness_s,
                failure_count=source.failure_count,
                now=now,
            )
            if fresh.state == "stale" and source.status != "stale":
                source.status = "stale"
                source.updated_at = utcnow()
                self.session.add(source)
                newly.append(source)
        return newly, len(checked)


class KnowledgeIndexing(KnowledgeService):
    """The knowledge rules that write the search index: ingesting a source's content and
    applying or recovering its queued index writes. Both ports are required."""

    def __init__(self, session: Session, index: KnowledgeIndex, embedder: Embedder) -> None:
        super().__init__(session)
        self._index = index
        self._embedder = embedder

    def apply_pending_index(self) -> list[IndexOps]:
        """Apply index writes queued by this unit of work; call after the commit."""
        applied: list[IndexOps] = []
        for ops in self.pending:
            apply_index_ops(self._index, ops)
            applied.append(ops)
        self.pending.clear()
        return applied

    def recover_outbox(self, source_id: str) -> bool:
        """Finish index writes a crashed unit of work committed but never applied."""
        source = repo.get_source(self.session, source_id)
        if source is None or not source.index_outbox:
            return False
        outbox = dict(source.index_outbox)
        upsert_ids = [str(i) for i in outbox.get("upsert_ids", [])]
        rows = repo.chunks_by_ids(self.session, upsert_ids)
        texts = [index_text(c.title, c.section, c.text) for c in rows.values()]
        vectors = self._embedder.embed(texts)
        ops = IndexOps(
            source_id=source.id,
            tenant=source.org_id,
            partition=source.kb_id,
            token=str(outbox.get("token")),
            upserts=[IndexEntry(cid, vectors[i], texts[i]) for i, cid in enumerate(rows.keys())],
            deletes=[str(i) for i in outbox.get("delete_ids", [])],
        )
        apply_index_ops(self._index, ops)
        source.index_outbox = None
        self.session.add(source)
        log.info("recovered %d index writes for source %s", len(ops.upserts), source.id)
        return True

    def ingest(
        self,
        source_id: str,
        content_hash: str,
        ingestor: Ingestor,
        *,
        force: bool = False,
        progress: ProgressFn | None = None,
    ) -> IngestOutcome | None:
        """Re-chunk and re-embed only what changed; None when the source is gone."""
        self.recover_outbox(source_id)
        source = repo.get_source(self.session, source_id)
        if source is None:
            return None
        blob = repo.get_blob(self.session, source.id, content_hash)
        if blob is None:
            raise UnreadableContentError(
                f"content {content_hash[:12]} of source {source.id} is no longer stored"
            )
        kb = self.require_kb(source.kb_id)
        docstore = SqlKeyValueStore(self.session, source_namespace(source.id))
        existing = {c.id: c for c in repo.chunks_for_source(self.session, source.id)}
        if force:
            docstore.clear()
        plan = ingestor.plan(
            SourceDocument(
                source_id=source.id,
                source_name=source.name,
                kind=source.kind,
                content=blob.content,
                content_type=blob.content_type or source.content_type,
                filename=blob.filename or source.filename,
                url=source.url,
                fetched_at=blob.fetched_at,
            ),
            docstore,
            set() if force else set(existing),
            progress,
        )
        new_ids = {d.chunk_id for d in plan.chunks}
        affected = (
            set(existing)
            if force
            else {cid for cid, c in existing.items() if c.doc_key in plan.removed_doc_keys}
        )
        # Documents that vanished or changed lose the chunks no new chunk replaces.
        removed = sorted(affected - new_ids)
        now = utcnow()
        upserts: list[IndexEntry] = []
        added = 0
        for draft in plan.chunks:
            row = existing.get(draft.chunk_id)
            if row is None:
                row = KnowledgeChunk(
                    id=draft.chunk_id,
                    org_id=source.org_id,
                    agent_id=source.agent_id,
                    kb_id=source.kb_id,
                    source_id=source.id,
                    doc_key=draft.doc_key,
                    text=draft.text,
                    content_hash=draft.content_hash,
                    fetched_at=blob.fetched_at,
                )
                added += 1
            row.doc_key = draft.doc_key
            row.section_order = draft.section_order
            row.position = draft.position
            row.title = draft.title[:300]
            row.section = draft.section[:500]
            row.updated_at = now
            self.session.add(row)
            if draft.vector is not None:
                upserts.append(
                    IndexEntry(
                        draft.chunk_id, draft.vector, index_text(row.title, row.section, row.text)
                    )
                )
        repo.delete_chunks(self.session, removed)
        self.session.flush()
        for doc_key, order in plan.doc_order.items():
            repo.set_section_order(self.session, source.id, doc_key, order)
        repo.set_chunks_fetched_at(self.session, source.id, blob.fetched_at)
        source.content_hash = content_hash
        source.fetched_at = blob.fetched_at
        if source.kind == "url":
            source.etag, source.last_modified = blob.etag, blob.last_modified
        source.chunk_count = repo.count_chunks(self.session, source.id)
        source.document_count = plan.documents_total
        source.updated_at = now
        self.session.add(source)
        repo.delete_blobs_except(self.session, source.id, [content_hash, source.desired_hash])
        self._bump_kb(kb)
        if upserts or removed or force:
            self._queue(
                IndexOps(
                    source_id=source.id,
                    tenant=source.org_id,
                    partition=source.kb_id,
                    token=uuid.uuid4().hex,
                    upserts=upserts,
                    deletes=removed,
                ),
                source,
            )
        return IngestOutcome(
            chunks_added=added,
            chunks_removed=len(removed),
            chunks_kept=source.chunk_count - added,
            embedded=plan.embedded,
            reused=plan.reused,
            documents=plan.documents_total,
            documents_skipped=plan.documents_skipped,
            chunk_count=source.chunk_count,
        )


def rebuild_stale_keyword_terms(session: Session, index: KnowledgeIndex) -> list[str]:
    """Re-stem the keyword terms of every knowledge base whose index partition was stemmed by
    another stemmer (an upgrade changed it), from the chunk texts; returns the bases rebuilt.
    Idempotent and cheap when nothing is stale: one meta read per base."""
    if not isinstance(index, RestemmableIndex):
        return []
    rebuilt: list[str] = []
    for org_id, kb_id in repo.all_kb_partitions(session):
        if not index.keyword_terms_stale(org_id, kb_id):
            continue
        texts = {
            c.id: index_text(c.title, c.section, c.text) for c in repo.kb_chunks(session, kb_id)
        }
        count = index.rebuild_keyword_terms(org_id, kb_id, texts)
        log.info("re-stemmed the keyword terms of %d chunks of knowledge base %s", count, kb_id)
        rebuilt.append(kb_id)
    return rebuilt


def apply_index_ops(index: KnowledgeIndex, ops: IndexOps) -> None:
    """Idempotent: chunk ids are content-derived, so re-applying converges."""
    if ops.drop_partition:
        index.drop_partition(ops.tenant, ops.partition)
        return
    if ops.upserts:
        index.upsert(ops.tenant, ops.partition, ops.upserts)
    if ops.deletes:
        index.delete(ops.tenant, ops.partition, ops.deletes)
