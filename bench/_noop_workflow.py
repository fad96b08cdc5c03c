"""A workflow with PostCallWorkflow's shape but no work: the Temporal floor (bench.temporal_floor).

Imports only temporalio and the stdlib so the workflow sandbox can load it cheaply.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

NOOP = "bench.noop"
FAIL = "bench.fail_non_retryable"
RETRY = RetryPolicy(maximum_attempts=2, non_retryable_error_types=["NotConfigured"])


@workflow.defn(name="BenchNoopPostCall")
class NoopPostCall:
    """ingest, analyze_llm (fails as with no LLM), analyze_rules, write, score, audit."""

    @workflow.run
    async def run(self, local: bool) -> int:
        timeout = timedelta(seconds=10)

        async def step(name: str) -> None:
            if local:
                await workflow.execute_local_activity(
                    name, start_to_close_timeout=timeout, retry_policy=RETRY
                )
            else:
                await workflow.execute_activity(
                    name, start_to_close_timeout=timeout, retry_policy=RETRY
                )

        await step(NOOP)
        with contextlib.suppress(ActivityError, ApplicationError):
            await step(FAIL)
        for _ in range(4):
            await step(NOOP)
        return 6
