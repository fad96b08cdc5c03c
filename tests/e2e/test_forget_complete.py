"""Forgetting a caller leaves nothing readable: after real calls on SQLite (a file) and
Postgres, every table, the SQLite file with its -wal and -shm, every file in the data dir and
the Temporal histories hold no trace of the caller's number, hash or what they said."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy import MetaData, select, text
from sqlalchemy.engine import Engine
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from connectors.embedder import MiniLMEmbedder
from connectors.vectors.embedded import VectorEntry
from core.calls.service import CallsService
from core.db import make_engine
from core.memory.service import MemoryService, partition_key, summary_item_id
from orchestration.codec import codec_for
from tests.conftest import (
    SECRET_KEY,
    ApiServer,
    Stack,
    build_activities,
    make_settings,
    make_worker,
    post_call_result,
    temporal_address,
)
from tests.e2e.test_temporal_privacy import payloads_in
from tests.helpers import (
    ADMIN,
    DistinctiveCaller,
    create_tenant,
    end_of_call,
    raw,
    tool_call,
)

pytestmark = [pytest.mark.postgres, pytest.mark.temporal]


@pytest_asyncio.fixture(loop_scope="session", params=["sqlite", "postgres", "postgres-vacuum-full"])
async def any_stack(
    request: pytest.FixtureRequest,
    temporal_env: WorkflowEnvironment,
    embedder: MiniLMEmbedder,
    tmp_path: Path,
) -> AsyncIterator[Stack]:
    """The API and a worker on a SQLite file in the data dir, or on the session's Postgres."""
    own_engine = request.param == "sqlite"
    overrides = {"forget_vacuum_full": request.param == "postgres-vacuum-full"}
    if own_engine:
        url: str = request.getfixturevalue("sqlite_url")
        engine = make_engine(url)
    else:
        url = request.getfixturevalue("pg_url")
        engine = request.getfixturevalue("pg_engine")
    settings = make_settings(
        url, tmp_path, temporal_address=temporal_address(temporal_env), **overrides
    )
    api = await asyncio.to_thread(lambda: ApiServer(settings, embedder).start())
    activities = build_activities(settings, engine, embedder, analyzer=None)
    with ThreadPoolExecutor(max_workers=4) as executor:
        async with make_worker(temporal_env.client, settings, activities, executor):
            yield Stack(settings=settings, engine=engine, api=api, client=temporal_env.client)
            await asyncio.to_thread(api.stop)
    if own_engine:
        engine.dispose()


def rows_as_text(engine: Engine) -> bytes:
    """Every row of every table, every column rendered as text (binary vectors are checked by
    id instead: random float bytes would make a text search meaningless)."""
    meta = MetaData()
    meta.reflect(engine)
    chunks: list[str] = []
    with engine.connect() as conn:
        for table in meta.sorted_tables:
            columns = [c for c in table.columns if c.type.python_type is not bytes]
            for row in conn.execute(select(*columns)):
                chunks.append(repr(tuple(row)))
    return "\n".join(chunks).lower().encode()


def files_as_bytes(root: Path) -> dict[str, bytes]:
    """The data dir: the SQLite file, its -wal and -shm, index files, logs."""
    return {str(p): p.read_bytes().lower() for p in root.rglob("*") if p.is_file()}


def postgres_pages(engine: Engine, tables: list[str], *, tuples_only: bool) -> dict[str, bytes]:
    """The heap pages of tables read through pageinspect, which a SELECT never shows: every
    tuple, dead ones included (``tuples_only``), or the raw 8 kB pages, free space included
    (what a copy of the data files reveals)."""
    pages: dict[str, bytes] = {}
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("CREATE EXTENSION IF NOT EXISTS pageinspect"))
        for table in tables:
            n = conn.execute(text(f"SELECT pg_relation_size('{table}') / 8192")).scalar_one()
            chunks: list[bytes] = []
            for i in range(int(n)):
                page = f"get_raw_page('{table}', {i})"
                if tuples_only:
                    rows = conn.execute(
                        text(f"SELECT t_data FROM heap_page_items({page}) WHERE t_data IS NOT NULL")
                    ).scalars()
                    chunks.extend(bytes(r) for r in rows)
                else:
                    chunks.append(bytes(conn.execute(text(f"SELECT {page}")).scalar_one()))
            pages[table] = b"".join(chunks).lower()
    return pages


