"""Starts AlertDeliveryWorkflow for outbox rows. Client-side only; never imported by a
workflow. One workflow id per row (``alert-delivery-<id>``): starting twice never sends
twice."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from orchestration.alert_delivery import AlertDeliveryWorkflow
from orchestration.alert_delivery_types import AlertDeliveryInput, alert_delivery_workflow_id


async def start_alert_delivery(client: Client, *, delivery_id: int, task_queue: str) -> bool:
    """Start the row's delivery once; a duplicate answers False instead of starting again."""
    try:
        await client.start_workflow(
            AlertDeliveryWorkflow.run,
            AlertDeliveryInput(delivery_id=delivery_id),
            id=alert_delivery_workflow_id(delivery_id),
            task_queue=task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        )
    except WorkflowAlreadyStartedError:
        return False
    return True
