"""The webhook inbox: idempotent per agent, safe under concurrent identical deliveries, and a
row that cannot start its workflow ends failed after bounded retries."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from core.calls import repository as repo
from core.calls.models import WebhookInbox
from core.calls.service import (
    DISPATCH_BACKOFF,
    DISPATCH_BACKOFF_CAP,
    DISPATCH_MAX_ATTEMPTS,
    CallsService,
    InboxReceipt,
)
from core.db import utcnow
from core.monitoring.models import Alert

SECRET = "s" * 32


def _receive(
    engine: Engine, agent: str, call_id: str, raw: bytes, org: str = "org-a"
) -> InboxReceipt:
    with Session(engine, expire_on_commit=False) as session:
        receipt = CallsService(session, SECRET).receive_call_ended(
            org_id=org,
            agent_id=agent,
            platform="vapi",
            call_id=call_id,
            raw=raw,
            caller_number=None,
        )
        session.commit()
        return receipt


def test_identical_deliveries_at_once_store_one_row_and_all_answer(any_engine: Engine) -> None:
    agent = f"agent-{uuid.uuid4().hex[:8]}"
    raw = b'{"message":{"type":"end-of-call-report"}}'
    barrier = threading.Barrier(5)
    with ThreadPoolExecutor(5) as pool:
        for _ in range(10):  # the window is narrow: several rounds make the race certain
            call_id = f"call-{uuid.uuid4().hex[:8]}"

            def deliver(_: int, call_id: str = call_id) -> InboxReceipt:
                barrier.wait()
                return _receive(any_engine, agent, call_id, raw)

            receipts = list(pool.map(deliver, range(5)))
            assert sorted(r.created for r in receipts) == [False, False, False, False, True]
            assert len({(r.inbox_id, r.workflow_id, r.revision) for r in receipts}) == 1
            with Session(any_engine) as s:
                rows = s.exec(
                    select(WebhookInbox).where(col(WebhookInbox.call_id) == call_id)
                ).all()
            assert len(rows) == 1 and rows[0].workflow_id == receipts[0].workflow_id


def test_same_bytes_for_two_agents_are_two_calls(any_engine: Engine) -> None:
    call_id = f"call-{uuid.uuid4().hex[:8]}"
    raw = b'{"message":{"type":"end-of-call-report","v":1}}'
    a = _receive(any_engine, "agent-a", call_id, raw, org="org-a")
    b = _receive(any_engine, "agent-b", call_id, raw, org="org-b")
    assert a.created and b.created and a.inbox_id != b.inbox_id
    assert (a.revision, b.revision) == (1, 1)
    assert a.workflow_id == f"post-call-agent-a-vapi-{call_id}"
    assert b.workflow_id == f"post-call-agent-b-vapi-{call_id}"


def test_another_agents_call_id_with_a_new_body_is_not_its_revision(any_engine: Engine) -> None:
    call_id = f"call-{uuid.uuid4().hex[:8]}"
    a = _receive(any_engine, "agent-a", call_id, b'{"v":1}', org="org-a")
    b = _receive(any_engine, "agent-b", call_id, b'{"v":2}', org="org-b")
    a2 = _receive(any_engine, "agent-a", call_id, b'{"v":3}', org="org-a")
    assert b.created and b.revision == 1 and b.workflow_id == f"post-call-agent-b-vapi-{call_id}"
    assert a2.revision == 2 and a2.workflow_id == f"{a.workflow_id}-r2"


def test_different_bodies_at_once_get_distinct_revisions(any_engine: Engine) -> None:
    """Two corrections racing each other must not share a revision (one would never run)."""
    agent = f"agent-{uuid.uuid4().hex[:8]}"
    barrier = threading.Barrier(4)
    with ThreadPoolExecutor(4) as pool:
        for _ in range(5):
            call_id = f"call-{uuid.uuid4().hex[:8]}"

            def deliver(i: int, call_id: str = call_id) -> InboxReceipt:
                barrier.wait()
                return _receive(any_engine, agent, call_id, f'{{"v":{i}}}'.encode())

            receipts = list(pool.map(deliver, range(4)))
            assert sorted(r.revision for r in receipts) == [1, 2, 3, 4]
            assert len({r.workflow_id for r in receipts}) == 4


def test_failed_starts_back_off_then_give_up_once_with_one_alert(any_engine: Engine) -> None:
    agent = f"agent-{uuid.uuid4().hex[:8]}"
    receipt = _receive(any_engine, agent, "call-1", b"{}", org=f"org-{agent}")
    now = utcnow()
    gave_up = []
    for attempt in range(1, DISPATCH_MAX_ATTEMPTS + 3):
        with Session(any_engine, expire_on_commit=False) as s:
            row = CallsService(s, SECRET).record_dispatch_failure(receipt.inbox_id, "boom", now)
            s.commit()
        gave_up.append(row is not None)
        with Session(any_engine) as s:
            stored = s.get(WebhookInbox, receipt.inbox_id)
            assert stored is not None
        if attempt < DISPATCH_MAX_ATTEMPTS:
            assert stored.next_dispatch_at is not None
            assert stored.next_dispatch_at.replace(tzinfo=now.tzinfo) - now == min(
                DISPATCH_BACKOFF * 2 ** (attempt - 1), DISPATCH_BACKOFF_CAP
            )
        now += timedelta(hours=1)
    assert gave_up.count(True) == 1 and gave_up[DISPATCH_MAX_ATTEMPTS - 1]
    assert stored.dispatch_attempts == DISPATCH_MAX_ATTEMPTS
    assert stored.dispatch_failed_at is not None and stored.dispatch_error == "boom"
    with Session(any_engine) as s:
        alerts = s.exec(select(Alert).where(Alert.agent_id == agent)).all()
        due = repo.undispatched_inbox(s, now, now, limit=1000)
    assert [a.kind for a in alerts] == ["post_call_not_started"]
    assert receipt.inbox_id not in [r.id for r in due]


def test_two_dispatchers_charging_the_same_attempt_count_it_once(any_engine: Engine) -> None:
    agent = f"agent-{uuid.uuid4().hex[:8]}"
    receipt = _receive(any_engine, agent, "call-1", b"{}")
    with Session(any_engine) as s:
        assert repo.charge_dispatch_attempt(s, receipt.inbox_id, 0, {"dispatch_error": "a"})
        assert not repo.charge_dispatch_attempt(s, receipt.inbox_id, 0, {"dispatch_error": "b"})
        s.commit()
        stored = s.get(WebhookInbox, receipt.inbox_id)
        assert stored is not None and (stored.dispatch_attempts, stored.dispatch_error) == (1, "a")
