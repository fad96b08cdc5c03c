"""Prompt-rollout activities: thin wrappers that open a unit of work, call
``core.prompts.rollouts.RolloutService`` and return a dataclass.

Each is idempotent (a retry or a replay converges on the same rows) and commits at its end.
Errors retrying cannot fix (a missing version, no production label, a conflicting experiment)
are raised non-retryable so the workflow fails with the reason instead of retrying forever.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict

from sqlalchemy.engine import Engine
from temporalio import activity
from temporalio.exceptions import ApplicationError

from core.db import session_scope
from core.errors import AppError, NotFoundError
from core.prompts.ports import EvalGate, NoEvalSuiteGate
from core.prompts.rollouts import RolloutService
from orchestration.prompt_rollout_types import (
    ACT_BEGIN,
    ACT_CHECK,
    ACT_PROMOTE,
    ACT_ROLL_BACK,
    ACT_SET_STATUS,
    ACT_SET_WEIGHT,
    BeginRolloutInput,
    BeginRolloutResult,
    FinishInput,
    GuardCheckInput,
    GuardCheckResult,
    PromoteResult,
    SetWeightInput,
    StatusInput,
)


class PromptActivities:
    def __init__(self, engine: Engine, eval_gate: EvalGate | None = None) -> None:
        self._engine = engine
        self._gate: EvalGate = eval_gate or NoEvalSuiteGate()

    @contextmanager
    def _service(self) -> Iterator[RolloutService]:
        try:
            with session_scope(self._engine) as session:
                yield RolloutService(session, self._gate)
        except NotFoundError as exc:
            raise ApplicationError(exc.detail, type="NotFound", non_retryable=True) from exc
        except AppError as exc:
            raise ApplicationError(exc.detail, type="InvalidRollout", non_retryable=True) from exc

    @activity.defn(name=ACT_BEGIN)
    def begin_rollout(self, data: BeginRolloutInput) -> BeginRolloutResult:
        with self._service() as svc:
            rollout = svc.begin(
                agent_id=data.agent_id,
                candidate_version=data.candidate_version,
                plan=[asdict(s) for s in data.steps],
                actor=data.actor,
                reason=data.reason,
                workflow_id=data.workflow_id,
                run_id=data.run_id,
            )
            assert rollout.id is not None
            return BeginRolloutResult(rollout.id, rollout.experiment_id, rollout.control_version)

    @activity.defn(name=ACT_SET_WEIGHT)
    def set_canary_weight(self, data: SetWeightInput) -> None:
        with self._service() as svc:
            svc.set_weight(data.rollout_id, data.step_index, data.weight)

    @activity.defn(name=ACT_CHECK)
    def check_guards(self, data: GuardCheckInput) -> GuardCheckResult:
        with self._service() as svc:
            out = svc.check(data.rollout_id, data.step_index)
        score = out.report.result("score")
        return GuardCheckResult(
            verdict=out.report.verdict,
            reason=out.report.reason,
            canary_n=out.canary_n,
            control_n=out.control_n,
            step_canary_n=out.step_canary_n,
            canary_score=score.canary.mean if score and score.canary.n else None,
            control_score=score.control.mean if score and score.control.n else None,
            breached=list(out.report.breached),
        )

    @activity.defn(name=ACT_ROLL_BACK)
    def roll_back(self, data: FinishInput) -> None:
        with self._service() as svc:
            svc.roll_back(
                data.rollout_id,
                outcome=data.outcome,
                actor=data.actor,
                reason=data.reason,
                alert=data.alert,
            )

    @activity.defn(name=ACT_PROMOTE)
    def promote(self, data: FinishInput) -> PromoteResult:
        with self._service() as svc:
            promoted, reason = svc.promote(data.rollout_id, actor=data.actor, reason=data.reason)
            return PromoteResult(promoted, reason)

    @activity.defn(name=ACT_SET_STATUS)
    def set_rollout_status(self, data: StatusInput) -> None:
        with self._service() as svc:
            svc.set_status(
                data.rollout_id,
                status=data.status,
                actor=data.actor,
                reason=data.reason,
                alert=data.alert,
            )

    def all(self) -> list[Callable[..., object]]:
        return [
            self.begin_rollout,
            self.set_canary_weight,
            self.check_guards,
            self.roll_back,
            self.promote,
            self.set_rollout_status,
        ]
