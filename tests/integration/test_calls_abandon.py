"""Calls that never sent an end-of-call are closed as ``abandoned`` by CallsAbandonWorkflow (on
the real Temporal dev server and Postgres), left out of call counts and quality, and a late
end-of-call still ends them; the schedule is created idempotently."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session
from temporalio.testing import WorkflowEnvironment

from activities.calls import CallsActivities
from cli.worker import worker_for
from core.calls import queries
from core.calls import repository as repo
from core.calls.events import CallEnded, CallRef
from core.calls.models import CallEvent
from core.calls.service import CallsService
from core.db import utcnow
from core.prompts import repository as prompt_repo
from orchestration.calls_abandon import CallsAbandonWorkflow
from orchestration.calls_abandon_starters import ensure_abandon_schedule
from orchestration.calls_abandon_types import ABANDON_SCHEDULE_ID, AbandonInput, AbandonResult
from tests.conftest import SECRET_KEY

pytestmark = [pytest.mark.postgres, pytest.mark.temporal]
IDLE_S = 3600


def _seed(engine: Engine, agent_id: str) -> None:
    """Three calls: silent for two hours after a context request, active a minute ago, ended."""
    long_ago = utcnow() - timedelta(hours=2)
    with Session(engine) as session:
        calls = CallsService(session, SECRET_KEY)
        for call_id in ("silent", "active", "ended"):
            call = calls.touch_call(
                org_id="org-x",
                agent_id=agent_id,
                platform="vapi",
                call_id=call_id,
                caller_number="+14155550123",
                prompt_version="v1",
            )
            call.updated_at = call.created_at = call.started_at = long_ago
            at = long_ago if call_id != "active" else utcnow() - timedelta(minutes=1)
            session.add(
                CallEvent(org_id="org-x", agent_id=agent_id, platform="vapi",
                          platform_call_id=call_id, type="context_request",
                          platform_type="assistant-request", at=at)
            )  # fmt: skip
            if call_id == "ended":
                call.status = "ended"
        session.commit()


async def test_idle_calls_are_abandoned_left_out_of_counts_and_a_late_end_of_call_ends_them(
    temporal_env: WorkflowEnvironment, pg_engine: Engine
) -> None:
    agent_id = f"agent-{uuid.uuid4().hex[:8]}"
    _seed(pg_engine, agent_id)
    queue = f"abandon-{uuid.uuid4().hex[:8]}"
    activities = CallsActivities(pg_engine, SECRET_KEY, IDLE_S)
    with ThreadPoolExecutor(max_workers=2) as executor:
        async with worker_for(temporal_env.client, queue, [activities], executor):
            result = await temporal_env.client.execute_workflow(
                CallsAbandonWorkflow.run,
                AbandonInput(),
                id=f"calls-abandon-{queue}",
                task_queue=queue,
                result_type=AbandonResult,
            )
    assert f"{agent_id}/vapi/silent" in result.call_ids
    assert not [c for c in result.call_ids if c.startswith(agent_id) and "silent" not in c]

    since = utcnow() - timedelta(days=30)
    with Session(pg_engine) as session:
        states = {
            c: repo.get_call(session, agent_id, "vapi", c).status  # type: ignore[union-attr]
            for c in ("silent", "active", "ended")
        }
        assert states == {"silent": "abandoned", "active": "in_progress", "ended": "ended"}
        [note] = [
            e for e in repo.list_call_events(session, agent_id, "vapi", "silent")
            if e.type == "call_abandoned"
        ]  # fmt: skip
        assert note.data["idle_s"] == IDLE_S
        assert len(queries.list_call_activity(session, agent_id, since)) == 2
        assert queries.count_abandoned_calls(session, agent_id, since) == 1
        # Rollout guards read ended calls only: an abandoned call is no outcome of its prompt.
        guarded = prompt_repo.call_outcome_rows(session, agent_id, ["v1"], since)
        assert [row[2] for row in guarded] == ["ended"]

        # The end-of-call report arrives late: processed as usual, the call leaves abandoned.
        ended = CallEnded(call=CallRef(platform="vapi", call_id="silent"), turns=[])
        stored = CallsService(session, SECRET_KEY).store_ended_call(
            org_id="org-x", agent_id=agent_id, ended=ended, revision=1
        )
        session.commit()
        assert stored is not None and stored.status == "ended"
        assert len(queries.list_call_activity(session, agent_id, since)) == 3
        assert queries.count_abandoned_calls(session, agent_id, since) == 0


async def test_the_abandon_schedule_is_created_once_and_updated_after(
    temporal_env: WorkflowEnvironment,
) -> None:
    client = temporal_env.client
    try:
        first = await ensure_abandon_schedule(client, task_queue="q-one", interval_s=300)
        second = await ensure_abandon_schedule(client, task_queue="q-two", interval_s=120)
        assert (first, second) == ("created", "updated")
        described = await client.get_schedule_handle(ABANDON_SCHEDULE_ID).describe()
        assert described.schedule.spec.intervals[0].every == timedelta(seconds=120)
        assert described.schedule.action.task_queue == "q-two"  # type: ignore[attr-defined]
    finally:
        await client.get_schedule_handle(ABANDON_SCHEDULE_ID).delete()
