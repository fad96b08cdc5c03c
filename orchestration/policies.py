"""Timeouts and retry policies for activities. Temporal's policy is the only retry owner:
vendor SDK retries are off inside activities."""

from __future__ import annotations

from datetime import timedelta

from temporalio.common import RetryPolicy

DB_ACTIVITY_TIMEOUT = timedelta(seconds=10)
LLM_ACTIVITY_TIMEOUT = timedelta(seconds=60)

DB_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=500),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=20,
    non_retryable_error_types=["MalformedPayload", "NotFound"],
)

# After these attempts the workflow falls back to the non-LLM path (visible in history).
LLM_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=10),
    maximum_attempts=2,
    non_retryable_error_types=["LLMNotConfigured", "LLMUnavailable"],
)
