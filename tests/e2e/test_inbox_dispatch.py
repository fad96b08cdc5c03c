"""A call is never accepted and then lost: an id that cannot key a call is refused at the edge;
inbox rows whose workflow can never start back off, end ``failed`` after bounded retries with
one alert and one log line, and later calls still run."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select
from temporalio.testing import WorkflowEnvironment

from api.main import dispatch_pending
from api.state import AgentDirectory, AppState
from connectors.vectors.embedded import EmbeddedVectorStore
from core.calls.models import WebhookInbox
from core.calls.service import DISPATCH_MAX_ATTEMPTS
from core.db import utcnow
from core.monitoring.models import Alert
from orchestration.post_call_types import PostCallResult
from tests.conftest import Stack, async_wait_for, make_settings, temporal_address
from tests.helpers import ADMIN, DANA_CALL_1, create_tenant, end_of_call, raw

pytestmark = [pytest.mark.postgres, pytest.mark.temporal]
DANA = "+14155550123"
# Temporal refuses workflow ids over 1,000 characters: such a row can never start.
UNSTARTABLE = "x" * 1100


def _poison(engine: Engine, org: str, agent: str, n: int) -> list[int]:
    """Inbox rows as an older release could leave them: accepted, but never startable."""
    rows = [
        WebhookInbox(
            org_id=org,
            agent_id=agent,
            platform="vapi",
            event_type="call_ended",
            call_id=f"poison-{i}",
            payload_hash=f"{i:064d}",
            payload="{}",
            workflow_id=f"post-call-{agent}-vapi-poison-{i}-{UNSTARTABLE}",
            received_at=utcnow() - timedelta(minutes=1),
        )
        for i in range(n)
    ]
    with Session(engine, expire_on_commit=False) as s:
        s.add_all(rows)
        s.commit()
    return [r.id for r in rows if r.id is not None]


@pytest.fixture
def poisoned(pg_engine: Engine) -> Iterator[tuple[str, str]]:
    """A fresh org and agent name for poisoned rows; the rows go when the test ends."""
    suffix = uuid.uuid4().hex[:8]
    org, agent = f"org-poison-{suffix}", f"agent-poison-{suffix}"
    yield org, agent
    with Session(pg_engine) as s:
        s.execute(delete(WebhookInbox).where(col(WebhookInbox.agent_id) == agent))
        s.commit()


async def test_two_hundred_unstartable_rows_do_not_starve_later_calls(
    stack: Stack, poisoned: tuple[str, str]
) -> None:
    org, agent = poisoned
    _poison(stack.engine, org, agent, 200)
    with stack.http() as http:
        tenant = create_tenant(http)
        # Temporal unreachable from the edge while they arrive: only the dispatcher starts them.
        state = stack.api._app_state()
        client, state.temporal = state.temporal, None
        try:
            call_ids = [f"call-{uuid.uuid4().hex[:8]}" for _ in range(5)]
            replies = [
                http.post(
                    tenant.webhook,
                    content=raw(end_of_call(call_id, DANA, DANA_CALL_1)),
                    headers=tenant.vapi_headers,
                )
                for call_id in call_ids
            ]
        finally:
            state.temporal = client
    assert [r.json()["workflow_started"] for r in replies] == [None] * 5
    for reply in replies:
        handle = stack.client.get_workflow_handle(
            reply.json()["workflow_id"], result_type=PostCallResult
        )
        # Started by the 5-second dispatcher tick behind 200 rows that keep failing.
        await async_wait_for(lambda h=handle: _started(stack, h.id), timeout=60, interval=0.5)
        assert (await handle.result()).status == "processed"


def _started(stack: Stack, workflow_id: str) -> bool:
    with Session(stack.engine) as s:
        row = s.exec(select(WebhookInbox).where(WebhookInbox.workflow_id == workflow_id)).one()
        return row.dispatched_at is not None


async def test_unstartable_row_fails_after_bounded_retries_with_one_alert(
    pg_url: str,
    pg_engine: Engine,
    temporal_env: WorkflowEnvironment,
    embedder,  # type: ignore[no-untyped-def]
    tmp_path: Path,
    poisoned: tuple[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    org, agent = poisoned
    settings = make_settings(pg_url, tmp_path, temporal_address=temporal_address(temporal_env))
    state = AppState(
        settings=settings,
        engine=pg_engine,
        embedder=embedder,
        vectors=EmbeddedVectorStore(pg_engine),
        agents=AgentDirectory(pg_engine, settings.secret_key.get_secret_value()),
        temporal=temporal_env.client,
    )
    (row_id,) = _poison(pg_engine, org, agent, 1)

    def _row() -> WebhookInbox:
        with Session(pg_engine) as s:
            row = s.get(WebhookInbox, row_id)
            assert row is not None
            return row

    now = utcnow()
    with caplog.at_level(logging.DEBUG, logger="backline.api"):
        assert await dispatch_pending(state, now=now) == 0
        first = _row()
        assert first.dispatch_attempts == 1 and first.dispatch_failed_at is None
        assert first.next_dispatch_at is not None and first.next_dispatch_at > now
        # Backing off: a tick before the row is due leaves it alone.
        await dispatch_pending(state, now=now + timedelta(seconds=1))
        assert _row().dispatch_attempts == 1
        for _ in range(DISPATCH_MAX_ATTEMPTS + 3):  # more ticks than attempts allowed
            now += timedelta(hours=1)
            await dispatch_pending(state, now=now)
    row = _row()
    assert row.dispatch_attempts == DISPATCH_MAX_ATTEMPTS
    assert row.dispatch_failed_at is not None and row.dispatched_at is None
    assert "exceeds maximum allowed length" in (row.dispatch_error or "")
    with Session(pg_engine) as s:
        alerts = s.exec(select(Alert).where(Alert.org_id == org)).all()
    assert [(a.kind, a.agent_id, a.detail["inbox_id"]) for a in alerts] == [
        ("post_call_not_started", agent, row_id)
    ]
    loud = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(loud) == 1 and "gave up" in loud[0].getMessage()
    assert len(loud[0].getMessage()) < 1000  # the 1,100-character id is clipped


@pytest.mark.parametrize(
    "call_id", ["c" * 1000, "call-1\nforged"], ids=["1000 characters", "newline"]
)
async def test_unstorable_call_id_is_rejected_and_recorded_never_accepted(
    stack: Stack, call_id: str
) -> None:
    with stack.http() as http:
        tenant = create_tenant(http)
        r = http.post(
            tenant.webhook,
            content=raw(end_of_call(call_id, DANA, DANA_CALL_1)),
            headers=tenant.vapi_headers,
        )
        assert r.status_code == 422, r.text
        assert r.json()["error"] == "MalformedWebhookError"
        assert "'message.call.id'" in r.json()["detail"]
        rejected = http.get(
            "/v1/rejected-webhooks", params={"org_id": tenant.org_id}, headers=ADMIN
        ).json()
    assert [(x["reason"], x["status_code"]) for x in rejected] == [("MalformedWebhookError", 422)]
    with Session(stack.engine) as s:
        inbox = s.exec(select(WebhookInbox).where(WebhookInbox.agent_id == tenant.agent_id)).all()
    assert inbox == []
