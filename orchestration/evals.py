"""EvalSuiteWorkflow: play every case of a stored eval run, one activity per case, at most the
suite's ``concurrency`` at once, then compute the run's verdict.

Durable: each finished case is stored by its activity and recorded in the history, so a worker
restart resumes with the cases still pending (a case cut off mid-conversation runs again; its
stored row is replaced). Cost cap: each case reports its LLM cost; once the run's spending
(the stored cases' included) reaches the cap, no new case starts, those under way finish, and
the rest are recorded as not run with the reason on the run. A case whose cost is unknown (the
LLM did not report usage) adds nothing: the cap is then not enforced, and the run warns.
Cancellation: the ``cancel`` signal, the run's cancel flag in the database (seen by the next
case activity) or cancelling the workflow stop new cases, cancel those under way and finish
the run ``cancelled``. The suite's time cap is a workflow timer.

Deterministic orchestration only: I/O is in activities reached by name.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError

from orchestration.eval_types import (
    ACT_EVAL_CREATE_SCHEDULED,
    ACT_EVAL_FINALIZE,
    ACT_EVAL_PREPARE,
    ACT_EVAL_RUN_CASE,
    QUERY_PROGRESS,
    SIGNAL_CANCEL,
    CaseOutcome,
    CreateScheduledInput,
    EvalRunResult,
    EvalSuiteInput,
    FinalizeInput,
    PreparedRun,
    PrepareInput,
    RunCaseInput,
)
from orchestration.policies import (
    DB_RETRY,
    EVAL_CASE_HEARTBEAT,
    EVAL_CASE_RETRY,
    EVAL_CASE_TIMEOUT,
    EVAL_FINALIZE_TIMEOUT,
)


@workflow.defn(name="EvalSuiteWorkflow")
class EvalSuiteWorkflow:
    def __init__(self) -> None:
        self._cancel = False
        self._done = 0
        self._total = 0
        self._spent = 0.0
        self._cost_unknown = 0

    @workflow.signal(name=SIGNAL_CANCEL)
    def cancel(self) -> None:
        self._cancel = True

    @workflow.query(name=QUERY_PROGRESS)
    def progress(self) -> list[int]:
        return [self._done, self._total]

    @workflow.run
    async def run(self, data: EvalSuiteInput) -> EvalRunResult:
        run_id = data.run_id
        if not run_id:  # started by a nightly schedule: store the run of the registered suite
            run_id = await workflow.execute_activity(
                ACT_EVAL_CREATE_SCHEDULED,
                CreateScheduledInput(data.agent_id, data.suite_name, data.label),
                result_type=str,
                start_to_close_timeout=EVAL_FINALIZE_TIMEOUT,
                retry_policy=DB_RETRY,
            )
        prepared: PreparedRun = await workflow.execute_activity(
            ACT_EVAL_PREPARE,
            PrepareInput(run_id),
            result_type=PreparedRun,
            start_to_close_timeout=EVAL_FINALIZE_TIMEOUT,
            retry_policy=DB_RETRY,
        )
        self._total = prepared.total
        self._done = prepared.total - len(prepared.pending)
        if prepared.cancelled:
            self._cancel = True
        deadline = (
            None
            if prepared.time_cap_s is None
            else workflow.now() + timedelta(seconds=prepared.time_cap_s)
        )
        running: dict[int, asyncio.Task[CaseOutcome]] = {}
        pending = list(prepared.pending)
        capped = False
        limit = max(1, prepared.concurrency)
        cost_cap = prepared.cost_cap_usd
        self._spent = prepared.spent_usd
        cost_capped = False

        def time_left() -> float | None:
            if deadline is None:
                return None
            return max(0.0, (deadline - workflow.now()).total_seconds())

        async def one(index: int) -> CaseOutcome:
            try:
                outcome: CaseOutcome = await workflow.execute_activity(
                    ACT_EVAL_RUN_CASE,
                    RunCaseInput(run_id, index),
                    result_type=CaseOutcome,
                    start_to_close_timeout=EVAL_CASE_TIMEOUT,
                    heartbeat_timeout=EVAL_CASE_HEARTBEAT,
                    retry_policy=EVAL_CASE_RETRY,
                )
            except ActivityError:
                # Retries exhausted: no stored result; the finalize step records it as an error.
                outcome = CaseOutcome(index, "error")
            finally:
                running.pop(index, None)
            self._done += 1
            if outcome.cost_usd is None:
                self._cost_unknown += 1
                if cost_cap is not None and self._cost_unknown == 1:
                    workflow.logger.warning(
                        "eval run %s: a case's LLM cost is unknown (no usage reported or no "
                        "price); the cost cap %.2f USD cannot be enforced",
                        run_id,
                        cost_cap,
                    )
            else:
                self._spent += outcome.cost_usd
            if outcome.cancel_requested:
                self._cancel = True
            return outcome

        try:
            while pending and not self._cancel:
                left = time_left()
                if left is not None and left <= 0:
                    capped = True
                    break
                try:
                    await workflow.wait_condition(
                        lambda: len(running) < limit or self._cancel,
                        timeout=None if left is None else timedelta(seconds=left),
                    )
                except TimeoutError:
                    capped = True
                    break
                if self._cancel:
                    break
                # Checked once a slot is free: the cases that just finished are paid for.
                if cost_cap is not None and self._spent >= cost_cap:
                    cost_capped = True
                    break
                index = pending.pop(0)
                running[index] = asyncio.ensure_future(one(index))
            if not self._cancel and not capped:
                left = time_left()
                try:
                    await workflow.wait_condition(
                        lambda: not running or self._cancel,
                        timeout=None if left is None else timedelta(seconds=max(left, 0.001)),
                    )
                except TimeoutError:
                    capped = True
        except asyncio.CancelledError:
            self._cancel = True
        for task in list(running.values()):
            task.cancel()
        for task in list(running.values()):
            with contextlib.suppress(asyncio.CancelledError, ActivityError):
                await task
        reason = stop = None
        if self._cancel:
            reason = "skipped: the run was cancelled"
        elif capped:
            reason = "skipped: the suite's time cap was reached"
            stop = (
                f"stopped: time cap {prepared.time_cap_s:g} s reached after {self._done} of "
                f"{self._total} scenario runs"
            )
        elif cost_capped and cost_cap is not None:
            reason = f"not run: the run's cost cap ({cost_cap:.2f} USD) was reached"
            stop = (
                f"stopped: cost cap {cost_cap:.2f} USD reached after {self._done} of "
                f"{self._total} scenario runs"
            )
        result: EvalRunResult = await workflow.execute_activity(
            ACT_EVAL_FINALIZE,
            FinalizeInput(run_id, cancelled=self._cancel, not_run_reason=reason, stop_reason=stop),
            result_type=EvalRunResult,
            start_to_close_timeout=EVAL_FINALIZE_TIMEOUT,
            retry_policy=DB_RETRY,
        )
        return result
