"""Creates (or updates) the Temporal Schedule that runs CallsAbandonWorkflow, idempotently, at
worker start. Client-side only; never imported by a workflow."""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
)

from orchestration.calls_abandon import CallsAbandonWorkflow
from orchestration.calls_abandon_types import ABANDON_SCHEDULE_ID, AbandonInput
from orchestration.schedules import upsert_schedule


async def ensure_abandon_schedule(client: Client, *, task_queue: str, interval_s: int) -> str:
    """Create the schedule, or bring an existing one in line; returns created | updated."""
    schedule = Schedule(
        action=ScheduleActionStartWorkflow(
            CallsAbandonWorkflow.run,
            AbandonInput(),
            id="calls-abandon-run",
            task_queue=task_queue,
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(seconds=interval_s))]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
        state=ScheduleState(note="closes calls that never sent an end-of-call as abandoned"),
    )
    return await upsert_schedule(client, ABANDON_SCHEDULE_ID, schedule)
