"""Caller memory: context for the next call, semantic search, durable writes, forgetting.

Writes are idempotent per (platform, call id): re-running them (an activity retry, a corrected
re-delivery) replaces what that call derived instead of adding to it. Facts are bi-temporal: a
contradicting newer fact closes the old one (``valid_to``) rather than deleting it.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from core.audit.service import record_audit
from core.audit.targets import agent_target
from core.calls.service import CallsService
from core.db import scrub_deleted, utcnow
from core.memory import repository as repo
from core.memory.models import CallerProfile, Fact, Memory
from core.memory.recall import CallerRecall, CallerSnapshot, Recallable
from core.memory.schemas import (
    CallerContext,
    CallerTimeline,
    FactPublic,
    MemoryHit,
    SummaryPublic,
)
from core.ports import Embedder, PartitionReader, Vector, VectorHit, VectorStore

NAMESPACE = "memory"
CONTEXT_SUMMARIES = 3
# Search score = similarity blended with recency; meaning dominates so an old but relevant
# memory outranks a new but unrelated one.
RECENCY_WEIGHT = 0.15
RECENCY_HALF_LIFE_DAYS = 30.0


def partition_key(org_id: str, agent_id: str, caller_hash: str) -> str:
    return f"{org_id}/{agent_id}/{caller_hash}"


def summary_item_id(platform: str, call_id: str) -> str:
    return f"summary:{platform}:{call_id}"


def fact_text(key: str, value: str) -> str:
    """What a fact's vector embeds."""
    return f"{key.replace('_', ' ')}: {value}"


def fact_item_id(fact_id: int) -> str:
    return f"fact:{fact_id}"


def _recallables(summaries: Sequence[Memory], facts: Sequence[Fact]) -> dict[str, Recallable]:
    rows = {
        summary_item_id(m.platform, m.source_call_id): Recallable(
            "summary", m.text, m.created_at, m.source_call_id
        )
        for m in summaries
    }
    for f in facts:
        if f.id is not None:
            rows[fact_item_id(f.id)] = Recallable(
                "fact", f"{f.key.replace('_', ' ')}: {f.value}", f.valid_from, f.source_call_id
            )
    return rows


def rank_hits(
    hits: Sequence[VectorHit], rows: Mapping[str, Recallable], now: datetime, k: int
) -> list[MemoryHit]:
    """Vector hits ranked by similarity blended with recency; a hit whose row is gone
    (forgotten, superseded) is dropped."""
    results: list[MemoryHit] = []
    for hit in hits:
        row = rows.get(hit.item_id)
        if row is None:
            continue
        age_days = max((now - row.created_at).total_seconds() / 86400.0, 0.0)
        recency = math.exp(-math.log(2) * age_days / RECENCY_HALF_LIFE_DAYS)
        score = (1 - RECENCY_WEIGHT) * hit.similarity + RECENCY_WEIGHT * recency
        results.append(
            MemoryHit(
                kind=row.kind,
                text=row.text,
                score=round(score, 4),
                similarity=round(hit.similarity, 4),
                source_call_id=row.source_call_id,
                created_at=row.created_at,
            )
        )
    results.sort(key=lambda h: h.score, reverse=True)
    return results[:k]


@dataclass(frozen=True)
class ForgetReceipt:
    rows_deleted: int
    receipt: str


@dataclass(frozen=True)
class CallMemoryInput:
    org_id: str
    agent_id: str
    caller_hash: str
    caller_display: str | None
    platform: str
    call_id: str
    revision: int
    ended_at: datetime
    summary: str
    facts: Sequence[tuple[str, str]]
    method: str


@dataclass(frozen=True)
class WriteResult:
    memories: int
    facts_added: int
    facts_closed: int


@dataclass
class _VectorOps:
    partition: str
    upserts: list[tuple[str, Vector]]
    deletes: list[str]
    drop_partition: bool = False


