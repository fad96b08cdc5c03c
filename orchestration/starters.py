"""Typed helpers that start workflows with their business-key ids and reuse policies."""

from __future__ import annotations

from collections.abc import Callable

from temporalio.client import Client, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from orchestration.post_call import PostCallWorkflow
from orchestration.post_call_types import PostCallInput
from orchestration.prompt_rollout import PromptRolloutWorkflow, rollout_workflow_id
from orchestration.prompt_rollout_types import RolloutInput, RolloutResult


async def start_post_call(
    client: Client, *, workflow_id: str, data: PostCallInput, task_queue: str
) -> bool:
    """Start PostCallWorkflow once; a duplicate id answers False instead of starting again."""
    try:
        await client.start_workflow(
            PostCallWorkflow.run,
            data,
            id=workflow_id,
            task_queue=task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        )
    except WorkflowAlreadyStartedError:
        return False
    return True


class TemporalPostCallStarter:
    """``PostCallStarter`` (``core.calls.answering_ports``) over the process's Temporal client,
    which may connect after the process started (``client`` answers None until then)."""

    def __init__(self, client: Callable[[], Client | None], task_queue: str) -> None:
        self._client = client
        self._task_queue = task_queue

    async def start(
        self, *, inbox_id: int, platform: str, call_id: str, revision: int, workflow_id: str
    ) -> bool | None:
        client = self._client()
        if client is None:
            return None
        return await start_post_call(
            client,
            workflow_id=workflow_id,
            data=PostCallInput(
                inbox_id=inbox_id, platform=platform, call_id=call_id, revision=revision
            ),
            task_queue=self._task_queue,
        )


async def start_prompt_rollout(
    client: Client, *, data: RolloutInput, task_queue: str
) -> WorkflowHandle[PromptRolloutWorkflow, RolloutResult]:
    """Start the agent's rollout; raises ``WorkflowAlreadyStartedError`` while one is running.

    One id per agent (``prompt-rollout-{agent_id}``): a finished rollout's id may be reused by
    the next rollout, but never while a rollout for the agent is still open.
    """
    return await client.start_workflow(
        PromptRolloutWorkflow.run,
        data,
        id=rollout_workflow_id(data.agent_id),
        task_queue=task_queue,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
    )
