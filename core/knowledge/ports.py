"""Protocols the knowledge domain depends on; connectors implement them.

- ``KnowledgeIndex``: dense and keyword search over one knowledge base's chunks. A partition is
  one knowledge base and a tenant one organization, so one tenant's chunks can never be read
  through another's partition. Adapters: embedded (HNSW + sparse BM25 under the data dir) and
  Weaviate (multi-tenant, native hybrid).
- ``SourceFetcher``: conditional fetch of a URL (ETag / If-Modified-Since).
- ``Ingestor``: content -> section documents -> chunks with embeddings, skipping documents the
  docstore has seen unchanged.
- ``KeyValueStore``: the persisted docstore the ingestor keeps its document hashes in.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from core.ports import Vector


@dataclass(frozen=True)
class IndexEntry:
    chunk_id: str
    vector: Vector
    text: str


@dataclass(frozen=True)
class IndexHit:
    chunk_id: str
    score: float  # dense: cosine similarity; keyword: BM25 (higher is better); hybrid: fused


class KnowledgeIndex(Protocol):
    def upsert(self, tenant: str, partition: str, entries: Sequence[IndexEntry]) -> None: ...

    def delete(self, tenant: str, partition: str, chunk_ids: Sequence[str]) -> None: ...

    def drop_partition(self, tenant: str, partition: str) -> None: ...

    def dense(self, tenant: str, partition: str, vector: Vector, k: int) -> list[IndexHit]: ...

    def keyword(self, tenant: str, partition: str, text: str, k: int) -> list[IndexHit]: ...

    def count(self, tenant: str, partition: str) -> int: ...


@runtime_checkable
class NativeHybridIndex(Protocol):
    """An index that fuses keyword and dense search itself (one round trip to a server)."""

    def hybrid(
        self, tenant: str, partition: str, text: str, vector: Vector, k: int
    ) -> list[IndexHit]: ...


@runtime_checkable
class RestemmableIndex(Protocol):
    """An index that stems keyword terms itself and can re-stem them when its stemmer changes
    (it keeps no text, so the chunk texts come from the knowledge tables)."""

    def keyword_terms_stale(self, tenant: str, partition: str) -> bool: ...

    def rebuild_keyword_terms(
        self, tenant: str, partition: str, texts: Mapping[str, str]
    ) -> int: ...


class FetchFailedError(Exception):
    """The source could not be fetched; ``retryable`` says whether trying again may help."""

    def __init__(self, detail: str, *, retryable: bool) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retryable = retryable


@dataclass(frozen=True)
class FetchRequest:
    url: str
    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True)
class FetchResult:
    not_modified: bool
    content: bytes = b""
    content_type: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    status_code: int = 200


class SourceFetcher(Protocol):
    def fetch(self, request: FetchRequest) -> FetchResult:
        """Raise ``FetchFailedError`` on any failure; never return partial content."""
        ...


class KeyValueStore(Protocol):
    def put(self, key: str, val: dict[str, Any], collection: str) -> None: ...

    def get(self, key: str, collection: str) -> dict[str, Any] | None: ...

    def get_all(self, collection: str) -> dict[str, dict[str, Any]]: ...

    def delete(self, key: str, collection: str) -> bool: ...


@dataclass(frozen=True)
class SourceDocument:
    """One version of a source's content, as fetched or uploaded."""

    source_id: str
    source_name: str
    kind: str
    content: bytes
    content_type: str | None
    filename: str | None
    url: str | None
    fetched_at: datetime


@dataclass(frozen=True)
class ChunkDraft:
    chunk_id: str
    doc_key: str
    section_order: int
    position: int
    title: str
    section: str
    text: str
    content_hash: str
    vector: Vector | None  # None: the chunk exists already (same id), its vector is indexed


@dataclass
class IngestPlan:
    """What changed: chunks of new or changed documents, documents to remove, order of all."""

    chunks: list[ChunkDraft] = field(default_factory=list)
    removed_doc_keys: set[str] = field(default_factory=set)
    doc_order: dict[str, int] = field(default_factory=dict)  # every current doc -> its order
    documents_total: int = 0
    documents_skipped: int = 0
    embedded: int = 0
    reused: int = 0


ProgressFn = Callable[[int, int], None]


class UnreadableContentError(Exception):
    """Content that cannot be parsed (a broken PDF, an unknown format): retrying won't help."""


class Ingestor(Protocol):
    def plan(
        self,
        document: SourceDocument,
        docstore: KeyValueStore,
        known_chunk_ids: set[str],
        progress: ProgressFn | None = None,
    ) -> IngestPlan: ...
