"""Timeouts and retry policies for activities, for every workflow. Temporal's policy is the
only retry owner: vendor SDK retries are off inside activities."""

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

# -- CallsAbandonWorkflow --------------------------------------------------------------------

ABANDON_TIMEOUT = timedelta(seconds=60)
ABANDON_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=10,
)

# -- RetentionWorkflow -----------------------------------------------------------------------

PURGE_TIMEOUT = timedelta(minutes=10)  # one organization's purge: bulk updates and deletes

# -- the knowledge workflows (refresh, scheduled refresh, freshness sweep) --------------------

KNOWLEDGE_DB_TIMEOUT = timedelta(seconds=30)
FETCH_TIMEOUT = timedelta(seconds=90)
INGEST_TIMEOUT = timedelta(minutes=60)
INGEST_HEARTBEAT = timedelta(seconds=60)

KNOWLEDGE_DB_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=500),
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=20,
    non_retryable_error_types=["NotFound"],
)
# A source that is down for a minute is reported as failing; the schedule tries again later.
FETCH_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=10),
    maximum_attempts=3,
    non_retryable_error_types=["FetchRejected", "UnreadableContent"],
)
INGEST_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=5,
    non_retryable_error_types=["UnreadableContent"],
)

# -- AlertDeliveryWorkflow -------------------------------------------------------------------

ALERT_SEND_TIMEOUT = timedelta(seconds=30)  # one POST (10 s client timeout) and its bookkeeping
# About 10 minutes of tries before the delivery is marked failed (its last error kept).
ALERT_SEND_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=2),
    maximum_attempts=10,
    non_retryable_error_types=["DeliveryRejected", "NotFound"],
)

# -- EvalSuiteWorkflow -----------------------------------------------------------------------

# One case is one conversation: many model turns and tool calls, heartbeating as it goes.
EVAL_CASE_TIMEOUT = timedelta(minutes=15)
EVAL_CASE_HEARTBEAT = timedelta(seconds=30)
# A case that errors is a result (stored as ``error``), not an activity failure; a retry is for
# the worker dying or the database being briefly unreachable.
EVAL_CASE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=3,
    non_retryable_error_types=["NotFound"],
)
EVAL_FINALIZE_TIMEOUT = timedelta(seconds=60)

# -- DriftWatchWorkflow ----------------------------------------------------------------------

# One batch of calls through the monitors; a new threshold costs up to ~2 s of scipy.
DRIFT_WATCH_TIMEOUT = timedelta(minutes=5)
DRIFT_WATCH_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=60),
    maximum_attempts=10,
    non_retryable_error_types=["NotFound"],
)
