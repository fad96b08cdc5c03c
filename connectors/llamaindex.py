"""Ingestion through llama-index: section documents, chunks, embeddings, and a docstore that
skips documents it has seen unchanged.

- ``BacklineEmbedding`` wraps any ``core.ports.Embedder`` (the local MiniLM) as a llama-index
  ``BaseEmbedding``; nothing is downloaded.
- ``section_documents`` turns one source version into one llama-index ``Document`` per section
  (markdown headings, HTML headings, PDF pages), each with a stable id, so a change to one
  section re-chunks only that section.
- ``LlamaIndexIngestor`` runs an ``IngestionPipeline`` (sentence splitter, stable chunk ids,
  embeddings of new chunks only) with a ``KVDocumentStore`` persisted in the application
  database (``UPSERTS_AND_DELETE``: unchanged documents are skipped, changed and vanished ones
  reported for deletion).

It computes an ``IngestPlan``; it never writes chunk rows or the search index (the knowledge
service does, in its unit of work).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.bridge.pydantic import PrivateAttr
from llama_index.core.ingestion import DocstoreStrategy, IngestionPipeline
from llama_index.core.node_parser import MarkdownNodeParser, SentenceSplitter
from llama_index.core.schema import BaseNode, Document, TransformComponent
from llama_index.core.storage.docstore.keyval_docstore import KVDocumentStore
from llama_index.core.storage.kvstore.types import DEFAULT_COLLECTION, BaseKVStore
from llama_index.core.vector_stores.types import (
    BasePydanticVectorStore,
    VectorStoreQuery,
    VectorStoreQueryResult,
)

from connectors.sources.file import extract
from core.knowledge.ports import (
    ChunkDraft,
    IngestPlan,
    KeyValueStore,
    ProgressFn,
    SourceDocument,
    UnreadableContentError,
)
from core.knowledge.text import index_text, sha256_hex
from core.ports import Embedder

# Sized for voice: a chunk is read into the agent's prompt whole, so a few sentences; MiniLM
# reads at most 256 word pieces, which 160 tiktoken tokens plus the section path stay under.
CHUNK_TOKENS = 160
CHUNK_OVERLAP = 24
EMBED_BATCH = 32


class BacklineEmbedding(BaseEmbedding):
    """Any Backline ``Embedder`` as a llama-index embedding model (offline, unit vectors)."""

    _embedder: Embedder = PrivateAttr()

    def __init__(self, embedder: Embedder, batch_size: int = EMBED_BATCH) -> None:
        super().__init__(model_name="backline-minilm-l6-v2", embed_batch_size=batch_size)
        self._embedder = embedder

    @classmethod
    def class_name(cls) -> str:
        return "BacklineEmbedding"

    def _get_query_embedding(self, query: str) -> list[float]:
        return [float(x) for x in self._embedder.embed([query])[0]]

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._get_query_embedding(text)

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return [[float(x) for x in row] for row in self._embedder.embed(texts)]


class _KVAdapter(BaseKVStore):
    """Backline's ``KeyValueStore`` (rows in the application database) for llama-index."""

    def __init__(self, store: KeyValueStore) -> None:
        self._store = store

    def put(self, key: str, val: dict[str, Any], collection: str = DEFAULT_COLLECTION) -> None:
        self._store.put(key, val, collection)

    async def aput(
        self, key: str, val: dict[str, Any], collection: str = DEFAULT_COLLECTION
    ) -> None:
        self.put(key, val, collection)

    def get(self, key: str, collection: str = DEFAULT_COLLECTION) -> dict[str, Any] | None:
        return self._store.get(key, collection)

    async def aget(self, key: str, collection: str = DEFAULT_COLLECTION) -> dict[str, Any] | None:
        return self.get(key, collection)

    def get_all(self, collection: str = DEFAULT_COLLECTION) -> dict[str, dict[str, Any]]:
        return self._store.get_all(collection)

    async def aget_all(self, collection: str = DEFAULT_COLLECTION) -> dict[str, dict[str, Any]]:
        return self.get_all(collection)

    def delete(self, key: str, collection: str = DEFAULT_COLLECTION) -> bool:
        return self._store.delete(key, collection)

    async def adelete(self, key: str, collection: str = DEFAULT_COLLECTION) -> bool:
        return self.delete(key, collection)


