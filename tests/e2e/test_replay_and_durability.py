"""Replays start one workflow and write one set of memories; a worker killed mid-activity
resumes on restart with nothing lost or duplicated."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest
from sqlmodel import Session, col, func, select
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowExecutionStatus

from core.calls.models import WebhookInbox
from core.memory.models import Fact, Memory
from orchestration.post_call_types import PostCallResult
from tests.conftest import Stack, async_wait_for, post_call_result
from tests.helpers import DANA_CALL_1, create_tenant, end_of_call, raw

pytestmark = [pytest.mark.postgres, pytest.mark.temporal]
DANA = "+14155550123"
ROOT = Path(__file__).resolve().parents[2]


def _count(engine, model, *where) -> int:  # type: ignore[no-untyped-def]
    with Session(engine) as s:
        return int(s.exec(select(func.count()).select_from(model).where(*where)).one())


async def test_report_delivered_five_times_concurrently_and_across_restart_runs_once(
    stack: Stack, embedder
) -> None:  # type: ignore[no-untyped-def]
    call_id = f"call-{uuid.uuid4().hex[:8]}"
    with stack.http() as http:
        tenant = create_tenant(http)
    body = raw(end_of_call(call_id, DANA, DANA_CALL_1))

    async with httpx.AsyncClient(base_url=stack.api.url, timeout=30) as client:
        replies = await asyncio.gather(
            *[
                client.post(tenant.webhook, content=body, headers=tenant.vapi_headers)
                for _ in range(5)
            ]
        )
    # One accepted, four duplicates, never a 5xx (the inbox row is inserted or found whole).
    assert [r.status_code for r in replies] == [200] * 5, [r.text for r in replies]
    assert sorted(r.json()["duplicate"] for r in replies) == [False, True, True, True, True]
    assert {r.json()["workflow_id"] for r in replies} == {
        f"post-call-{tenant.agent_id}-vapi-{call_id}"
    }

    await asyncio.to_thread(stack.restart_api, embedder)
    with stack.http() as http:
        again = http.post(tenant.webhook, content=body, headers=tenant.vapi_headers)
    assert again.status_code == 200 and again.json()["duplicate"] is True

    result = await post_call_result(stack.client, f"post-call-{tenant.agent_id}-vapi-{call_id}")
    assert result.status == "processed"
    assert _count(stack.engine, WebhookInbox, WebhookInbox.call_id == call_id) == 1
    assert _count(stack.engine, Memory, Memory.source_call_id == call_id) == 1
    facts = _count(stack.engine, Fact, Fact.source_call_id == call_id)
    assert facts >= 2
    # Only one execution exists under that id: listing finds exactly one run.
    runs = [
        w
        async for w in stack.client.list_workflows(
            f"WorkflowId = 'post-call-{tenant.agent_id}-vapi-{call_id}'"
        )
    ]
    assert len(runs) == 1


async def test_corrected_redelivery_runs_as_revision_and_replaces_memories(stack: Stack) -> None:
    call_id = f"call-{uuid.uuid4().hex[:8]}"
    with stack.http() as http:
        tenant = create_tenant(http)
        first = http.post(
            tenant.webhook,
            content=raw(end_of_call(call_id, DANA, DANA_CALL_1)),
            headers=tenant.vapi_headers,
        )
        await post_call_result(stack.client, first.json()["workflow_id"])
        corrected = [
            *DANA_CALL_1[:-2],
            ("caller", "Actually, please text me instead of email from now on."),
        ]
        second = http.post(
            tenant.webhook,
            content=raw(end_of_call(call_id, DANA, corrected)),
            headers=tenant.vapi_headers,
        )
    assert second.json()["revision"] == 2
    assert second.json()["workflow_id"] == f"post-call-{tenant.agent_id}-vapi-{call_id}-r2"
    await post_call_result(stack.client, second.json()["workflow_id"])
    with Session(stack.engine) as s:
        memories = s.exec(select(Memory).where(Memory.source_call_id == call_id)).all()
        prefs = s.exec(
            select(Fact).where(Fact.source_call_id == call_id, Fact.key == "contact_preference")
        ).all()
    assert len(memories) == 1 and memories[0].revision == 2
    assert [f.value for f in prefs] == ["text"]


async def test_worker_killed_mid_activity_resumes_without_loss_or_duplicates(
    stack: Stack, tmp_path: Path
) -> None:
    """A second worker process, held inside write_memories by a barrier file, is SIGKILLed."""
    barrier = tmp_path / "barrier"
    entered = tmp_path / "entered"
    barrier.write_text("hold")
    env = {
        **os.environ,
        "BACKLINE_DATABASE_URL": stack.settings.resolved_database_url,
        "BACKLINE_TEMPORAL_ADDRESS": stack.settings.temporal_address or "",
        "BACKLINE_TASK_QUEUE": stack.settings.task_queue + "-durable",
        "BACKLINE_SECRET_KEY": stack.settings.secret_key.get_secret_value(),
        "BARRIER_FILE": str(barrier),
        "ENTERED_FILE": str(entered),
    }
    cmd = [sys.executable, "-m", "tests.e2e.barrier_worker"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env)
    try:
        call_id = f"call-{uuid.uuid4().hex[:8]}"
        from orchestration.post_call_types import PostCallInput
        from orchestration.starters import start_post_call

        with stack.http() as http:
            tenant = create_tenant(http)
        # Accept the report into the inbox through the edge (its own queue has no worker), then
        # start the workflow on the barrier worker's queue.
        with Session(stack.engine) as s:
            from core.calls.service import CallsService

            receipt = CallsService(
                s, stack.settings.secret_key.get_secret_value()
            ).receive_call_ended(
                org_id=tenant.org_id,
                agent_id=tenant.agent_id,
                platform="vapi",
                call_id=call_id,
                raw=raw(end_of_call(call_id, DANA, DANA_CALL_1)),
                caller_number=DANA,
            )
            s.commit()
        await start_post_call(
            stack.client,
            workflow_id=receipt.workflow_id,
            data=PostCallInput(inbox_id=receipt.inbox_id, platform="vapi", call_id=call_id),
            task_queue=env["BACKLINE_TASK_QUEUE"],
        )
        await async_wait_for(lambda: entered.exists() or proc.poll() is not None, timeout=60)
        assert entered.exists(), f"barrier worker exited early with {proc.returncode}"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        assert _count(stack.engine, Memory, Memory.source_call_id == call_id) == 0

        barrier.unlink()
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env)
        handle = stack.client.get_workflow_handle(receipt.workflow_id, result_type=PostCallResult)
        result = await asyncio.wait_for(handle.result(), timeout=90)
        assert result.status == "processed"

        history = await handle.fetch_history()
        starts = [
            e.activity_task_started_event_attributes.attempt
            for e in history.events
            if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
        ]
        assert max(starts) >= 2, "the killed activity should show a retry in history"
        desc = await handle.describe()
        assert desc.status == WorkflowExecutionStatus.COMPLETED
        assert _count(stack.engine, Memory, Memory.source_call_id == call_id) == 1
        with Session(stack.engine) as s:
            keys = s.exec(select(Fact.key).where(col(Fact.source_call_id) == call_id)).all()
        assert len(keys) == len(set(keys)) and "contact_preference" in keys
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=20)
