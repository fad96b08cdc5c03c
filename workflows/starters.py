"""Typed helpers that start workflows with their business-key ids and reuse policies."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from workflows.post_call import PostCallWorkflow
from workflows.types import PostCallInput


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
