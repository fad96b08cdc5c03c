"""Creates (or brings up to date) the hourly retention schedule; idempotent, run at worker
start-up. Client-side only; never imported by a workflow."""

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

from orchestration.retention import RetentionWorkflow
from orchestration.retention_types import (
    RETENTION_INTERVAL_S,
    RETENTION_SCHEDULE_ID,
    RETENTION_WORKFLOW_ID,
    RetentionInput,
)
from orchestration.schedules import upsert_schedule


async def ensure_retention_schedule(
    client: Client, *, task_queue: str, interval_s: int = RETENTION_INTERVAL_S
) -> str:
    """``created`` the first time, ``updated`` after (same id, current definition)."""
    schedule = Schedule(
        action=ScheduleActionStartWorkflow(
            RetentionWorkflow.run,
            RetentionInput(),
            id=RETENTION_WORKFLOW_ID,
            task_queue=task_queue,
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(seconds=interval_s))]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
        state=ScheduleState(note="purges data past each organization's retention windows"),
    )
    return await upsert_schedule(client, RETENTION_SCHEDULE_ID, schedule)
