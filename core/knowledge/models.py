"""Knowledge tables: knowledge bases, their sources, fetched content, chunks and the docstore.

Every row is scoped by ``org_id`` and ``agent_id``. Chunk rows are the source of truth for what a
knowledge base says; the search index (embedded or Weaviate) holds only ids, vectors and search
text, and is rebuilt from these rows when needed. Raw fetched content lives in
``knowledgeblob`` only for the current and the pending version of each source.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, LargeBinary, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from core.db import utcnow

SOURCE_KINDS = ("file", "url", "text")
SOURCE_STATUSES = ("pending", "fresh", "stale", "failing")


class KnowledgeBase(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("agent_id", "name", name="uq_knowledgebase_agent_name"),)

    id: str = Field(primary_key=True, max_length=40)
    org_id: str = Field(index=True, max_length=64)
    agent_id: str = Field(index=True, max_length=64)
    name: str = Field(max_length=100)
    # Bumped by every change to this base's chunks; readers cache per (id, version).
    version: int = 0
    # Terms of the chunk texts, for the speech-to-text normalizer's vocabulary-aware repairs.
    vocabulary: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class KnowledgeSource(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("kb_id", "name", name="uq_knowledgesource_kb_name"),)

    id: str = Field(primary_key=True, max_length=40)
    org_id: str = Field(index=True, max_length=64)
    agent_id: str = Field(index=True, max_length=64)
    kb_id: str = Field(index=True, max_length=40)
    kind: str = Field(max_length=8)
    name: str = Field(max_length=200)
    url: str | None = Field(default=None, max_length=2000)
    filename: str | None = Field(default=None, max_length=255)
    # Where the CLI read a file source from, so `backline kb refresh` can upload it again when
    # it changed on disk (the server never reads this path).
    origin_path: str | None = Field(default=None, max_length=1000)
    content_type: str | None = Field(default=None, max_length=100)
    refresh_interval_s: int | None = None
    max_staleness_s: int | None = None
    status: str = Field(default="pending", max_length=16, index=True)
    # Uploaded content waiting to be ingested (file and text sources).
    desired_hash: str | None = Field(default=None, max_length=64)
    # The content the current chunks came from.
    content_hash: str | None = Field(default=None, max_length=64)
    etag: str | None = Field(default=None, max_length=300)
    last_modified: str | None = Field(default=None, max_length=100)
    fetched_at: datetime | None = None
    # Last successful check (a 200 or a 304); freshness is judged from it at read time.
    verified_at: datetime | None = None
    last_attempt_at: datetime | None = None
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    failure_count: int = 0
    chunk_count: int = 0
    document_count: int = 0
    schedule_synced: bool = False
    # Index writes committed with the chunk rows but not yet applied to the search index
    # (an outbox): {"token", "upsert_ids", "delete_ids"}. A retry or the next refresh applies it.
    index_outbox: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    created_by: str = Field(default="system", max_length=128)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class KnowledgeBlob(SQLModel, table=True):
    __table_args__ = (
        UniqueConstraint("source_id", "content_hash", name="uq_knowledgeblob_source_hash"),
    )

    id: int | None = Field(default=None, primary_key=True)
    source_id: str = Field(index=True, max_length=40)
    content_hash: str = Field(max_length=64)
    content: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    content_type: str | None = Field(default=None, max_length=100)
    filename: str | None = Field(default=None, max_length=255)
    etag: str | None = Field(default=None, max_length=300)
    last_modified: str | None = Field(default=None, max_length=100)
    fetched_at: datetime = Field(default_factory=utcnow)


class KnowledgeChunk(SQLModel, table=True):
    __table_args__ = (Index("ix_knowledgechunk_source_doc", "source_id", "doc_key"),)

    id: str = Field(primary_key=True, max_length=40)
    org_id: str = Field(index=True, max_length=64)
    agent_id: str = Field(max_length=64)
    kb_id: str = Field(index=True, max_length=40)
    source_id: str = Field(max_length=40)
    doc_key: str = Field(max_length=200)
    section_order: int = 0
    position: int = 0
    title: str = Field(default="", max_length=300)
    section: str = Field(default="", max_length=500)
    text: str = Field(sa_column=Column(Text, nullable=False))
    content_hash: str = Field(max_length=64)
    fetched_at: datetime
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class KnowledgeKV(SQLModel, table=True):
    """The ingestion docstore (document hashes per source), persisted beside the chunks so
    API and worker machines share it and it commits in the same transaction."""

    __table_args__ = (
        UniqueConstraint("namespace", "collection", "key", name="uq_knowledgekv_key"),
    )

    id: int | None = Field(default=None, primary_key=True)
    namespace: str = Field(max_length=80)
    collection: str = Field(max_length=120)
    key: str = Field(max_length=300)
    value: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
