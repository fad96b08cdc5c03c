"""Alert delivery activities: send one outbox row to its channel, or mark it failed.

Each attempt is counted and its error kept on the row before the activity fails, so
``GET /v1/alerts/{id}`` shows a delivery that is retrying and why. A row that is no longer
pending (sent by an earlier attempt, or suppressed) is not sent again.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.engine import Engine
from temporalio import activity
from temporalio.exceptions import ApplicationError

from connectors.alert_channels import send
from core.db import session_scope
from core.egress import EgressPolicy
from core.errors import NotFoundError
from core.monitoring import delivery
from core.monitoring.rules import channel_target
from orchestration.alert_delivery_types import (
    ACT_FAIL_ALERT,
    ACT_SEND_ALERT,
    AlertDeliveryInput,
    FailDeliveryInput,
    SendOutcome,
)


class AlertActivities:
    def __init__(
        self, engine: Engine, secret_key: str, policy: EgressPolicy, timeout_s: float = 10.0
    ) -> None:
        self._engine = engine
        self._secret_key = secret_key
        self._policy = policy
        self._timeout_s = timeout_s

    @activity.defn(name=ACT_SEND_ALERT)
    def send_delivery(self, data: AlertDeliveryInput) -> SendOutcome:
        with session_scope(self._engine) as session:
            row = delivery.begin_attempt(session, data.delivery_id)
            if row is None:
                return SendOutcome("skipped")
            try:
                channel, url, secret = channel_target(
                    session, row.org_id, row.channel_id, self._secret_key
                )
            except NotFoundError:
                channel = None
            kind, key, payload = (channel.kind if channel else ""), row.idempotency_key, row.payload
        if channel is None:
            raise ApplicationError(
                f"alert channel {row.channel_id} no longer exists", type="NotFound"
            )
        result = send(
            self._policy,
            kind=kind,
            url=url,
            secret=secret,
            data=payload,
            idempotency_key=key,
            timeout_s=self._timeout_s,
        )
        with session_scope(self._engine) as session:
            if result.ok:
                delivery.record_sent(session, data.delivery_id, result.status_code or 0)
                return SendOutcome("sent", result.status_code)
            error = result.error or "failed"
            delivery.record_error(
                session, data.delivery_id, error, result.status_code, final=not result.retryable
            )
        raise ApplicationError(
            error,
            type="DeliveryFailed" if result.retryable else "DeliveryRejected",
            non_retryable=not result.retryable,
        )

    @activity.defn(name=ACT_FAIL_ALERT)
    def fail_delivery(self, data: FailDeliveryInput) -> None:
        with session_scope(self._engine) as session:
            delivery.record_error(session, data.delivery_id, data.error, None, final=True)

    def all(self) -> list[Callable[..., object]]:
        return [self.send_delivery, self.fail_delivery]
