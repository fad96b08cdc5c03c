"""Builds the knowledge connectors a composition root asks for: the search index (Weaviate when
a URL is given, else the embedded index under the data dir), the URL fetcher and the ingestor.

Reads no settings itself: the API lifespan, the worker and the CLI pass what they read.
"""

from __future__ import annotations

from pathlib import Path

from connectors.sources.url import HttpSourceFetcher
from connectors.vectors.knowledge_embedded import EmbeddedKnowledgeIndex
from core.egress import EgressPolicy
from core.knowledge.ports import Ingestor, KnowledgeIndex
from core.ports import Embedder


def build_knowledge_index(data_dir: Path, weaviate_url: str | None = None) -> KnowledgeIndex:
    if weaviate_url:
        from connectors.vectors.weaviate import WeaviateKnowledgeIndex, connect

        return WeaviateKnowledgeIndex(connect(weaviate_url))
    return EmbeddedKnowledgeIndex(Path(data_dir) / "knowledge")


def build_fetcher(policy: EgressPolicy) -> HttpSourceFetcher:
    """The URL fetcher, guarded by ``policy`` (``core.egress.egress_policy(settings)``)."""
    return HttpSourceFetcher(policy)


def build_ingestor(embedder: Embedder) -> Ingestor:
    # Imported here: llama-index costs ~2 s to import and only the worker ingests.
    from connectors.llamaindex import LlamaIndexIngestor

    return LlamaIndexIngestor(embedder)