class _DeletionRecorder(BasePydanticVectorStore):
    """The pipeline's vector store: records which documents it would delete. Chunk rows and the
    real search index are written by the knowledge service after this plan is committed."""

    stores_text: bool = False
    _deleted: list[str] = PrivateAttr(default_factory=list)

    @property
    def client(self) -> Any:
        return None

    @property
    def deleted(self) -> list[str]:
        return list(self._deleted)

    def add(self, nodes: Sequence[BaseNode], **kwargs: Any) -> list[str]:
        return [n.node_id for n in nodes]

    def delete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        self._deleted.append(ref_doc_id)

    def query(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        raise NotImplementedError("the deletion recorder is not searchable")


class _StableChunkIds(TransformComponent):
    """Chunk ids from (source, section, content): an unchanged chunk keeps its id, so its row
    and its vector are reused instead of rewritten."""

    source_id: str

    def __call__(self, nodes: Sequence[BaseNode], **kwargs: Any) -> Sequence[BaseNode]:
        seen: dict[tuple[str, str], int] = {}
        positions: dict[str, int] = {}
        for node in nodes:
            doc_key = str(node.metadata["doc_key"])
            text = node.get_content()
            content_hash = sha256_hex(text)
            occurrence = seen.get((doc_key, content_hash), 0)
            seen[(doc_key, content_hash)] = occurrence + 1
            node.id_ = sha256_hex(f"{self.source_id}|{doc_key}|{content_hash}|{occurrence}")[:32]
            node.metadata["content_hash"] = content_hash
            node.metadata["position"] = positions.get(doc_key, 0)
            positions[doc_key] = positions.get(doc_key, 0) + 1
        return nodes


class _EmbedNewChunks(TransformComponent):
    """Embeds only chunks whose id is not indexed yet, in batches, reporting progress."""

    _model: BaseEmbedding = PrivateAttr()
    _known: set[str] = PrivateAttr()
    _progress: ProgressFn | None = PrivateAttr()
    _batch: int = PrivateAttr()
    embedded: int = 0
    reused: int = 0

    def __init__(
        self, model: BaseEmbedding, known: set[str], progress: ProgressFn | None, batch: int
    ) -> None:
        super().__init__()
        self._model = model
        self._known = known
        self._progress = progress
        self._batch = batch

    def __call__(self, nodes: Sequence[BaseNode], **kwargs: Any) -> Sequence[BaseNode]:
        todo = [n for n in nodes if n.node_id not in self._known]
        self.reused += len(nodes) - len(todo)
        for start in range(0, len(todo), self._batch):
            batch = todo[start : start + self._batch]
            texts = [
                index_text(
                    str(n.metadata.get("title", "")),
                    str(n.metadata.get("section", "")),
                    n.get_content(),
                )
                for n in batch
            ]
            for node, vector in zip(
                batch, self._model.get_text_embedding_batch(texts), strict=True
            ):
                node.embedding = vector
            self.embedded += len(batch)
            if self._progress is not None:
                self._progress(self.embedded, len(todo))
        return nodes


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:80] or "intro"


def section_documents(document: SourceDocument) -> list[Document]:
    """One ``Document`` per section, ids ``{source}:{section slug}``, in reading order."""
    extracted = extract(document.content, document.content_type, document.filename or document.url)
    title = extracted.title or document.source_name
    parsed = MarkdownNodeParser().get_nodes_from_documents([Document(text=extracted.markdown)])
    docs: list[Document] = []
    keys: dict[str, int] = {}
    for node in parsed:
        text = node.get_content().strip()
        heading = ""
        if text.startswith("#"):
            first, _, text = text.partition("\n")
            heading = first.lstrip("#").strip()
            text = text.strip()
        if not text:
            continue  # a heading with nothing under it
        path = [p for p in str(node.metadata.get("header_path", "/")).split("/") if p]
        if path and path[0] == title:
            path = path[1:]  # the document title is the chunk's title, not part of its section
        if heading and heading != title:
            path.append(heading)
        section = " > ".join(path)
        base = _slug(section)
        keys[base] = keys.get(base, 0) + 1
        doc_key = base if keys[base] == 1 else f"{base}-{keys[base]}"
        docs.append(
            Document(
                text=text,
                id_=f"{document.source_id}:{doc_key}",
                metadata={"doc_key": doc_key, "section": section, "title": title},
                excluded_embed_metadata_keys=["doc_key", "title", "section"],
                excluded_llm_metadata_keys=["doc_key", "title", "section"],
            )
        )
    if not docs:
        raise UnreadableContentError("the content has no text to index")
    return docs


class LlamaIndexIngestor:
    def __init__(
        self,
        embedder: Embedder,
        chunk_tokens: int = CHUNK_TOKENS,
        chunk_overlap: int = CHUNK_OVERLAP,
        batch_size: int = EMBED_BATCH,
    ) -> None:
        self._model = BacklineEmbedding(embedder, batch_size=batch_size)
        self._chunk_tokens = chunk_tokens
        self._chunk_overlap = chunk_overlap
        self._batch = batch_size

    def plan(
        self,
        document: SourceDocument,
        docstore: KeyValueStore,
        known_chunk_ids: set[str],
        progress: ProgressFn | None = None,
    ) -> IngestPlan:
        docs = section_documents(document)
        recorder = _DeletionRecorder()
        embed = _EmbedNewChunks(self._model, known_chunk_ids, progress, self._batch)
        pipeline = IngestionPipeline(
            transformations=[
                SentenceSplitter(chunk_size=self._chunk_tokens, chunk_overlap=self._chunk_overlap),
                _StableChunkIds(source_id=document.source_id),
                embed,
            ],
            docstore=KVDocumentStore(_KVAdapter(docstore)),
            vector_store=recorder,
            docstore_strategy=DocstoreStrategy.UPSERTS_AND_DELETE,
            disable_cache=True,
        )
        # The docstore keeps each section document (its delete path needs the stored node).
        nodes = pipeline.run(documents=docs, store_doc_text=True)
        order = {str(d.metadata["doc_key"]): i for i, d in enumerate(docs)}
        prefix = f"{document.source_id}:"
        chunks = [
            ChunkDraft(
                chunk_id=n.node_id,
                doc_key=str(n.metadata["doc_key"]),
                section_order=order[str(n.metadata["doc_key"])],
                position=int(n.metadata["position"]),
                title=str(n.metadata.get("title", "")),
                section=str(n.metadata.get("section", "")),
                text=n.get_content(),
                content_hash=str(n.metadata["content_hash"]),
                vector=(
                    np.asarray(n.embedding, dtype=np.float32) if n.embedding is not None else None
                ),
            )
            for n in nodes
        ]
        ran = {c.doc_key for c in chunks}
        return IngestPlan(
            chunks=chunks,
            removed_doc_keys={d.removeprefix(prefix) for d in recorder.deleted},
            doc_order=order,
            documents_total=len(docs),
            documents_skipped=len(docs) - len(ran),
            embedded=embed.embedded,
            reused=embed.reused,
        )