class MemoryService:
    """Rows go through ``session``; vector writes wait in ``pending`` until the caller commits
    and calls ``apply_pending_vectors`` (the vector store may be another connection or system,
    and SQLite allows one writer at a time)."""

    def __init__(
        self,
        session: Session,
        embedder: Embedder,
        vectors: VectorStore,
        recall: CallerRecall | None = None,
    ) -> None:
        self.session = session
        self._embedder = embedder
        self._vectors = vectors
        self._recall = recall
        self.pending: list[_VectorOps] = []

    def apply_pending_vectors(self) -> None:
        """Idempotent: item ids are deterministic, so a retry after a crash converges."""
        for ops in self.pending:
            if ops.drop_partition:
                self._vectors.delete_partition(NAMESPACE, ops.partition)
                continue
            if ops.upserts:
                self._vectors.upsert(NAMESPACE, ops.partition, ops.upserts)
            self._vectors.delete(NAMESPACE, ops.partition, ops.deletes)
        self.pending.clear()

    # -- hot path ------------------------------------------------------------------------
    def get_context(self, org_id: str, agent_id: str, caller_hash: str | None) -> CallerContext:
        if caller_hash is None:
            return CallerContext()
        profile = repo.get_profile(self.session, org_id, agent_id, caller_hash)
        if profile is None:
            return CallerContext()
        return CallerContext.model_validate(profile.context)

    def search(
        self,
        org_id: str,
        agent_id: str,
        caller_hash: str,
        query: str,
        k: int = 5,
        now: datetime | None = None,
    ) -> list[MemoryHit]:
        """The caller's memories closest to ``query``: the top vectors by cosine, then ranked by
        similarity blended with recency. In process from the caller's snapshot when this
        process holds one (``CallerRecall``), otherwise through the vector store; both rank the
        same candidates the same way."""
        if not query.strip():
            return []
        vector = self._embedder.embed([query])[0]
        candidates = max(k * 4, 20)
        snapshot = self._snapshot(org_id, agent_id, caller_hash)
        if snapshot is not None:
            hits = snapshot.query(vector, candidates)
            rows = snapshot.rows
        else:
            part = partition_key(org_id, agent_id, caller_hash)
            hits = self._vectors.query(NAMESPACE, part, vector, k=candidates)
            rows = self._hit_rows(org_id, agent_id, caller_hash, [h.item_id for h in hits])
        return rank_hits(hits, rows, now or utcnow(), k)

    def prefetch(self, org_id: str, agent_id: str, caller_hash: str) -> bool:
        """Load the caller's snapshot into this process (at call start); False when this
        process does not hold snapshots."""
        return self._snapshot(org_id, agent_id, caller_hash) is not None

    def _snapshot(self, org_id: str, agent_id: str, caller_hash: str) -> CallerSnapshot | None:
        """The caller's snapshot: held and still current (one stamp read), or loaded now and
        kept when settled; None without a recall cache or a store that reads partitions."""
        if self._recall is None or not isinstance(self._vectors, PartitionReader):
            return None
        part = partition_key(org_id, agent_id, caller_hash)
        stamp = repo.profile_stamp(self.session, org_id, agent_id, caller_hash)
        held = self._recall.get(part, stamp)
        if held is not None:
            return held
        snapshot = CallerSnapshot.build(
            stamp,
            self._vectors.read_partition(NAMESPACE, part, self.session),
            self._rows(org_id, agent_id, caller_hash),
        )
        self._recall.keep(part, snapshot, utcnow())
        return snapshot

    def _rows(self, org_id: str, agent_id: str, caller_hash: str) -> dict[str, Recallable]:
        """Every row a hit can name: the caller's summaries and current facts, by item id."""
        s = self.session
        return _recallables(
            repo.list_summaries(s, org_id, agent_id, caller_hash),
            repo.list_facts(s, org_id, agent_id, caller_hash, current_only=True),
        )

    def _hit_rows(
        self, org_id: str, agent_id: str, caller_hash: str, item_ids: Sequence[str]
    ) -> dict[str, Recallable]:
        """Only the rows the hits name (one read each for summaries and facts)."""
        sources: list[tuple[str, str]] = []
        fact_ids: list[int] = []
        for item_id in item_ids:
            kind, _, rest = item_id.partition(":")
            if kind == "summary":
                platform, _, call_id = rest.partition(":")
                sources.append((platform, call_id))
            elif kind == "fact" and rest.isdigit():
                fact_ids.append(int(rest))
        s = self.session
        return _recallables(
            repo.memories_by_source(s, org_id, agent_id, caller_hash, sources),
            repo.current_facts_by_id(s, org_id, agent_id, caller_hash, fact_ids),
        )

    # -- after the call ------------------------------------------------------------------
    def write_call_memories(self, data: CallMemoryInput) -> WriteResult:
        """Replace whatever this call derived before, then write summary and facts."""
        s = self.session
        part = partition_key(data.org_id, data.agent_id, data.caller_hash)
        stale_vectors: list[str] = []
        # Embedded before the first write: on SQLite the first flush takes the database's only
        # write lock until the commit, and every other writer (the edge's inbox insert among
        # them) would wait through the model's time.
        vectors = self._embed_ahead(data)
        repo.lock_caller(s, part)

        # Undo an earlier run for this call: its facts go, facts it closed reopen.
        for fact in repo.facts_from_call(s, data.agent_id, data.platform, data.call_id):
            if fact.id is not None:
                stale_vectors.append(fact_item_id(fact.id))
            s.delete(fact)
        reopened: list[Fact] = []
        for fact in repo.facts_closed_by_call(s, data.agent_id, data.platform, data.call_id):
            reopened.append(fact)
            fact.valid_to = None
            fact.superseded_by_platform = None
            fact.superseded_by_call_id = None
            s.add(fact)
        s.flush()

        memory = next(
            iter(repo.memories_for_call(s, data.agent_id, data.platform, data.call_id)), None
        )
        if data.summary:
            if memory is None:
                memory = Memory(
                    org_id=data.org_id,
                    agent_id=data.agent_id,
                    caller_hash=data.caller_hash,
                    platform=data.platform,
                    source_call_id=data.call_id,
                    text=data.summary,
                )
            memory.text = data.summary
            memory.revision = data.revision
            memory.method = data.method
            memory.created_at = data.ended_at
            s.add(memory)
        elif memory is not None:
            s.delete(memory)
            stale_vectors.append(summary_item_id(data.platform, data.call_id))

        new_facts, closed = self._apply_facts(data)
        s.flush()

        # Only what this write changed is embedded: unchanged current facts keep their vectors.
        touched = {f.id for f in (*new_facts, *reopened) if f.id is not None}
        current = repo.list_facts(s, data.org_id, data.agent_id, data.caller_hash)
        to_embed: list[tuple[str, str]] = []
        if data.summary:
            to_embed.append((summary_item_id(data.platform, data.call_id), data.summary))
        for fact in current:
            if fact.id is None:
                continue
            if fact.valid_to is None and fact.id in touched:
                to_embed.append((fact_item_id(fact.id), fact_text(fact.key, fact.value)))
            elif fact.valid_to is not None and (
                fact.id in touched or fact.superseded_by_call_id == data.call_id
            ):
                stale_vectors.append(fact_item_id(fact.id))
        self._refresh_profile(data)
        missing = list(dict.fromkeys(t for _, t in to_embed if t not in vectors))
        if missing:  # not foreseen by _embed_ahead (e.g. a same-valued fact reopened)
            vectors.update(zip(missing, self._embedder.embed(missing), strict=True))
        live = {item for item, _ in to_embed}
        self.pending.append(
            _VectorOps(
                partition=part,
                upserts=[(item, vectors[text]) for item, text in to_embed],
                # A database may reuse a deleted row's id for a new fact in the same write.
                deletes=[item for item in stale_vectors if item not in live],
            )
        )
        return WriteResult(
            memories=1 if data.summary else 0, facts_added=len(new_facts), facts_closed=closed
        )

    def _embed_ahead(self, data: CallMemoryInput) -> dict[str, Vector]:
        """Vectors of the texts this write will embed, by text, read-only: the summary, the
        facts that differ from the caller's current ones, and the facts a previous run of this
        call closed (they reopen). Changes the caller made to the session stay unflushed."""
        s = self.session
        with s.no_autoflush:
            current = {
                f.key: f.value.casefold()
                for f in repo.list_facts(s, data.org_id, data.agent_id, data.caller_hash)
                if f.valid_to is None
            }
            reopening = repo.facts_closed_by_call(s, data.agent_id, data.platform, data.call_id)
        texts = [data.summary] if data.summary else []
        texts += [
            fact_text(key, value)
            for key, value in dict(data.facts).items()
            if current.get(key) != value.casefold()
        ]
        texts += [fact_text(f.key, f.value) for f in reopening]
        texts = list(dict.fromkeys(texts))
        return dict(zip(texts, self._embedder.embed(texts), strict=True)) if texts else {}

    def _apply_facts(self, data: CallMemoryInput) -> tuple[list[Fact], int]:
        s = self.session
        added: list[Fact] = []
        closed = 0
        latest: dict[str, str] = {}
        for key, value in data.facts:
            latest[key] = value  # the last statement in a call wins
        existing = repo.list_facts(s, data.org_id, data.agent_id, data.caller_hash)
        for key, value in latest.items():
            same_key = [f for f in existing if f.key == key]
            current = next((f for f in same_key if f.valid_to is None), None)
            if current is not None and current.valid_from > data.ended_at:
                # A later call already told us something newer: record this one as history.
                history = self._new_fact(data, key, value, valid_to=current.valid_from)
                s.add(history)
                added.append(history)
                continue
            if current is not None and current.value.casefold() == value.casefold():
                continue
            if current is not None:
                current.valid_to = data.ended_at
                current.superseded_by_platform = data.platform
                current.superseded_by_call_id = data.call_id
                s.add(current)
                closed += 1
            fact = self._new_fact(data, key, value, valid_to=None)
            s.add(fact)
            added.append(fact)
        return added, closed

    @staticmethod
    def _new_fact(data: CallMemoryInput, key: str, value: str, valid_to: datetime | None) -> Fact:
        return Fact(
            org_id=data.org_id,
            agent_id=data.agent_id,
            caller_hash=data.caller_hash,
            key=key,
            value=value,
            valid_from=data.ended_at,
            valid_to=valid_to,
            platform=data.platform,
            source_call_id=data.call_id,
        )

    def _refresh_profile(self, data: CallMemoryInput) -> None:
        self._rebuild_profile(data.org_id, data.agent_id, data.caller_hash, data.caller_display)

    def _rebuild_profile(
        self, org_id: str, agent_id: str, caller_hash: str, caller_display: str | None
    ) -> None:
        s = self.session
        summaries = repo.list_summaries(s, org_id, agent_id, caller_hash)
        facts = repo.list_facts(s, org_id, agent_id, caller_hash, current_only=True)
        recent = list(reversed(summaries[:CONTEXT_SUMMARIES]))
        context = CallerContext(
            known=bool(summaries or facts),
            summary=" | ".join(m.text for m in recent),
            facts={f.key: f.value for f in facts},
            call_count=len(summaries),
            last_call_at=summaries[0].created_at if summaries else None,
        )
        profile = repo.get_profile(s, org_id, agent_id, caller_hash)
        if profile is None:
            profile = CallerProfile(org_id=org_id, agent_id=agent_id, caller_hash=caller_hash)
        profile.caller_display = caller_display or profile.caller_display
        profile.call_count = context.call_count
        profile.last_call_at = context.last_call_at
        profile.context = context.model_dump(mode="json")
        profile.updated_at = utcnow()
        s.add(profile)

    def expire_before(self, org_id: str, before: datetime) -> int:
        """Retention: drop summaries and facts derived from calls before ``before`` (rows and
        vectors), then rebuild the affected callers' profiles from what is left."""
        memories, facts = repo.rows_before(self.session, org_id, before)
        stale: dict[tuple[str, str], list[str]] = {}
        for m in memories:
            stale.setdefault((m.agent_id, m.caller_hash), []).append(
                summary_item_id(m.platform, m.source_call_id)
            )
            self.session.delete(m)
        for f in facts:
            if f.id is not None:
                stale.setdefault((f.agent_id, f.caller_hash), []).append(fact_item_id(f.id))
            self.session.delete(f)
        self.session.flush()
        for (agent_id, caller_hash), items in stale.items():
            self._rebuild_profile(org_id, agent_id, caller_hash, None)
            self.pending.append(
                _VectorOps(
                    partition=partition_key(org_id, agent_id, caller_hash),
                    upserts=[],
                    deletes=items,
                )
            )
        return len(memories) + len(facts)

    # -- reading and forgetting -----------------------------------------------------------
    def timeline(self, org_id: str, agent_id: str, caller_hash: str) -> CallerTimeline:
        s = self.session
        profile = repo.get_profile(s, org_id, agent_id, caller_hash)
        return CallerTimeline(
            caller_hash=caller_hash,
            caller_display=profile.caller_display if profile else None,
            context=self.get_context(org_id, agent_id, caller_hash),
            summaries=[
                SummaryPublic.model_validate(m, from_attributes=True)
                for m in repo.list_summaries(s, org_id, agent_id, caller_hash)
            ],
            facts=[
                FactPublic.model_validate(f, from_attributes=True)
                for f in repo.list_facts(s, org_id, agent_id, caller_hash)
            ],
        )

    @staticmethod
    def forget_tables() -> tuple[str, ...]:
        """The tables ``forget`` deletes from (the vector store's own storage aside)."""
        return repo.CALLER_TABLES

    def forget_caller(
        self,
        org_id: str,
        agent_id: str,
        caller_hash: str,
        actor: str,
        calls: CallsService,
        *,
        store_tables: Sequence[str] = (),
        vacuum_full: bool = False,
    ) -> ForgetReceipt:
        """Erase every row and vector that holds this caller, their calls, inbox rows and
        rejected payloads included, and record the erasure.

        Commits: the vectors go only after the rows are gone, and the scrub needs the deletes
        committed. ``store_tables`` are the vector store's own tables, scrubbed too.
        """
        removed = self.forget(org_id, agent_id, caller_hash)
        removed += calls.forget_caller(org_id, agent_id, caller_hash)
        # The audit names the erasure by a receipt, not the caller's hash: after a forget,
        # nothing stored may still single the caller out.
        receipt = uuid.uuid4().hex
        record_audit(
            self.session,
            actor=actor,
            action="caller.forget",
            target=agent_target(agent_id, "forget", receipt),
            org_id=org_id,
            detail={"rows_deleted": removed},
        )
        self.session.commit()
        self.apply_pending_vectors()
        # Deleted is not yet unreadable: old copies linger in free pages, the WAL, dead tuples.
        scrub_deleted(
            self.session.get_bind().engine,
            (*self.forget_tables(), *calls.forget_tables(), *store_tables),
            full=vacuum_full,
        )
        return ForgetReceipt(rows_deleted=removed, receipt=receipt)

    def forget(self, org_id: str, agent_id: str, caller_hash: str) -> int:
        removed = repo.delete_caller_rows(self.session, org_id, agent_id, caller_hash)
        if self._recall is not None:  # other processes see the profile gone
            self._recall.invalidate(partition_key(org_id, agent_id, caller_hash))
        self.pending.append(
            _VectorOps(
                partition=partition_key(org_id, agent_id, caller_hash),
                upserts=[],
                deletes=[],
                drop_partition=True,
            )
        )
        return removed
