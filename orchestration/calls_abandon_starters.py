"""Creates (or updates) the Temporal Schedule that runs CallsAbandonWorkflow, idempotently, at
worker start. Client-side only; never imported by a workflow."""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)

from orchestration.calls_abandon import CallsAbandonWorkflow
from orchestration.calls_abandon_types import ABANDON_SCHEDULE_ID, AbandonInput


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
    try:
        await client.create_schedule(ABANDON_SCHEDULE_ID, schedule)
        return "created"
    except ScheduleAlreadyRunningError:

        def _replace(_input: ScheduleUpdateInput) -> ScheduleUpdate:
            return ScheduleUpdate(schedule=schedule)

        await client.get_schedule_handle(ABANDON_SCHEDULE_ID).update(_replace)
        return "updated"
