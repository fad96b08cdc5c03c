"""Typed helpers that start knowledge refreshes and keep each source's Temporal Schedule in step
with its refresh interval (created, updated and removed with the source).

Client-side only (API, CLI, worker start-up); never imported by a workflow.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleHandle,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
    WorkflowHandle,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.service import RPCError, RPCStatusCode

from orchestration.knowledge_refresh import (
    KnowledgeFreshnessSweepWorkflow,
    KnowledgeRefreshWorkflow,
    KnowledgeScheduledRefreshWorkflow,
)
from orchestration.knowledge_refresh_types import (
    SWEEP_INTERVAL_S,
    SWEEP_SCHEDULE_ID,
    RefreshInput,
    RefreshResult,
    SweepInput,
    refresh_schedule_id,
    refresh_workflow_id,
)
from orchestration.schedules import upsert_schedule

RefreshHandle = WorkflowHandle[KnowledgeRefreshWorkflow, RefreshResult]


async def start_refresh(
    client: Client, *, data: RefreshInput, task_queue: str
) -> tuple[RefreshHandle, bool]:
    """Start the source's refresh, or join the one already running.

    Returns (handle, joined): ``joined`` is True when a refresh was already running and no second
    one started (``WorkflowIDConflictPolicy.USE_EXISTING``)."""
    workflow_id = refresh_workflow_id(data.source_id)
    before: str | None = None
    try:
        described = await client.get_workflow_handle(workflow_id).describe()
        if described.status is not None and described.status.name == "RUNNING":
            before = described.run_id
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise
    handle = await client.start_workflow(
        KnowledgeRefreshWorkflow.run,
        data,
        id=workflow_id,
        task_queue=task_queue,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )
    joined = before is not None and handle.result_run_id == before
    return handle, joined


def _refresh_schedule(source_id: str, interval_s: int, task_queue: str) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            KnowledgeScheduledRefreshWorkflow.run,
            RefreshInput(source_id, reason="schedule"),
            id=f"kb-scheduled-{source_id}",
            task_queue=task_queue,
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(seconds=interval_s))]),
        # A slow refresh must not pile up behind itself.
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
        state=ScheduleState(note=f"knowledge source {source_id}: refresh every {interval_s}s"),
    )


async def sync_refresh_schedule(
    client: Client, *, source_id: str, interval_s: int | None, task_queue: str
) -> str:
    """Make the source's schedule match its interval: create, update or delete it.
    Returns what it did: created | updated | deleted | absent."""
    schedule_id = refresh_schedule_id(source_id)
    handle = client.get_schedule_handle(schedule_id)
    if interval_s is None:
        return "deleted" if await delete_schedule(handle) else "absent"
    return await upsert_schedule(
        client, schedule_id, _refresh_schedule(source_id, interval_s, task_queue)
    )


async def delete_schedule(handle: ScheduleHandle) -> bool:
    try:
        await handle.delete()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


async def delete_refresh_schedule(client: Client, source_id: str) -> bool:
    return await delete_schedule(client.get_schedule_handle(refresh_schedule_id(source_id)))


async def refresh_schedule_ids(client: Client) -> list[str]:
    """Ids of every knowledge-source schedule (for removing ones whose source is gone)."""
    prefix = refresh_schedule_id("")
    found: list[str] = []
    async for entry in await client.list_schedules():
        if entry.id.startswith(prefix):
            found.append(entry.id)
    return found


async def ensure_sweep_schedule(
    client: Client, *, task_queue: str, interval_s: int = SWEEP_INTERVAL_S
) -> str:
    schedule = Schedule(
        action=ScheduleActionStartWorkflow(
            KnowledgeFreshnessSweepWorkflow.run,
            SweepInput(),
            id="kb-freshness-sweep-run",
            task_queue=task_queue,
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(seconds=interval_s))]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
        state=ScheduleState(note="marks knowledge sources past their maximum staleness"),
    )
    return await upsert_schedule(client, SWEEP_SCHEDULE_ID, schedule)


async def describe_refresh(
    client: Client, source_id: str, run_id: str | None = None
) -> tuple[str, str | None, str, RefreshResult | None, str | None] | None:
    """The state of one refresh run (the latest when ``run_id`` is None):
    (workflow id, run id, status, result when it completed, failure when it did not).
    None when no refresh of this source ever ran."""
    handle: RefreshHandle = client.get_workflow_handle_for(
        KnowledgeRefreshWorkflow.run, refresh_workflow_id(source_id), run_id=run_id
    )
    try:
        described = await handle.describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    status = described.status.name.lower() if described.status is not None else "unknown"
    result: RefreshResult | None = None
    failure: str | None = None
    if status == "completed":
        result = await handle.result()
    elif status != "running":
        try:
            await handle.result()
        except Exception as exc:  # the run's own failure, reported as text
            failure = str(getattr(exc, "cause", None) or exc)[:1000]
    return handle.id, described.run_id, status, result, failure