async def history_bytes(env: WorkflowEnvironment, stack: Stack, workflow_id: str) -> bytes:
    """A history read raw (as the server stores it) and decoded with the codec."""
    plain = await Client.connect(temporal_address(env), namespace="default")
    history = await plain.get_workflow_handle(workflow_id).fetch_history()
    sealed = [p for e in history.events for p in payloads_in(e)]
    opened = await codec_for(stack.settings).decode(sealed)
    raw_bytes = b"".join(e.SerializeToString() for e in history.events)
    return (raw_bytes + b"".join(p.data for p in opened)).lower()


async def test_forgetting_a_caller_leaves_no_trace_anywhere(
    any_stack: Stack, temporal_env: WorkflowEnvironment
) -> None:
    stack = any_stack
    caller = DistinctiveCaller.new()
    markers = caller.markers(SECRET_KEY)
    with stack.http() as http:
        tenant = create_tenant(http)
        call_ids = [f"call-{uuid.uuid4().hex[:8]}" for _ in range(2)]
        workflow_ids = []
        for call_id in call_ids:
            r = http.post(
                tenant.webhook,
                content=raw(end_of_call(call_id, caller.number, caller.turns)),
                headers=tenant.vapi_headers,
            )
            assert r.status_code == 200, r.text
            workflow_ids.append(r.json()["workflow_id"])
        for wid in workflow_ids:
            assert (await post_call_result(stack.client, wid)).status == "processed"
        # The hot path reads the memory back during a later call (a tool call with its trace).
        r = http.post(
            tenant.webhook,
            content=raw(tool_call(caller.number, "memory_search", {"query": "what rattles"})),
            headers=tenant.vapi_headers,
        )
        assert caller.appliance in r.text.lower()

        # Before forgetting, the search below does find the caller (the test can fail).
        before = rows_as_text(stack.engine)
        assert all(m in before for m in markers), [m for m in markers if m not in before]

        handle_ = http.post(
            f"/v1/agents/{tenant.agent_id}/callers/lookup",
            json={"number": caller.number},
            headers=ADMIN,
        ).json()
        r = http.delete(
            f"/v1/agents/{tenant.agent_id}/callers/{handle_['caller_hash']}", headers=ADMIN
        )
        assert r.status_code == 200 and r.json()["rows_deleted"] >= 6

    after = rows_as_text(stack.engine)
    assert [m for m in markers if m in after] == []

    with stack.engine.connect() as conn:
        vectors = conn.execute(
            select(VectorEntry.item_id).where(
                VectorEntry.partition
                == partition_key(tenant.org_id, tenant.agent_id, handle_["caller_hash"])
            )
        ).all()
        by_id = conn.execute(
            select(VectorEntry.item_id).where(
                VectorEntry.item_id.in_([summary_item_id("vapi", c) for c in call_ids])  # type: ignore[attr-defined]
            )
        ).all()
    assert vectors == [] and by_id == []

    leaks = {
        path: [m for m in markers if m in data]
        for path, data in files_as_bytes(stack.settings.data_dir).items()
    }
    assert {p: m for p, m in leaks.items() if m} == {}
    if stack.engine.dialect.name == "postgresql":
        tables = [*MemoryService.forget_tables(), *CallsService.forget_tables(), "vectorentry"]
        # A plain VACUUM removes every dead tuple; VACUUM FULL also leaves no stray bytes.
        full = stack.settings.forget_vacuum_full
        pages = postgres_pages(stack.engine, tables, tuples_only=not full)
        assert {
            t: [m for m in markers if m in b]
            for t, b in pages.items()
            if any(m in b for m in markers)
        } == {}
    if stack.engine.dialect.name == "sqlite":
        db_file = Path(str(stack.engine.url.database))
        assert db_file.parent == stack.settings.data_dir and db_file.exists()
        with stack.engine.connect() as conn:
            assert conn.execute(text("PRAGMA secure_delete")).scalar() == 1

    for wid in workflow_ids:
        history = await history_bytes(temporal_env, stack, wid)
        assert [m for m in markers if m in history] == []
