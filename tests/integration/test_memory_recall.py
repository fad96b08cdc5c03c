"""A caller's memory searched in process (``core.memory.recall``) answers exactly what the
database path answers, and any change to the caller's memory (a new call, a forget), made by
any process, is seen by the next search. Real MiniLM, SQLite and Postgres."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session

from connectors.embedder import MiniLMEmbedder
from connectors.vectors.embedded import EmbeddedVectorStore
from core.calls.service import CallsService
from core.memory.recall import CallerRecall
from core.memory.schemas import MemoryHit
from core.memory.service import CallMemoryInput, MemoryService

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
QUERIES = (
    "water heater appointment",
    "what did the technician replace",
    "preferred contact method",
    "billing question about the last order",
    "roof leak history",
)
TOPICS = (
    "the water heater was leaking and a technician replaced the valve",
    "asked about the bill for order 4411 and a refund of the deposit",
    "prefers text messages over phone calls for updates",
    "the roof leaked again after the storm; a visit is booked for Friday",
    "furnace makes a rattling noise at night",
    "the air conditioner stopped cooling; the capacitor was swapped",
    "rescheduled the plumber to next Tuesday morning",
)


def _input(
    org: str, caller: str, n: int, summary: str, facts: list[tuple[str, str]]
) -> CallMemoryInput:
    return CallMemoryInput(
        org_id=org,
        agent_id=f"{org}-agent",
        caller_hash=caller,
        caller_display=None,
        platform="vapi",
        call_id=f"call-{n}",
        revision=1,
        ended_at=T0 + timedelta(days=n),
        summary=summary,
        facts=facts,
        method="extractive+rules",
    )


def _write(
    engine: Engine, embedder: MiniLMEmbedder, data: CallMemoryInput, apply: bool = True
) -> MemoryService:
    """A write as the post-call worker makes it: another service, with no recall cache."""
    s = Session(engine)
    memory = MemoryService(s, embedder, EmbeddedVectorStore(engine))
    memory.write_call_memories(data)
    s.commit()
    if apply:
        memory.apply_pending_vectors()
    s.close()
    return memory


def _search(
    engine: Engine, embedder: MiniLMEmbedder, org: str, caller: str, recall: CallerRecall | None
) -> list[list[MemoryHit]]:
    with Session(engine) as s:
        memory = MemoryService(s, embedder, EmbeddedVectorStore(engine), recall)
        return [
            memory.search(org, f"{org}-agent", caller, q, k=5, now=T0 + timedelta(days=40))
            for q in QUERIES
        ]


def _prefetch(
    engine: Engine, embedder: MiniLMEmbedder, org: str, caller: str, recall: CallerRecall
) -> None:
    with Session(engine) as s:
        assert MemoryService(s, embedder, EmbeddedVectorStore(engine), recall).prefetch(
            org, f"{org}-agent", caller
        )


def test_in_process_search_equals_the_database_path_and_follows_changes(
    any_engine: Engine, embedder: MiniLMEmbedder
) -> None:
    org, caller = f"o{uuid.uuid4().hex[:8]}", "caller-recall"
    # 24 calls: more vectors than the 20 candidates a search re-ranks, so the cut matters too.
    for n in range(24):
        facts = [
            ("preferred_channel", "text" if n % 2 else "email"),
            (f"topic_{n % 3}", TOPICS[n % 7][:30]),
        ]
        _write(any_engine, embedder, _input(org, caller, n, f"Call {n}: {TOPICS[n % 7]}.", facts))
    recall = CallerRecall(settle_s=0)
    _prefetch(any_engine, embedder, org, caller, recall)
    assert len(recall) == 1

    database = _search(any_engine, embedder, org, caller, None)
    hits_before = recall.hits
    in_process = _search(any_engine, embedder, org, caller, recall)
    assert recall.hits == hits_before + len(QUERIES)  # every search scored the snapshot
    assert in_process == database
    assert all(len(h) == 5 for h in database)
    assert any(h.kind == "fact" for hits in database for h in hits)

    # A new call written by another process: the next search sees it.
    _write(
        any_engine,
        embedder,
        _input(org, caller, 30, "Called about a gas smell near the stove.", []),
    )
    with Session(any_engine) as s:
        memory = MemoryService(s, embedder, EmbeddedVectorStore(any_engine), recall)
        hits = memory.search(org, f"{org}-agent", caller, "gas smell report", k=3)
    assert hits[0].source_call_id == "call-30"
    assert _search(any_engine, embedder, org, caller, recall) == _search(
        any_engine, embedder, org, caller, None
    )

    # Forgotten by another process (the forget route of another API): nothing is found.
    with Session(any_engine) as s:
        other = MemoryService(s, embedder, EmbeddedVectorStore(any_engine))
        other.forget_caller(org, f"{org}-agent", caller, "test", CallsService(s, "secret"))
    assert _search(any_engine, embedder, org, caller, recall) == [[] for _ in QUERIES]


def test_a_snapshot_is_kept_only_once_its_vectors_are_written(
    any_engine: Engine, embedder: MiniLMEmbedder
) -> None:
    org, caller = f"o{uuid.uuid4().hex[:8]}", "caller-unsettled"
    _write(any_engine, embedder, _input(org, caller, 1, "Booked a water heater repair.", []))
    # Rows committed, vectors not yet written (the worker between its commit and the upsert).
    pending = _write(
        any_engine,
        embedder,
        _input(org, caller, 2, "Asked for a refund of the deposit.", []),
        apply=False,
    )
    recall = CallerRecall(settle_s=0)
    _prefetch(any_engine, embedder, org, caller, recall)
    assert len(recall) == 0  # a row without its vector: not held
    pending.apply_pending_vectors()
    assert _search(any_engine, embedder, org, caller, recall) == _search(
        any_engine, embedder, org, caller, None
    )
    assert len(recall) == 1

    # A profile changed within the settle window is not held either (vectors may be in flight).
    fresh = CallerRecall(settle_s=600)
    _prefetch(any_engine, embedder, org, caller, fresh)
    assert len(fresh) == 0
