"""CallsAbandonWorkflow: close calls that never ended as ``abandoned``.

A call that only ever had a context request (the caller hung up before the platform sent an
end-of-call report, or the report never came) would stay ``in_progress`` forever. A Temporal
Schedule runs this workflow every few minutes; its one activity closes calls idle for longer
than the configured time. Deterministic orchestration only: the time is ``workflow.now()``.
"""

from __future__ import annotations

from temporalio import workflow

from orchestration.calls_abandon_types import (
    ACT_ABANDON,
    AbandonActivityInput,
    AbandonInput,
    AbandonResult,
)
from orchestration.policies import ABANDON_RETRY, ABANDON_TIMEOUT


@workflow.defn(name="CallsAbandonWorkflow")
class CallsAbandonWorkflow:
    @workflow.run
    async def run(self, _data: AbandonInput) -> AbandonResult:
        result: AbandonResult = await workflow.execute_activity(
            ACT_ABANDON,
            AbandonActivityInput(workflow.now()),
            result_type=AbandonResult,
            start_to_close_timeout=ABANDON_TIMEOUT,
            retry_policy=ABANDON_RETRY,
        )
        return result
