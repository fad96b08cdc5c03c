"""PromptRolloutWorkflow: a candidate prompt version from 0% to production in canary steps.

Reading ``run`` tells the whole story. For each step (default 5% -> 25% -> 50% -> 100%) the
canary weight is set, then every ``check_interval_s`` a guard look compares canary with
control (the sequential test lives in ``core.prompts.sequential``; an activity runs it). A
breach rolls back at once (canary weight 0, production untouched) and alerts. A step ends on a
look that tested the guards (verdict ``ok``: each arm has the guards' minimum of calls) once it
has held for ``hold_s`` *and* seen ``min_canary_calls``; an ``insufficient`` look never ends a
step. A 100% step sends no calls to control, so its looks compare with the control calls of the
whole rollout. A step without such a look after ``max_duration_s`` pauses and alerts, so
missing data never promotes. When every step has passed, production moves to the candidate
(subject to the eval gate).

Signals: ``pause``, ``resume``, ``abort`` (immediate rollback), ``promote`` (promote now).
Query: ``status``. Deterministic orchestration only: time is ``workflow.now()``, holds are
``workflow.wait_condition`` timeouts (durable timers), and all I/O happens in activities,
reached by name. A worker restart replays this history and resumes at the same step; paused
time never counts towards a hold.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError

from orchestration.policies import DB_ACTIVITY_TIMEOUT, DB_RETRY
from orchestration.prompt_rollout_types import (
    ACT_BEGIN,
    ACT_CHECK,
    ACT_PROMOTE,
    ACT_ROLL_BACK,
    ACT_SET_STATUS,
    ACT_SET_WEIGHT,
    BeginRolloutInput,
    BeginRolloutResult,
    CheckSummary,
    FinishInput,
    GuardCheckInput,
    GuardCheckResult,
    PromoteResult,
    RolloutInput,
    RolloutResult,
    RolloutResume,
    RolloutSignal,
    RolloutStatus,
    RolloutStep,
    SetWeightInput,
    StatusInput,
)

HISTORY_KEPT = 50
# A step passes only on a look that tested the guards (before it: on its hold and call count).
PATCH_TESTED_LOOK = "step-passes-on-a-tested-look"


def rollout_workflow_id(agent_id: str) -> str:
    return f"prompt-rollout-{agent_id}"


@workflow.defn(name="PromptRolloutWorkflow")
class PromptRolloutWorkflow:
    def __init__(self) -> None:
        self._state = "starting"
        self._agent_id = ""
        self._candidate = 0
        self._control: int | None = None
        self._rollout_id: int | None = None
        self._experiment_id = 0
        self._weights: list[float] = []
        self._step = 0
        self._weight = 0.0
        self._elapsed = 0.0
        self._budget = 0.0
        self._paused = False
        self._abort: RolloutSignal | None = None
        self._promote: RolloutSignal | None = None
        # Pause/resume requests not yet written to the database (the dashboard's view).
        self._pending: list[tuple[str, RolloutSignal]] = []
        self._history: list[CheckSummary] = []
        self._reason = ""
        self._system = "rollout"

    # -- the story -----------------------------------------------------------------------
    @workflow.run
    async def run(self, data: RolloutInput) -> RolloutResult:
        self._agent_id = data.agent_id
        self._candidate = data.candidate_version
        self._weights = [s.weight for s in data.steps]
        self._system = f"rollout:{workflow.info().workflow_id} (by {data.actor})"
        first_step = 0
        if data.resume is None:
            info = workflow.info()
            begun = await self._act(
                ACT_BEGIN,
                BeginRolloutInput(
                    agent_id=data.agent_id,
                    candidate_version=data.candidate_version,
                    steps=data.steps,
                    actor=data.actor,
                    reason=data.reason,
                    workflow_id=info.workflow_id,
                    run_id=info.run_id,
                ),
                BeginRolloutResult,
            )
            self._rollout_id = begun.rollout_id
            self._experiment_id = begun.experiment_id
            self._control = begun.control_version
        else:
            first_step = self._restore(data.resume)
        self._state = "running"
        try:
            for index in range(first_step, len(data.steps)):
                step = data.steps[index]
                if index != first_step or data.resume is None:
                    self._elapsed, self._budget = 0.0, step.max_duration_s
                self._step, self._weight = index, step.weight
                # Idempotent: on a resumed step it keeps the step's start time and its counts.
                await self._act(ACT_SET_WEIGHT, SetWeightInput(self._id, index, step.weight))
                ended = await self._hold(data, step)
                if ended is not None:
                    return ended
            return await self._promote_candidate(self._system, "every step passed its guards")
        except ActivityError as err:
            # A step failed past its retries: nothing guards the canary any more, so it leaves
            # traffic (production untouched) and the failure is alerted, not left running.
            cause = err.cause or err
            return await self._roll_back(
                "rolled_back", self._system, f"rollout failed: {cause}", alert=True
            )

    async def _hold(self, data: RolloutInput, step: RolloutStep) -> RolloutResult | None:
        """Look at the guards until the step passes (None) or the rollout ends (a result)."""
        last = workflow.now()
        while True:
            await self._record_pause_changes()
            if self._abort is not None:
                sig = self._abort
                return await self._roll_back(
                    "aborted", sig.actor, f"aborted by {sig.actor}: {sig.reason or 'no reason'}"
                )
            if self._promote is not None:
                sig = self._promote
                return await self._promote_candidate(
                    sig.actor, f"promoted now by {sig.actor}: {sig.reason or 'no reason'}"
                )
            if self._paused:
                self._state = "paused"
                await workflow.wait_condition(self._woken_while_paused)
                last = workflow.now()  # paused time never counts towards the hold
                continue
            self._state = "running"
            # A timeout is the usual case: time for the next look.
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    self._interrupted, timeout=timedelta(seconds=data.check_interval_s)
                )
            now = workflow.now()
            self._elapsed += (now - last).total_seconds()
            last = now
            if self._interrupted():
                continue

            check = await self._act(
                ACT_CHECK, GuardCheckInput(self._id, self._step), GuardCheckResult
            )
            self._remember(check, now.isoformat())
            if check.verdict == "breach":
                return await self._roll_back("rolled_back", self._system, check.reason, alert=True)
            if self._abort is not None or self._promote is not None:
                continue
            if self._step_passed(step, check):
                return None
            if self._elapsed >= self._budget:
                self._reason = self._missing_data(step, check)
                self._paused = True
                await self._act(
                    ACT_SET_STATUS,
                    StatusInput(self._id, "paused", self._system, self._reason, alert=True),
                )
                self._budget = self._elapsed + step.max_duration_s  # a resume waits afresh
                continue
            if workflow.info().is_continue_as_new_suggested() and not self._pending:
                workflow.continue_as_new(self._carry_over(data))

    def _step_passed(self, step: RolloutStep, check: GuardCheckResult) -> bool:
        """Held long enough, enough canary calls in this step, and this very look tested the
        guards (``ok``: each arm had the guards' minimum of calls). An ``insufficient`` look
        never passes a step, whatever the clock and the call count say."""
        enough = self._elapsed >= step.hold_s and check.step_canary_n >= step.min_canary_calls
        if not workflow.patched(PATCH_TESTED_LOOK):
            return enough  # histories recorded before the rule keep replaying as they ran
        return enough and check.verdict == "ok"

    def _missing_data(self, step: RolloutStep, check: GuardCheckResult) -> str:
        lacking = []
        if check.step_canary_n < step.min_canary_calls:
            lacking.append(f"{check.step_canary_n} of {step.min_canary_calls} canary calls")
        if check.verdict != "ok":
            lacking.append(f"no look has tested the guards yet ({check.reason})")
        return (
            f"step {self._step + 1} ({step.weight:.0%}) has {'; '.join(lacking)} after "
            f"{self._elapsed:.0f}s (max {step.max_duration_s:.0f}s); paused so missing data "
            "never promotes: resume to keep waiting, or abort"
        )

    # -- endings -------------------------------------------------------------------------
    async def _roll_back(
        self, outcome: str, actor: str, reason: str, alert: bool = False
    ) -> RolloutResult:
        await self._act(ACT_ROLL_BACK, FinishInput(self._id, outcome, actor, reason, alert))
        self._state, self._weight, self._reason = outcome, 0.0, reason
        return RolloutResult(outcome, reason, self._step, self._id)

    async def _promote_candidate(self, actor: str, reason: str) -> RolloutResult:
        result = await self._act(
            ACT_PROMOTE, FinishInput(self._id, "promoted", actor, reason), PromoteResult
        )
        if not result.promoted:
            return await self._roll_back(
                "rolled_back", self._system, f"not promoted: {result.reason}", alert=True
            )
        self._state, self._weight, self._reason = "promoted", 1.0, result.reason
        return RolloutResult("promoted", result.reason, self._step, self._id)

    # -- signals and query ---------------------------------------------------------------
    @workflow.signal
    def pause(self, sig: RolloutSignal) -> None:
        if not self._paused:
            self._paused = True
            self._pending.append(("paused", sig))

    @workflow.signal
    def resume(self, sig: RolloutSignal) -> None:
        if self._paused:
            self._paused = False
            self._pending.append(("running", sig))

    @workflow.signal
    def abort(self, sig: RolloutSignal) -> None:
        self._abort = self._abort or sig

    @workflow.signal(name="promote")
    def promote_now(self, sig: RolloutSignal) -> None:
        self._promote = self._promote or sig

    @workflow.query
    def status(self) -> RolloutStatus:
        last = self._history[-1] if self._history else None
        return RolloutStatus(
            state=self._state,
            agent_id=self._agent_id,
            candidate_version=self._candidate,
            control_version=self._control,
            rollout_id=self._rollout_id,
            step_index=self._step,
            steps=len(self._weights),
            weight=self._weight,
            weights=list(self._weights),
            step_elapsed_s=round(self._elapsed, 3),
            paused=self._paused,
            canary_n=last.canary_n if last else 0,
            control_n=last.control_n if last else 0,
            step_canary_n=last.step_canary_n if last else 0,
            last_verdict=last.verdict if last else None,
            reason=self._reason,
            history=list(self._history),
        )

    # -- helpers -------------------------------------------------------------------------
    @property
    def _id(self) -> int:
        assert self._rollout_id is not None
        return self._rollout_id

    def _interrupted(self) -> bool:
        return (
            self._abort is not None
            or self._promote is not None
            or self._paused
            or bool(self._pending)
        )

    def _woken_while_paused(self) -> bool:
        return (
            not self._paused
            or self._abort is not None
            or self._promote is not None
            or bool(self._pending)
        )

    async def _record_pause_changes(self) -> None:
        while self._pending:
            status, sig = self._pending.pop(0)
            verb = "paused" if status == "paused" else "resumed"
            await self._act(
                ACT_SET_STATUS,
                StatusInput(
                    self._id, status, sig.actor, f"{verb} by {sig.actor}: {sig.reason or '-'}"
                ),
            )

    def _remember(self, check: GuardCheckResult, at: str) -> None:
        self._history.append(
            CheckSummary(
                at=at,
                step_index=self._step,
                weight=self._weight,
                verdict=check.verdict,
                canary_n=check.canary_n,
                control_n=check.control_n,
                step_canary_n=check.step_canary_n,
                canary_score=check.canary_score,
                control_score=check.control_score,
                reason=check.reason,
            )
        )
        del self._history[:-HISTORY_KEPT]

    def _restore(self, resume: RolloutResume) -> int:
        self._rollout_id = resume.rollout_id
        self._experiment_id = resume.experiment_id
        self._control = resume.control_version
        self._elapsed, self._budget = resume.step_elapsed_s, resume.step_budget_s
        self._paused = self._paused or resume.paused
        self._history = list(resume.history)
        return resume.step_index

    def _carry_over(self, data: RolloutInput) -> RolloutInput:
        return RolloutInput(
            org_id=data.org_id,
            agent_id=data.agent_id,
            candidate_version=data.candidate_version,
            steps=data.steps,
            check_interval_s=data.check_interval_s,
            actor=data.actor,
            reason=data.reason,
            resume=RolloutResume(
                rollout_id=self._id,
                experiment_id=self._experiment_id,
                control_version=self._control or 0,
                step_index=self._step,
                step_elapsed_s=self._elapsed,
                step_budget_s=self._budget,
                paused=self._paused,
                history=list(self._history),
            ),
        )

    async def _act(self, name: str, arg: Any, result_type: type[Any] | None = None) -> Any:
        return await workflow.execute_activity(
            name,
            arg,
            result_type=result_type,
            start_to_close_timeout=DB_ACTIVITY_TIMEOUT,
            retry_policy=DB_RETRY,
        )
