"""Hybrid retrieval for voice: normalize the heard query, search BM25 and dense, fuse by rank,
and serve only what is current.

Hot path: one small read of the agent's knowledge bases, the query embedding (cached per
normalized query), one dense and one keyword search per base, one indexed read of the chunk
rows with their sources. Freshness is judged here, at read time, with the injected clock: a
chunk whose source is past its maximum staleness is withheld and reported, never returned as
current. Never writes (recording the retrieval on a call is the caller's cheap append), never
calls an LLM or the network.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlmodel import Session

from core.db import utcnow
from core.knowledge import repository as repo
from core.knowledge.freshness import OUTDATED_FALLBACK, judge
from core.knowledge.fusion import Fused, rrf
from core.knowledge.normalize import Vocabulary, normalize
from core.knowledge.ports import IndexHit, KnowledgeIndex, NativeHybridIndex
from core.knowledge.schemas import KnowledgeAnswer, KnowledgeHit, WithheldHit
from core.knowledge.text import canonical_numbers
from core.ports import Embedder, Vector
from core.query_cache import CachedQueryEmbedder

Mode = Literal["hybrid", "dense", "keyword"]
CANDIDATES = 20
EMBED_CACHE_SIZE = 512


@dataclass(frozen=True)
class _Base:
    id: str
    org_id: str
    name: str
    version: int


class KnowledgeRetriever:
    """Process-wide (thread-safe caches); sessions arrive per call."""

    def __init__(
        self,
        embedder: Embedder,
        index: KnowledgeIndex,
        clock: Callable[[], datetime] = utcnow,
        candidates: int = CANDIDATES,
    ) -> None:
        self._embedder = embedder
        self._index = index
        self._clock = clock
        self._candidates = candidates
        self._lock = threading.Lock()
        self._queries = CachedQueryEmbedder(embedder, EMBED_CACHE_SIZE)
        self._vocab: dict[str, Vocabulary] = {}

    # -- caches -----------------------------------------------------------------------------
    def _embed(self, text: str) -> Vector:
        return self._queries.embed_query(text)

    def _vocabulary(self, session: Session, bases: list[_Base]) -> Vocabulary:
        """The bases' vocabulary, rebuilt only when one of them changed (its version moved)."""
        stamp = "|".join(f"{b.id}@{b.version}" for b in sorted(bases, key=lambda b: b.id))
        with self._lock:
            cached = self._vocab.get(stamp)
        if cached is not None:
            return cached
        terms: list[str] = []
        for base in bases:
            terms.extend(repo.kb_vocabulary(session, base.id))
        vocab = Vocabulary.build(terms)
        with self._lock:
            if len(self._vocab) > 256:
                self._vocab.clear()  # stale stamps of bases that changed since
            self._vocab[stamp] = vocab
        return vocab

    # -- search -----------------------------------------------------------------------------
    def search(
        self,
        session: Session,
        agent_id: str,
        query: str,
        *,
        k: int = 5,
        kb: str | None = None,
        use_normalizer: bool = True,
        mode: Mode = "hybrid",
        now: datetime | None = None,
    ) -> KnowledgeAnswer:
        started = time.perf_counter()
        bases = [
            _Base(*row)
            for row in repo.kb_versions(session, agent_id)
            if kb is None or row[2] == kb or row[0] == kb
        ]
        if use_normalizer:
            heard = normalize(query, self._vocabulary(session, bases) if bases else None)
        else:
            heard = canonical_numbers(query)
        if not bases or not heard.strip():
            return KnowledgeAnswer(
                query=query,
                normalized_query=heard,
                status="empty",
                latency_ms=(time.perf_counter() - started) * 1000,
            )
        fused, similarity = self._candidates_for(bases, heard, mode)
        answer = self._judge(session, query, heard, fused, similarity, k, now or self._clock())
        answer.latency_ms = round((time.perf_counter() - started) * 1000, 3)
        return answer

    def _candidates_for(
        self, bases: list[_Base], heard: str, mode: Mode
    ) -> tuple[list[Fused], dict[str, float]]:
        n = self._candidates
        vector = self._embed(heard) if mode != "keyword" else None
        if mode == "hybrid" and isinstance(self._index, NativeHybridIndex):
            assert vector is not None
            native: list[IndexHit] = []
            for b in bases:
                native.extend(self._index.hybrid(b.org_id, b.id, heard, vector, n))
            native.sort(key=lambda h: h.score, reverse=True)
            return [Fused(h.chunk_id, h.score, {"hybrid": i + 1}) for i, h in enumerate(native)], {}
        dense: list[IndexHit] = []
        keyword: list[IndexHit] = []
        for b in bases:
            if vector is not None:
                dense.extend(self._index.dense(b.org_id, b.id, vector, n))
            if mode != "dense":
                keyword.extend(self._index.keyword(b.org_id, b.id, heard, n))
        dense.sort(key=lambda h: h.score, reverse=True)
        keyword.sort(key=lambda h: h.score, reverse=True)
        similarity = {h.chunk_id: h.score for h in dense}
        rankings: dict[str, list[str]] = {}
        if mode != "keyword":
            rankings["dense"] = [h.chunk_id for h in dense]
        if mode != "dense":
            rankings["keyword"] = [h.chunk_id for h in keyword]
        return rrf(rankings), similarity

    def _judge(
        self,
        session: Session,
        query: str,
        heard: str,
        fused: list[Fused],
        similarity: dict[str, float],
        k: int,
        now: datetime,
    ) -> KnowledgeAnswer:
        window = fused[: max(k * 3, k + 5)]
        rows = repo.chunks_with_sources(session, [f.item_id for f in window])
        hits: list[KnowledgeHit] = []
        withheld: list[WithheldHit] = []
        best_servable: bool | None = None
        for f in window:
            found = rows.get(f.item_id)
            if found is None:
                continue  # indexed but deleted since (the index converges after commit)
            chunk, source = found
            fresh = judge(
                verified_at=source.verified_at,
                max_staleness_s=source.max_staleness_s,
                failure_count=source.failure_count,
                now=now,
            )
            if best_servable is None:
                best_servable = fresh.servable
            if not fresh.servable:
                if len(withheld) < k:
                    withheld.append(
                        WithheldHit(
                            chunk_id=chunk.id,
                            source_id=source.id,
                            source_name=source.name,
                            section=chunk.section,
                            freshness=fresh.state,
                            verified_at=source.verified_at,
                            reason=(
                                "never refreshed successfully"
                                if fresh.state == "pending"
                                else "past its maximum staleness"
                            ),
                        )
                    )
                continue
            if len(hits) >= k:
                continue
            sim = similarity.get(f.item_id)
            hits.append(
                KnowledgeHit(
                    chunk_id=chunk.id,
                    text=chunk.text,
                    title=chunk.title,
                    section=chunk.section,
                    score=round(f.score, 6),
                    similarity=round(sim, 4) if sim is not None else None,
                    dense_rank=f.ranks.get("dense"),
                    keyword_rank=f.ranks.get("keyword") or f.ranks.get("hybrid"),
                    source_id=source.id,
                    source_name=source.name,
                    kb_id=chunk.kb_id,
                    position=chunk.position,
                    fetched_at=chunk.fetched_at,
                    verified_at=source.verified_at,
                    age_s=round(fresh.age_s, 1) if fresh.age_s is not None else None,
                    freshness=fresh.state,
                )
            )
        if best_servable is None:
            status: Any = "empty"
        elif best_servable:
            status = "ok"
        else:
            status = "partial" if hits else "outdated"
        return KnowledgeAnswer(
            query=query,
            normalized_query=heard,
            status=status,
            hits=hits,
            withheld=withheld,
            spoken_fallback=OUTDATED_FALLBACK if status in ("partial", "outdated") else None,
        )


def retrieval_event_data(answer: KnowledgeAnswer, via: str) -> dict[str, Any]:
    """What a call's trace records about one retrieval (the query is redacted on append)."""
    return {
        "via": via,
        "query": answer.query,
        "normalized_query": answer.normalized_query,
        "status": answer.status,
        "chunk_ids": [h.chunk_id for h in answer.hits],
        "scores": [h.score for h in answer.hits],
        "similarities": [h.similarity for h in answer.hits],
        "sources": sorted({h.source_id for h in answer.hits}),
        "withheld": [w.chunk_id for w in answer.withheld],
        "freshness": [h.freshness for h in answer.hits],
        "latency_ms": answer.latency_ms,
    }
