"""The memory and call store on both SQLite and Postgres, with the real MiniLM embedder."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from connectors.embedder import MiniLMEmbedder
from connectors.vectors.embedded import EmbeddedVectorStore, VectorEntry
from core.calls.models import Call, RejectedWebhook, WebhookInbox
from core.calls.service import CallsService
from core.memory.models import Fact, Memory
from core.memory.service import CallMemoryInput, MemoryService
from core.tools.models import ToolInvocation

SECRET = "store-secret"
T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def _input(
    org: str,
    caller: str,
    call_id: str,
    summary: str,
    facts: list[tuple[str, str]],
    ended: datetime,
    revision: int = 1,
) -> CallMemoryInput:
    return CallMemoryInput(
        org_id=org,
        agent_id=f"{org}-agent",
        caller_hash=caller,
        caller_display="+1••••••0123",
        platform="vapi",
        call_id=call_id,
        revision=revision,
        ended_at=ended,
        summary=summary,
        facts=facts,
        method="extractive+rules",
    )


def _write(engine: Engine, embedder: MiniLMEmbedder, data: CallMemoryInput) -> None:
    with Session(engine) as s:
        memory = MemoryService(s, embedder, EmbeddedVectorStore(engine))
        memory.write_call_memories(data)
        s.commit()
        memory.apply_pending_vectors()


def test_search_ranks_by_meaning_not_recency(any_engine: Engine, embedder: MiniLMEmbedder) -> None:
    org = f"o{uuid.uuid4().hex[:8]}"
    caller = "caller-a"
    _write(
        any_engine,
        embedder,
        _input(
            org,
            caller,
            "c1",
            "Caller's dog Biscuit is allergic to chicken; booked a vet visit.",
            [],
            T0,
        ),
    )
    _write(
        any_engine,
        embedder,
        _input(
            org,
            caller,
            "c2",
            "Caller asked to change the billing address on the invoice.",
            [],
            T0 + timedelta(days=20),
        ),
    )
    _write(
        any_engine,
        embedder,
        _input(
            org,
            caller,
            "c3",
            "Caller rescheduled the furnace maintenance to Friday.",
            [],
            T0 + timedelta(days=40),
        ),
    )
    with Session(any_engine) as s:
        hits = MemoryService(s, embedder, EmbeddedVectorStore(any_engine)).search(
            org,
            f"{org}-agent",
            caller,
            "what is the pet's food allergy",
            k=3,
            now=T0 + timedelta(days=41),
        )
    assert hits[0].source_call_id == "c1", [h.text for h in hits]
    assert hits[0].created_at < hits[1].created_at or hits[0].created_at < hits[-1].created_at


def test_contradicting_fact_closes_the_older_one_and_keeps_history(
    any_engine: Engine, embedder: MiniLMEmbedder
) -> None:
    org = f"o{uuid.uuid4().hex[:8]}"
    _write(
        any_engine,
        embedder,
        _input(
            org, "c", "k1", "First call.", [("contact_preference", "email"), ("city", "Austin")], T0
        ),
    )
    _write(
        any_engine,
        embedder,
        _input(
            org, "c", "k2", "Second call.", [("contact_preference", "text")], T0 + timedelta(days=3)
        ),
    )
    with Session(any_engine) as s:
        facts = s.exec(select(Fact).where(Fact.org_id == org).order_by(Fact.id)).all()  # type: ignore[arg-type]
        ctx = MemoryService(s, embedder, EmbeddedVectorStore(any_engine)).get_context(
            org, f"{org}-agent", "c"
        )
    pref = {f.value: f for f in facts if f.key == "contact_preference"}
    assert pref["email"].valid_to is not None and pref["email"].valid_to == T0 + timedelta(days=3)
    assert pref["text"].valid_to is None
    assert ctx.facts == {"contact_preference": "text", "city": "Austin"}
    assert ctx.call_count == 2


def test_rewriting_a_call_is_idempotent_and_reopens_facts_it_had_closed(
    any_engine: Engine, embedder: MiniLMEmbedder
) -> None:
    org = f"o{uuid.uuid4().hex[:8]}"
    _write(
        any_engine,
        embedder,
        _input(org, "c", "k1", "First.", [("contact_preference", "email")], T0),
    )
    second = _input(
        org, "c", "k2", "Second.", [("contact_preference", "text")], T0 + timedelta(days=1)
    )
    for _ in range(3):
        _write(any_engine, embedder, second)
    corrected = _input(
        org,
        "c",
        "k2",
        "Second, corrected.",
        [("city", "Denver")],
        T0 + timedelta(days=1),
        revision=2,
    )
    _write(any_engine, embedder, corrected)
    with Session(any_engine) as s:
        memories = s.exec(select(Memory).where(Memory.org_id == org)).all()
        facts = s.exec(select(Fact).where(Fact.org_id == org)).all()
        vectors = s.exec(select(VectorEntry).where(VectorEntry.partition.startswith(org))).all()  # type: ignore[attr-defined]
    assert sorted(m.text for m in memories) == ["First.", "Second, corrected."]
    current = {(f.key, f.value) for f in facts if f.valid_to is None}
    assert current == {("contact_preference", "email"), ("city", "Denver")}
    assert len(facts) == 2
    assert len(vectors) == 4  # two summaries + two current facts, nothing stale


def test_one_tenant_never_reads_another_tenants_memory(
    any_engine: Engine, embedder: MiniLMEmbedder
) -> None:
    org_a, org_b = f"a{uuid.uuid4().hex[:8]}", f"b{uuid.uuid4().hex[:8]}"
    _write(
        any_engine,
        embedder,
        _input(org_a, "same-caller", "x1", "Secret plans for the boat.", [("city", "Boston")], T0),
    )
    with Session(any_engine) as s:
        svc = MemoryService(s, embedder, EmbeddedVectorStore(any_engine))
        assert svc.search(org_b, f"{org_b}-agent", "same-caller", "boat plans") == []
        assert svc.get_context(org_b, f"{org_b}-agent", "same-caller").known is False
        assert svc.get_context(org_a, f"{org_a}-agent", "other-caller").known is False


def test_inbox_accepts_a_payload_once_and_numbers_corrections(any_engine: Engine) -> None:
    call_id = f"call-{uuid.uuid4().hex[:8]}"
    with Session(any_engine) as s:
        svc = CallsService(s, SECRET)
        kwargs = dict(
            org_id="o", agent_id="a", platform="vapi", call_id=call_id, caller_number="+14155550123"
        )
        first = svc.receive_call_ended(raw=b'{"v":1}', **kwargs)  # type: ignore[arg-type]
        again = svc.receive_call_ended(raw=b'{"v":1}', **kwargs)  # type: ignore[arg-type]
        corrected = svc.receive_call_ended(raw=b'{"v":2}', **kwargs)  # type: ignore[arg-type]
        s.commit()
    assert first.created and not again.created and first.inbox_id == again.inbox_id
    assert corrected.created and corrected.revision == 2
    assert corrected.workflow_id == f"post-call-a-vapi-{call_id}-r2"


def test_forgetting_a_caller_erases_rows_vectors_inbox_and_rejections(
    any_engine: Engine, embedder: MiniLMEmbedder
) -> None:
    org = f"o{uuid.uuid4().hex[:8]}"
    agent = f"{org}-agent"
    number = "+14155550123"
    with Session(any_engine) as s:
        calls = CallsService(s, SECRET)
        caller = calls.caller_hash(number)
        assert caller is not None
        calls.receive_call_ended(
            org_id=org,
            agent_id=agent,
            platform="vapi",
            call_id="f1",
            raw=b"{}",
            caller_number=number,
        )
        calls.reject(
            platform="vapi",
            agent_id=agent,
            org_id=org,
            reason="X",
            detail="d",
            status_code=422,
            raw=b"{}",
            caller_number=number,
        )
        # The call itself, and the side-effecting tool runs of this call and of another
        # caller's call: only this caller's go (their arguments and results may name them).
        for call_id, hashed in (("f1", caller), ("other-call", "another-caller-hash")):
            s.add(
                Call(
                    org_id=org,
                    agent_id=agent,
                    platform="vapi",
                    platform_call_id=call_id,
                    caller_hash=hashed,
                )
            )
            s.add(
                ToolInvocation(
                    idempotency_key=uuid.uuid4().hex,
                    org_id=org,
                    agent_id=agent,
                    platform="vapi",
                    call_id=call_id,
                    tool_call_id="t1",
                    tool="book",
                    status="done",
                    result=f"booked for {call_id}",
                )
            )
        s.commit()
    _write(
        any_engine, embedder, _input(org, caller, "f1", "Remember me.", [("city", "Austin")], T0)
    )
    with Session(any_engine) as s:
        memory = MemoryService(s, embedder, EmbeddedVectorStore(any_engine))
        removed = memory.forget(org, agent, caller) + CallsService(s, SECRET).forget_caller(
            org, agent, caller
        )
        s.commit()
        memory.apply_pending_vectors()
    assert removed >= 4
    with Session(any_engine) as s:
        assert (
            s.exec(select(Memory).where(Memory.caller_hash == caller, Memory.org_id == org)).first()
            is None
        )
        assert (
            s.exec(select(Fact).where(Fact.caller_hash == caller, Fact.org_id == org)).first()
            is None
        )
        assert (
            s.exec(
                select(WebhookInbox).where(
                    WebhookInbox.caller_hash == caller, WebhookInbox.org_id == org
                )
            ).first()
            is None
        )
        assert (
            s.exec(
                select(RejectedWebhook).where(
                    RejectedWebhook.caller_hash == caller, RejectedWebhook.org_id == org
                )
            ).first()
            is None
        )
        assert (
            s.exec(
                select(VectorEntry).where(VectorEntry.partition == f"{org}/{agent}/{caller}")
            ).first()
            is None
        )
        runs = s.exec(select(ToolInvocation.call_id).where(ToolInvocation.org_id == org)).all()
        assert runs == ["other-call"]
        assert "toolinvocation" in CallsService.forget_tables()


def test_raw_payloads_are_purged_after_retention(any_engine: Engine) -> None:
    with Session(any_engine) as s:
        svc = CallsService(s, SECRET)
        receipt = svc.receive_call_ended(
            org_id="o",
            agent_id="a",
            platform="vapi",
            call_id=f"p-{uuid.uuid4().hex[:6]}",
            raw=b'{"x":1}',
            caller_number=None,
        )
        row = s.get(WebhookInbox, receipt.inbox_id)
        assert row is not None
        row.received_at = datetime.now(UTC) - timedelta(days=8)
        s.add(row)
        s.commit()
        assert svc.purge_expired_payloads(retention_days=7) >= 1
        s.commit()
        s.refresh(row)
        assert row.payload is None


def test_post_call_audit_activity_is_idempotent(
    pg_engine: Engine, embedder: MiniLMEmbedder
) -> None:
    from activities.post_call import PostCallActivities
    from core.audit.models import AuditEvent
    from orchestration.post_call_types import AuditInput

    org = f"o{uuid.uuid4().hex[:8]}"
    acts = PostCallActivities(pg_engine, SECRET, embedder, EmbeddedVectorStore(pg_engine), None)
    data = AuditInput(
        org_id=org, action="call.processed", target="call:vapi:x", detail={"revision": 1}
    )
    for _ in range(3):
        acts.record_audit(data)
    with Session(pg_engine) as s:
        events = s.exec(select(AuditEvent).where(AuditEvent.org_id == org)).all()
    assert len(events) == 1
