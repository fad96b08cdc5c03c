"""I/O dataclasses and ids of ``AlertDeliveryWorkflow`` and its activities.

Fields may be added (with defaults) safely; never renamed or removed once shipped. Inputs carry
the outbox row id only: the alert, the channel's URL and its secret stay in the database.
"""

from __future__ import annotations

from dataclasses import dataclass

ACT_SEND_ALERT = "alerts.send_delivery"
ACT_FAIL_ALERT = "alerts.fail_delivery"


def alert_delivery_workflow_id(delivery_id: int) -> str:
    return f"alert-delivery-{delivery_id}"


@dataclass
class AlertDeliveryInput:
    delivery_id: int


@dataclass
class SendOutcome:
    status: str  # sent | skipped (not pending any more)
    status_code: int | None = None


@dataclass
class FailDeliveryInput:
    delivery_id: int
    error: str


@dataclass
class AlertDeliveryResult:
    delivery_id: int
    status: str  # sent | skipped | failed
