"""KnowledgeRefreshWorkflow, its schedule and the freshness sweep on the real Temporal dev
server, Postgres, the real embedder and llama-index, with URL sources on a loopback server."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from activities.knowledge import KnowledgeActivities
from cli.worker import worker_for
from connectors.embedder import MiniLMEmbedder
from connectors.llamaindex import LlamaIndexIngestor
from connectors.sources.url import HttpSourceFetcher
from connectors.vectors.knowledge_embedded import EmbeddedKnowledgeIndex
from core.audit.models import AuditEvent
from core.db import session_scope, utcnow
from core.knowledge import repository as repo
from core.knowledge.schemas import SourceCreate
from core.monitoring.models import Alert
from orchestration.knowledge_refresh import (
    KnowledgeFreshnessSweepWorkflow,
    KnowledgeScheduledRefreshWorkflow,
)
from orchestration.knowledge_refresh_types import (
    RefreshInput,
    RefreshResult,
    SweepInput,
    SweepResult,
    refresh_schedule_id,
)
from orchestration.knowledge_starters import start_refresh, sync_refresh_schedule
from tests.conftest import async_wait_for, loopback_policy
from tests.knowledge_helpers import Page, SiteServer, add_source, make_tenant

pytestmark = [pytest.mark.postgres, pytest.mark.temporal]

PAGE = b"""<html><body><h1>Prices</h1><h2>Plumbing</h2><p>Water heater flush: $149.</p>
<h2>HVAC</h2><p>AC tune-up: $129 per system.</p></body></html>"""


@dataclass
class Env:
    client: Client
    engine: Engine
    task_queue: str
    site: SiteServer
    org_id: str
    agent_id: str

    def url_source(self, path: str, **policy: int) -> str:
        return add_source(
            self.engine,
            self.org_id,
            self.agent_id,
            SourceCreate(kind="url", name=f"page{path}", url=self.site.url(path), **policy),
        )

    async def refresh(self, source_id: str) -> RefreshResult:
        handle, _ = await start_refresh(
            self.client, data=RefreshInput(source_id), task_queue=self.task_queue
        )
        return await handle.result()


@pytest_asyncio.fixture(loop_scope="session")
async def env(
    temporal_env: WorkflowEnvironment,
    pg_engine: Engine,
    embedder: MiniLMEmbedder,
    tmp_path: Path,
) -> AsyncIterator[Env]:
    task_queue = f"kb-test-{uuid.uuid4().hex[:8]}"
    index = EmbeddedKnowledgeIndex(tmp_path / "knowledge")
    acts = KnowledgeActivities(
        engine=pg_engine,
        index=index,
        embedder=embedder,
        ingestor=LlamaIndexIngestor(embedder),
        fetcher=HttpSourceFetcher(loopback_policy()),
    )
    org_id, agent_id = make_tenant(pg_engine)
    with SiteServer() as site, ThreadPoolExecutor(max_workers=4) as executor:
        worker = worker_for(temporal_env.client, task_queue, [acts], executor)
        async with worker:
            yield Env(temporal_env.client, pg_engine, task_queue, site, org_id, agent_id)
    index.close()


def _source(engine: Engine, source_id: str) -> object:
    with Session(engine) as session:
        return repo.get_source(session, source_id)


def _audits(engine: Engine, source_id: str) -> list[str]:
    with Session(engine) as session:
        rows = session.exec(
            select(AuditEvent.action).where(col(AuditEvent.target).contains(source_id))
        ).all()
    return list(rows)


def _alerts(engine: Engine, org_id: str, kind: str) -> list[Alert]:
    with Session(engine) as session:
        return list(session.exec(select(Alert).where(Alert.org_id == org_id, Alert.kind == kind)))


async def test_refresh_ingests_then_revalidates_with_a_304(env: Env) -> None:
    env.site.pages["/a"] = Page(PAGE)
    sid = env.url_source("/a")

    first = await env.refresh(sid)
    assert first.status == "updated" and first.chunks_added >= 1 and first.embedded >= 1
    second = await env.refresh(sid)
    assert second.status == "unchanged" and second.not_modified

    source = _source(env.engine, sid)
    assert source.status == "fresh" and source.chunk_count == first.chunk_count  # type: ignore[attr-defined]
    assert source.verified_at is not None and source.etag == env.site.pages["/a"].etag  # type: ignore[attr-defined]
    actions = _audits(env.engine, sid)
    assert "knowledge.source.refresh.updated" in actions
    assert "knowledge.source.refresh.unchanged" in actions


async def test_a_failing_fetch_marks_the_source_failing_alerts_once_and_keeps_content(
    env: Env,
) -> None:
    env.site.pages["/b"] = Page(PAGE)
    sid = env.url_source("/b", refresh_interval_s=3600, max_staleness_s=86400)
    assert (await env.refresh(sid)).status == "updated"
    with Session(env.engine) as session:
        kept = {c.id for c in repo.chunks_for_source(session, sid)}

    env.site.fail = True
    try:
        failed = await env.refresh(sid)
        again = await env.refresh(sid)
    finally:
        env.site.fail = False
    assert failed.status == "failing" and "503" in (failed.error or "")
    assert again.status == "failing"
    source = _source(env.engine, sid)
    assert source.status == "failing" and source.failure_count == 2  # type: ignore[attr-defined]
    with Session(env.engine) as session:
        assert {c.id for c in repo.chunks_for_source(session, sid)} == kept
    alerts = [a for a in _alerts(env.engine, env.org_id, "knowledge_source_failing")
              if a.detail.get("source_id") == sid]  # fmt: skip
    assert len(alerts) == 1  # once per run of failures, not per attempt

    assert (await env.refresh(sid)).status == "unchanged"
    assert _source(env.engine, sid).status == "fresh"  # type: ignore[attr-defined]


async def test_two_refreshes_of_one_source_never_run_at_once(env: Env) -> None:
    env.site.pages["/slow"] = Page(PAGE)
    sid = env.url_source("/slow")
    env.site.delay_s = 2.0
    try:
        first, joined_first = await start_refresh(
            env.client, data=RefreshInput(sid), task_queue=env.task_queue
        )
        await async_wait_for(lambda: env.site.log.requests, timeout=20)
        second, joined_second = await start_refresh(
            env.client, data=RefreshInput(sid), task_queue=env.task_queue
        )
        scheduled = await env.client.execute_workflow(
            KnowledgeScheduledRefreshWorkflow.run,
            RefreshInput(sid, reason="schedule"),
            id=f"kb-scheduled-test-{uuid.uuid4().hex[:6]}",
            task_queue=env.task_queue,
        )
    finally:
        env.site.delay_s = 0.0
    assert not joined_first and joined_second
    assert second.result_run_id == first.result_run_id
    assert scheduled.status == "skipped"
    assert (await first.result()).status == "updated"
    assert len([r for r in env.site.log.requests if r["path"] == "/slow"]) == 1


async def test_the_schedule_is_created_updated_triggered_and_removed_with_the_source(
    env: Env,
) -> None:
    env.site.pages["/c"] = Page(PAGE)
    sid = env.url_source("/c", refresh_interval_s=3600)
    did = await sync_refresh_schedule(
        env.client, source_id=sid, interval_s=3600, task_queue=env.task_queue
    )
    assert did == "created"
    handle = env.client.get_schedule_handle(refresh_schedule_id(sid))
    spec = (await handle.describe()).schedule.spec
    assert spec.intervals[0].every == timedelta(hours=1)

    assert (
        await sync_refresh_schedule(
            env.client, source_id=sid, interval_s=900, task_queue=env.task_queue
        )
        == "updated"
    )
    assert (await handle.describe()).schedule.spec.intervals[0].every == timedelta(minutes=15)

    await handle.trigger()
    await async_wait_for(
        lambda: getattr(_source(env.engine, sid), "status", None) == "fresh", timeout=60
    )

    assert (
        await sync_refresh_schedule(
            env.client, source_id=sid, interval_s=None, task_queue=env.task_queue
        )
        == "deleted"
    )
    with pytest.raises(RPCError):
        await handle.describe()


async def test_the_sweep_marks_sources_past_their_staleness_and_alerts_once(env: Env) -> None:
    env.site.pages["/d"] = Page(PAGE)
    sid = env.url_source("/d", refresh_interval_s=3600, max_staleness_s=7200)
    assert (await env.refresh(sid)).status == "updated"
    with session_scope(env.engine) as session:
        source = repo.get_source(session, sid)
        assert source is not None
        source.verified_at = utcnow() - timedelta(hours=3)
        session.add(source)

    async def sweep() -> SweepResult:
        return await env.client.execute_workflow(
            KnowledgeFreshnessSweepWorkflow.run,
            SweepInput(),
            id=f"kb-sweep-test-{uuid.uuid4().hex[:6]}",
            task_queue=env.task_queue,
        )

    assert sid in (await sweep()).newly_stale
    assert _source(env.engine, sid).status == "stale"  # type: ignore[attr-defined]
    assert sid not in (await sweep()).newly_stale
    alerts = [a for a in _alerts(env.engine, env.org_id, "knowledge_source_stale")
              if a.detail.get("source_id") == sid]  # fmt: skip
    assert len(alerts) == 1
    assert (await env.refresh(sid)).status == "unchanged"
    assert _source(env.engine, sid).status == "fresh"  # type: ignore[attr-defined]


def test_refresh_ids_and_schedule_ids_are_per_source() -> None:
    from orchestration.knowledge_refresh_types import refresh_workflow_id

    assert refresh_workflow_id("src_1") == "kb-refresh-src_1"
    assert refresh_schedule_id("src_1") != refresh_workflow_id("src_1")


async def test_a_source_redirected_into_a_refused_address_fails_with_the_reason(env: Env) -> None:
    """The operator admits the test site (127.0.0.1) only; its page redirects to a loopback
    service on 127.0.0.2: the refresh marks the source failing, naming the address class."""
    with SiteServer("127.0.0.2") as internal:
        internal.pages["/history"] = Page(b"another organization's data", "text/plain")
        env.site.redirects["/moved"] = internal.url("/history")
        sid = env.url_source("/moved")
        failed = await env.refresh(sid)
    assert failed.status == "failing"
    assert "127.0.0.2 is a loopback address" in (failed.error or "")
    assert "BACKLINE_EGRESS_ALLOW" in (failed.error or "")
    source = _source(env.engine, sid)
    assert source.status == "failing" and "loopback" in (source.last_error or "")  # type: ignore[attr-defined]
    assert source.chunk_count == 0  # type: ignore[attr-defined]
    assert internal.log.requests == []
