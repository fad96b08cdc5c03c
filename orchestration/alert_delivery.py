"""AlertDeliveryWorkflow: send one alert notification (an outbox row) to its channel.

The send activity posts once per attempt; Temporal's retry policy (``ALERT_SEND_RETRY``) is the
only retry owner. A receiver's 5xx, 429 or a network error retries; a 4xx or an egress refusal
does not. When the tries run out the row is marked ``failed`` with its last error.

Deterministic orchestration only: I/O is in activities reached by name.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError

from orchestration.alert_delivery_types import (
    ACT_FAIL_ALERT,
    ACT_SEND_ALERT,
    AlertDeliveryInput,
    AlertDeliveryResult,
    FailDeliveryInput,
    SendOutcome,
)
from orchestration.policies import (
    ALERT_SEND_RETRY,
    ALERT_SEND_TIMEOUT,
    DB_ACTIVITY_TIMEOUT,
    DB_RETRY,
)


@workflow.defn(name="AlertDeliveryWorkflow")
class AlertDeliveryWorkflow:
    @workflow.run
    async def run(self, data: AlertDeliveryInput) -> AlertDeliveryResult:
        try:
            sent: SendOutcome = await workflow.execute_activity(
                ACT_SEND_ALERT,
                data,
                result_type=SendOutcome,
                start_to_close_timeout=ALERT_SEND_TIMEOUT,
                retry_policy=ALERT_SEND_RETRY,
            )
        except ActivityError as exc:
            cause = exc.cause
            error = str(cause.message if cause is not None and hasattr(cause, "message") else exc)
            await workflow.execute_activity(
                ACT_FAIL_ALERT,
                FailDeliveryInput(delivery_id=data.delivery_id, error=error[:500]),
                start_to_close_timeout=DB_ACTIVITY_TIMEOUT,
                retry_policy=DB_RETRY,
            )
            return AlertDeliveryResult(data.delivery_id, "failed")
        return AlertDeliveryResult(data.delivery_id, sent.status)
