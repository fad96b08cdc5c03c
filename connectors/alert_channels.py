"""Sends one alert notification to a channel (a signed generic webhook or a Slack incoming
webhook) through the egress guard: the URL is checked again at send time, and every connection
is checked when it opens (``connectors.egress``)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx

from connectors.egress import check_url, egress_client
from core.egress import EgressDeniedError, EgressPolicy, UnresolvableHostError
from core.monitoring.delivery import (
    IDEMPOTENCY_HEADER,
    SIGNATURE_HEADER,
    signature,
    slack_body,
    webhook_body,
)

USER_AGENT = "Backline-Alerts/1"


@dataclass(frozen=True)
class SendResult:
    ok: bool
    status_code: int | None = None
    error: str | None = None
    retryable: bool = True  # False: sending the same request again cannot succeed


def _retryable_status(code: int) -> bool:
    return code >= 500 or code in (408, 409, 425, 429)


def send(
    policy: EgressPolicy,
    *,
    kind: str,
    url: str,
    secret: str | None,
    data: dict[str, Any],
    idempotency_key: str,
    timeout_s: float = 10.0,
    now: int | None = None,
) -> SendResult:
    """POST the notification once; never raises for a network or HTTP failure."""
    body = slack_body(data) if kind == "slack" else webhook_body(data)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        IDEMPOTENCY_HEADER: idempotency_key,
    }
    if kind == "webhook" and secret:
        headers[SIGNATURE_HEADER] = signature(secret, now or int(time.time()), body)
    try:
        check_url(url, policy)
        with egress_client(policy, timeout=timeout_s, follow_redirects=False) as client:
            response = client.post(url, content=body, headers=headers)
    except EgressDeniedError as exc:
        return SendResult(False, None, f"refused by the egress policy: {exc.detail}", False)
    except UnresolvableHostError as exc:
        return SendResult(False, None, exc.detail, True)
    except httpx.HTTPError as exc:
        return SendResult(False, None, f"{type(exc).__name__}: {exc}"[:500], True)
    if 200 <= response.status_code < 300:
        return SendResult(True, response.status_code)
    excerpt = response.text[:200].replace("\n", " ")
    return SendResult(
        False,
        response.status_code,
        f"HTTP {response.status_code}: {excerpt}",
        _retryable_status(response.status_code),
    )
