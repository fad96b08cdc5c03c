"""Starts DriftWatchWorkflow and keeps each agent's drift-watch Temporal Schedule in step with
the interval (``BACKLINE_DRIFT_WATCH_INTERVAL_S``). Client-side only; never imported by a
workflow."""

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
    WorkflowHandle,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy

from orchestration.drift_watch import DriftWatchWorkflow
from orchestration.drift_watch_types import (
    DriftWatchInput,
    DriftWatchResult,
    drift_watch_schedule_id,
    drift_watch_workflow_id,
)
from orchestration.schedules import upsert_schedule

DriftWatchHandle = WorkflowHandle[DriftWatchWorkflow, DriftWatchResult]


async def start_drift_watch(client: Client, *, agent_id: str, task_queue: str) -> DriftWatchHandle:
    """Run the agent's drift watch now, or join the run in progress."""
    return await client.start_workflow(
        DriftWatchWorkflow.run,
        DriftWatchInput(agent_id),
        id=drift_watch_workflow_id(agent_id),
        task_queue=task_queue,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )


def _schedule(agent_id: str, interval_s: int, task_queue: str) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            DriftWatchWorkflow.run,
            DriftWatchInput(agent_id),
            id=drift_watch_workflow_id(agent_id),
            task_queue=task_queue,
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(seconds=interval_s))]),
        # A long catch-up must not pile up behind itself.
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
        state=ScheduleState(note=f"agent {agent_id}: drift watch every {interval_s}s"),
    )


async def sync_drift_schedule(
    client: Client, *, agent_id: str, interval_s: int, task_queue: str
) -> str:
    """Create or update the agent's schedule; returns created | updated."""
    return await upsert_schedule(
        client, drift_watch_schedule_id(agent_id), _schedule(agent_id, interval_s, task_queue)
    )
