"""DriftWatchWorkflow: feed an agent's new scored calls to its drift monitors, one batch at a
time, and raise an alert per alarm (started by the agent's Temporal Schedule).

All the work is the ``drift.watch_agent`` activity, which writes the monitors' state, the
cursor and the alerts in one transaction, so a retried batch never counts a call twice. The
workflow runs it again while calls are waiting, up to ``MAX_BATCHES`` per run.

Deterministic orchestration only: I/O is in the activity, reached by name.
"""

from __future__ import annotations

from temporalio import workflow

from orchestration.drift_watch_types import (
    ACT_WATCH_AGENT,
    MAX_BATCHES,
    WATCH_BATCH,
    DriftWatchInput,
    DriftWatchResult,
    WatchAgentInput,
    WatchAgentOutput,
)
from orchestration.policies import DRIFT_WATCH_RETRY, DRIFT_WATCH_TIMEOUT


@workflow.defn(name="DriftWatchWorkflow")
class DriftWatchWorkflow:
    @workflow.run
    async def run(self, data: DriftWatchInput) -> DriftWatchResult:
        result = DriftWatchResult(data.agent_id)
        while result.batches < MAX_BATCHES:
            batch: WatchAgentOutput = await workflow.execute_activity(
                ACT_WATCH_AGENT,
                WatchAgentInput(data.agent_id, WATCH_BATCH),
                result_type=WatchAgentOutput,
                start_to_close_timeout=DRIFT_WATCH_TIMEOUT,
                retry_policy=DRIFT_WATCH_RETRY,
            )
            result.batches += 1
            result.calls += batch.calls
            result.cursor = batch.cursor
            result.alarms += batch.alarms
            result.alert_ids += batch.alert_ids
            if not batch.more:
                break
        return result
