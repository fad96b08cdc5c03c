"""The nightly eval schedules: one Temporal Schedule per registered suite, running
``EvalSuiteWorkflow`` on the production label at ``BACKLINE_EVAL_NIGHTLY_CRON``. Created or
updated when a suite is registered, deleted when it is unregistered. Client-side only; never
imported by a workflow."""

from __future__ import annotations

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
)
from temporalio.service import RPCError, RPCStatusCode

from orchestration.eval_types import (
    EvalSuiteInput,
    eval_nightly_schedule_id,
    eval_nightly_workflow_id,
)
from orchestration.evals import EvalSuiteWorkflow
from orchestration.schedules import upsert_schedule

NIGHTLY_LABEL = "production"


def nightly_schedule(agent_id: str, suite_name: str, cron: str, task_queue: str) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            EvalSuiteWorkflow.run,
            EvalSuiteInput("", agent_id=agent_id, suite_name=suite_name, label=NIGHTLY_LABEL),
            id=eval_nightly_workflow_id(agent_id, suite_name),
            task_queue=task_queue,
        ),
        spec=ScheduleSpec(cron_expressions=[cron]),
        # A night's run still going when the next is due: skip the next one.
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
        state=ScheduleState(
            note=f"agent {agent_id}: eval suite '{suite_name}' on {NIGHTLY_LABEL} at '{cron}'"
        ),
    )


async def sync_eval_nightly_schedule(
    client: Client, *, agent_id: str, suite_name: str, cron: str, task_queue: str
) -> str:
    """Create or update the suite's nightly schedule; returns created | updated."""
    return await upsert_schedule(
        client,
        eval_nightly_schedule_id(agent_id, suite_name),
        nightly_schedule(agent_id, suite_name, cron, task_queue),
    )


async def remove_eval_nightly_schedule(client: Client, *, agent_id: str, suite_name: str) -> bool:
    """Delete the suite's nightly schedule; False when there was none."""
    handle = client.get_schedule_handle(eval_nightly_schedule_id(agent_id, suite_name))
    try:
        await handle.delete()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True
