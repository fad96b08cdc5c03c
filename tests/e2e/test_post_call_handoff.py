"""An end-of-call reply waits for the inbox row only, never for the workflow start: on the
embedded default (a SQLite file) the report is answered while its start is held up or Temporal
is unreachable, and the workflow starts afterwards, once per call, with one memory written."""

from __future__ import annotations

import asyncio
import threading
import uuid
from typing import Any

import pytest
from sqlmodel import Session, col, func, select
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError

from core.calls.answering_ports import PostCallStarter
from core.calls.models import WebhookInbox
from core.memory.models import Memory
from orchestration.post_call_types import PostCallResult
from tests.conftest import Stack, async_wait_for
from tests.helpers import DANA_CALL_1, create_tenant, end_of_call, raw

pytestmark = [pytest.mark.temporal]
DANA = "+14155550123"


class HeldStarter:
    """The real starter behind a gate: a workflow engine that takes as long as the test says."""

    def __init__(self, inner: PostCallStarter) -> None:
        self.inner = inner
        self.entered = threading.Event()
        self.release = threading.Event()

    async def start(self, **job: Any) -> bool | None:
        self.entered.set()
        await asyncio.to_thread(self.release.wait, 60)
        return await self.inner.start(**job)


def _row(stack: Stack, call_id: str) -> WebhookInbox:
    with Session(stack.engine) as s:
        return s.exec(select(WebhookInbox).where(WebhookInbox.call_id == call_id)).one()


def _memories(stack: Stack, call_id: str) -> int:
    with Session(stack.engine) as s:
        stmt = select(func.count()).where(col(Memory.source_call_id) == call_id)
        return int(s.exec(stmt).one())


async def _exists(stack: Stack, workflow_id: str) -> bool:
    try:
        await stack.client.get_workflow_handle(workflow_id).describe()
    except RPCError:
        return False
    return True


async def _wait_started(stack: Stack, workflow_id: str, timeout: float = 60) -> None:
    """Poll until the workflow exists (the drainer or the dispatcher started it)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await _exists(stack, workflow_id):
        assert asyncio.get_running_loop().time() < deadline, f"{workflow_id} never started"
        await asyncio.sleep(0.5)


async def test_reply_returns_while_the_workflow_start_is_held(sqlite_stack: Stack) -> None:
    stack = sqlite_stack
    answering = stack.api._app_state().answering
    held = HeldStarter(answering.post_call)
    answering.post_call = held
    call_id = f"call-{uuid.uuid4().hex[:8]}"
    body = raw(end_of_call(call_id, DANA, DANA_CALL_1))
    try:
        with stack.http() as http:
            tenant = create_tenant(http)
            reply = await asyncio.to_thread(
                http.post, tenant.webhook, content=body, headers=tenant.vapi_headers
            )
            assert reply.status_code == 200, reply.text
            accepted = reply.json()
            assert accepted["status"] == "accepted" and accepted["duplicate"] is False
            assert accepted["workflow_started"] is None
            # Answered while the start is still held: the row is the only record so far.
            assert await asyncio.to_thread(held.entered.wait, 30)
            assert not held.release.is_set()
            assert _row(stack, call_id).dispatched_at is None
            assert not await _exists(stack, accepted["workflow_id"])

            held.release.set()
            handle = stack.client.get_workflow_handle(
                accepted["workflow_id"], result_type=PostCallResult
            )
            await _wait_started(stack, handle.id, timeout=30)
            assert (await handle.result()).status == "processed"
            await async_wait_for(lambda: _row(stack, call_id).dispatched_at is not None)

            # The same report again: the stored row, no second workflow, no second memory.
            again = await asyncio.to_thread(
                http.post, tenant.webhook, content=body, headers=tenant.vapi_headers
            )
            assert again.status_code == 200
            assert again.json()["duplicate"] is True
            assert again.json()["workflow_id"] == accepted["workflow_id"]
    finally:
        held.release.set()
        answering.post_call = held.inner
    runs = [w async for w in stack.client.list_workflows(f"WorkflowId = '{handle.id}'")]
    assert len(runs) == 1 and runs[0].status == WorkflowExecutionStatus.COMPLETED
    assert _memories(stack, call_id) == 1


async def test_report_accepted_while_temporal_is_unreachable_starts_once_it_is_back(
    sqlite_stack: Stack,
) -> None:
    stack = sqlite_stack
    state = stack.api._app_state()
    call_ids = [f"call-{uuid.uuid4().hex[:8]}" for _ in range(3)]
    with stack.http() as http:
        tenant = create_tenant(http)
        client, state.temporal = state.temporal, None
        try:
            replies = [
                await asyncio.to_thread(
                    http.post,
                    tenant.webhook,
                    content=raw(end_of_call(call_id, DANA, DANA_CALL_1)),
                    headers=tenant.vapi_headers,
                )
                for call_id in call_ids
            ]
            assert [r.status_code for r in replies] == [200] * 3
            # The drainer found no engine: every row waits in the inbox, none started.
            await asyncio.sleep(0.5)
            assert all(_row(stack, c).dispatched_at is None for c in call_ids)
            for reply in replies:
                assert not await _exists(stack, reply.json()["workflow_id"])
        finally:
            state.temporal = client
        # Temporal is back: the periodic dispatcher starts each one (a restarted API does the
        # same with rows its drainer never reached).
        for reply in replies:
            handle = stack.client.get_workflow_handle(
                reply.json()["workflow_id"], result_type=PostCallResult
            )
            # The dispatcher's tick runs every 5 s and leaves rows younger than 3 s alone.
            await _wait_started(stack, handle.id)
            assert (await handle.result()).status == "processed"
        # A platform retrying a report after the outage changes nothing.
        again = await asyncio.to_thread(
            http.post,
            tenant.webhook,
            content=raw(end_of_call(call_ids[0], DANA, DANA_CALL_1)),
            headers=tenant.vapi_headers,
        )
        assert again.json()["duplicate"] is True
    for call_id in call_ids:
        await async_wait_for(lambda c=call_id: _row(stack, c).dispatched_at is not None)
        assert _memories(stack, call_id) == 1
