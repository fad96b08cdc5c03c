"""What a canary rollout does to the database, one idempotent step at a time.

``PromptRolloutWorkflow`` decides *when*; these functions do *what*: open the rollout's
experiment, set the canary's weight, run one guard look, roll back, promote. Each is safe to
repeat (an activity retry, a replay after a worker restart) and never commits; the activity
boundary does. The guard decision itself is ``core.prompts.sequential.evaluate_guards``, the
same function the signal-quality benchmark drives.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlmodel import Session

from core.audit.service import record_audit
from core.audit.targets import agent_target
from core.db import utcnow
from core.errors import ConflictError, InvalidInputError, NotFoundError
from core.monitoring.alerts import (
    ROLLOUT_PAUSED,
    ROLLOUT_ROLLBACK,
    raise_alert,
    resolve_subject,
    rollout_subject,
)
from core.prompts import repository as repo
from core.prompts.metrics import arm_stats, load_outcomes
from core.prompts.models import PromptExperiment, PromptRollout, PromptRolloutCheck
from core.prompts.ports import EvalGate
from core.prompts.schemas import (
    DEFAULT_STEPS,
    PRODUCTION,
    RolloutCreate,
    RolloutStepIn,
    version_ref,
)
from core.prompts.sequential import DEFAULT_MIN_SAMPLES, GuardReport, evaluate_guards
from core.prompts.service import PromptService
from core.tenancy import repository as tenancy_repo
from core.tenancy.models import Agent

ENDED = ("promoted", "rolled_back", "aborted")


class PlanStep(Protocol):
    @property
    def weight(self) -> float: ...
    @property
    def min_canary_calls(self) -> int: ...


def check_plan(steps: Sequence[PlanStep], min_samples: int = DEFAULT_MIN_SAMPLES) -> None:
    """Refuse a plan that could end a step before the guards were able to test anything.

    A step passes only on a look whose guards tested (each arm at ``min_samples`` calls), so a
    step asking for fewer canary calls than that promises a pass the guards cannot give; and a
    100% step sends no traffic to control, so it compares with the control calls the earlier
    steps gathered: a plan needs at least one step below 100%.
    """
    if not steps:
        raise InvalidInputError("a rollout plan needs at least one step")
    for i, step in enumerate(steps, start=1):
        if step.min_canary_calls < min_samples:
            raise InvalidInputError(
                f"step {i} ({step.weight:.0%}) asks for {step.min_canary_calls} canary calls; "
                f"the smallest valid value is {min_samples}: the guards test only once each arm "
                f"has {min_samples} calls, and a step never passes untested (raise "
                "min_canary_calls, the MIN_CALLS part of --step WEIGHT:HOLD_S:MIN_CALLS:MAX_S, "
                f"to {min_samples} or more)"
            )
    if all(step.weight >= 1.0 for step in steps):
        raise InvalidInputError(
            "every step is at 100%: a 100% step sends no calls to control, so there is nothing "
            "to compare the candidate with; start with a step below 100% (e.g. --step "
            f"0.05:1800:{max(50, min_samples)}:86400)"
        )


@dataclass(frozen=True)
class RolloutPlan:
    """A rollout checked before it starts: the candidate, production as control, the steps."""

    candidate_version: int
    control_version: int
    steps: list[RolloutStepIn]


def plan_rollout(prompts: PromptService, agent: Agent, body: RolloutCreate) -> RolloutPlan:
    """Validate before starting, so a doomed rollout answers 4xx instead of failing later."""
    agent_id = agent.id
    check_plan(body.steps or DEFAULT_STEPS)  # 422 naming the smallest valid value
    session = prompts.session
    candidate = body.candidate_version
    if body.candidate_label is not None:
        label = repo.get_label(session, agent_id, body.candidate_label)
        if label is None:
            raise NotFoundError(f"agent '{agent_id}' has no label '{body.candidate_label}'")
        candidate = label.version
    assert candidate is not None
    prompts.require_version(agent_id, candidate)
    production = repo.get_label(session, agent_id, PRODUCTION)
    if production is None:
        raise InvalidInputError(
            "no version is labelled production: a rollout needs a control; label the first "
            "version production directly (PUT .../labels/production)"
        )
    if production.version == candidate:
        raise InvalidInputError(f"v{candidate} is already production")
    if repo.running_experiment(session, agent_id) is not None:
        raise ConflictError("this agent runs an experiment or a rollout; end it first")
    # Fail now rather than after hours of canary traffic if promotion could never pass.
    gate = prompts.check_gate(agent, PRODUCTION, candidate, production)
    if not gate.passed:
        raise ConflictError(f"the eval gate would refuse promoting v{candidate}: {gate.detail}")
    return RolloutPlan(candidate, production.version, body.steps or list(DEFAULT_STEPS))


@dataclass(frozen=True)
class CheckOutcome:
    report: GuardReport
    canary_n: int
    control_n: int
    step_canary_n: int
    check_id: int


def _actor(rollout: PromptRollout) -> str:
    return f"rollout:{rollout.workflow_id} (by {rollout.created_by})"


class RolloutService:
    def __init__(self, session: Session, eval_gate: EvalGate) -> None:
        self.session = session
        self._gate = eval_gate

    def _agent(self, agent_id: str) -> Agent:
        agent = tenancy_repo.get_agent(self.session, agent_id)
        if agent is None:
            raise NotFoundError(f"agent '{agent_id}' does not exist")
        return agent

    def require(self, rollout_id: int) -> PromptRollout:
        rollout = repo.get_rollout(self.session, rollout_id)
        if rollout is None:
            raise NotFoundError(f"rollout {rollout_id} does not exist")
        return rollout

    def _experiment(self, rollout: PromptRollout) -> PromptExperiment:
        exp = repo.get_experiment(self.session, rollout.experiment_id)
        if exp is None:
            raise NotFoundError(f"experiment {rollout.experiment_id} of rollout is gone")
        return exp

    # -- start ---------------------------------------------------------------------------
    def begin(
        self,
        *,
        agent_id: str,
        candidate_version: int,
        plan: list[dict[str, Any]],
        actor: str,
        reason: str,
        workflow_id: str,
        run_id: str,
    ) -> PromptRollout:
        """Open the rollout and its experiment at canary weight 0 (idempotent per run)."""
        existing = repo.get_rollout_by_run(self.session, run_id)
        if existing is not None:
            return existing
        agent = self._agent(agent_id)
        if repo.get_version(self.session, agent_id, candidate_version) is None:
            raise InvalidInputError(f"agent '{agent_id}' has no prompt version {candidate_version}")
        production = repo.get_label(self.session, agent_id, PRODUCTION)
        if production is None:
            raise InvalidInputError(
                "no version is labelled production: a rollout needs a control to compare with; "
                "label the first version production directly"
            )
        if production.version == candidate_version:
            raise InvalidInputError(f"v{candidate_version} is already production")
        if repo.running_experiment(self.session, agent_id) is not None:
            raise ConflictError("this agent already runs an experiment; stop it first")
        now = utcnow()
        exp = PromptExperiment(
            org_id=agent.org_id,
            agent_id=agent_id,
            name=f"rollout v{candidate_version}",
            kind="rollout",
            control_version=production.version,
            # Canary first: as its weight grows its slice extends into control's, so no
            # caller already on the canary ever moves back.
            variants=[
                {"version": candidate_version, "weight": 0.0},
                {"version": production.version, "weight": 1.0},
            ],
            created_by=actor,
            reason=reason,
            started_at=now,
        )
        self.session.add(exp)
        self.session.flush()
        assert exp.id is not None
        rollout = PromptRollout(
            org_id=agent.org_id,
            agent_id=agent_id,
            workflow_id=workflow_id,
            run_id=run_id,
            experiment_id=exp.id,
            candidate_version=candidate_version,
            control_version=production.version,
            plan=plan,
            status="running",
            step_index=-1,
            weight=0.0,
            created_by=actor,
            reason=reason,
            started_at=now,
        )
        self.session.add(rollout)
        self.session.flush()
        record_audit(
            self.session,
            actor=actor,
            action="prompt.rollout.start",
            target=agent_target(agent_id, "rollout", rollout.id),
            org_id=agent.org_id,
            detail={
                "candidate": candidate_version,
                "control": production.version,
                "workflow_id": workflow_id,
                "reason": reason,
            },
        )
        repo.bump_revision(self.session)
        return rollout

    # -- steps ---------------------------------------------------------------------------
    def set_weight(self, rollout_id: int, step_index: int, weight: float) -> PromptRollout:
        rollout = self.require(rollout_id)
        if rollout.status in ENDED:
            return rollout
        if rollout.step_index == step_index and rollout.step_started_at is not None:
            return rollout  # a retried or replayed step: keep its start time and its counts
        exp = self._experiment(rollout)
        exp.variants = [
            {"version": rollout.candidate_version, "weight": weight},
            {"version": rollout.control_version, "weight": round(1.0 - weight, 12)},
        ]
        rollout.step_index = step_index
        rollout.weight = weight
        rollout.step_started_at = utcnow()
        self.session.add_all([exp, rollout])
        record_audit(
            self.session,
            actor=_actor(rollout),
            action="prompt.rollout.step",
            target=agent_target(rollout.agent_id, "rollout", rollout.id),
            org_id=rollout.org_id,
            detail={"step": step_index, "weight": weight},
        )
        repo.bump_revision(self.session)
        return rollout

    def check(self, rollout_id: int, step_index: int) -> CheckOutcome:
        """One guard look over every call since the rollout began; records the look. So a 100%
        step, which sends no calls to control, compares with the control calls of the earlier
        steps."""
        rollout = self.require(rollout_id)
        exp = self._experiment(rollout)
        canary_ref = version_ref(rollout.candidate_version)
        control_ref = version_ref(rollout.control_version)
        outcomes = load_outcomes(
            self.session, rollout.agent_id, [canary_ref, control_ref], exp.started_at
        )
        canary = [o for o in outcomes if o.version == canary_ref]
        control = [o for o in outcomes if o.version == control_ref]
        step_start = rollout.step_started_at or exp.started_at
        step_canary_n = sum(1 for o in canary if o.created_at >= step_start)
        report = evaluate_guards(arm_stats(canary), arm_stats(control))
        row = PromptRolloutCheck(
            rollout_id=rollout_id,
            org_id=rollout.org_id,
            step_index=step_index,
            weight=rollout.weight,
            canary_n=len(canary),
            control_n=len(control),
            step_canary_n=step_canary_n,
            verdict=report.verdict,
            reason=report.reason,
            metrics={
                r.name: {
                    "canary_mean": r.canary.mean if r.canary.n else None,
                    "control_mean": r.control.mean if r.control.n else None,
                    "canary_n": r.canary.n,
                    "control_n": r.control.n,
                    "harm": r.harm,
                    "ci_low": r.ci_low,
                    "ci_high": r.ci_high,
                    "log_lr": r.log_lr,
                    "threshold": r.threshold,
                    "breached": r.breached,
                }
                for r in report.results
            },
        )
        self.session.add(row)
        self.session.flush()
        assert row.id is not None
        return CheckOutcome(report, len(canary), len(control), step_canary_n, row.id)

    # -- endings -------------------------------------------------------------------------
    def roll_back(
        self, rollout_id: int, *, outcome: str, actor: str, reason: str, alert: bool
    ) -> PromptRollout:
        """Canary weight to 0 and the experiment closed; production is never touched."""
        rollout = self.require(rollout_id)
        if rollout.status in ENDED:
            return rollout
        now = utcnow()
        exp = self._experiment(rollout)
        exp.variants = [
            {"version": rollout.candidate_version, "weight": 0.0},
            {"version": rollout.control_version, "weight": 1.0},
        ]
        exp.status = outcome
        exp.stop_reason = reason
        exp.ended_at = now
        rollout.status = outcome
        rollout.weight = 0.0
        rollout.outcome_reason = reason
        rollout.ended_at = now
        self.session.add_all([exp, rollout])
        record_audit(
            self.session,
            actor=actor,
            action=f"prompt.rollout.{outcome}",
            target=agent_target(rollout.agent_id, "rollout", rollout.id),
            org_id=rollout.org_id,
            detail={"candidate": rollout.candidate_version, "reason": reason[:1500]},
        )
        if alert:
            raise_alert(
                self.session,
                org_id=rollout.org_id,
                agent_id=rollout.agent_id,
                kind=ROLLOUT_ROLLBACK,
                severity="critical",
                actor=actor,
                message=f"rollout of v{rollout.candidate_version} rolled back: {reason}"[:2000],
                detail={"rollout_id": rollout.id, "candidate": rollout.candidate_version},
                subject=rollout_subject(rollout.id) if rollout.id is not None else None,
            )
        repo.bump_revision(self.session)
        return rollout

    def promote(self, rollout_id: int, *, actor: str, reason: str) -> tuple[bool, str]:
        """Move production to the candidate if the eval gate allows; (promoted, detail)."""
        rollout = self.require(rollout_id)
        if rollout.status == "promoted":
            return True, rollout.outcome_reason or "already promoted"
        if rollout.status in ENDED:
            return False, f"rollout already ended as {rollout.status}"
        agent = self._agent(rollout.agent_id)
        prompts = PromptService(self.session, self._gate)
        label = repo.get_label(self.session, agent.id, PRODUCTION)
        gate = prompts.check_gate(agent, PRODUCTION, rollout.candidate_version, label)
        if not gate.passed:
            return False, f"eval gate refused promotion: {gate.detail}"
        prompts.apply_move(
            agent,
            PRODUCTION,
            rollout.candidate_version,
            reason,
            actor,
            "promote",
            gate.detail,
        )
        now = utcnow()
        exp = self._experiment(rollout)
        exp.status = "promoted"
        exp.stop_reason = reason
        exp.ended_at = now
        rollout.status = "promoted"
        rollout.weight = 1.0
        rollout.outcome_reason = reason
        rollout.ended_at = now
        self.session.add_all([exp, rollout])
        record_audit(
            self.session,
            actor=actor,
            action="prompt.rollout.promoted",
            target=agent_target(rollout.agent_id, "rollout", rollout.id),
            org_id=rollout.org_id,
            detail={"candidate": rollout.candidate_version, "reason": reason, "gate": gate.detail},
        )
        # A later rollout reached production: earlier rollback alerts of this agent are over.
        resolve_subject(
            self.session,
            agent_id=rollout.agent_id,
            kinds=(ROLLOUT_ROLLBACK, ROLLOUT_PAUSED),
            resolution=f"rollout of v{rollout.candidate_version} was promoted to production",
            actor=actor,
        )
        repo.bump_revision(self.session)
        return True, reason

    def set_status(
        self, rollout_id: int, *, status: str, actor: str, reason: str, alert: bool
    ) -> PromptRollout:
        """Pause/resume bookkeeping for the dashboard (the workflow holds the real state)."""
        rollout = self.require(rollout_id)
        if rollout.status in ENDED or rollout.status == status:
            return rollout
        rollout.status = status
        self.session.add(rollout)
        record_audit(
            self.session,
            actor=actor,
            action=f"prompt.rollout.{status}",
            target=agent_target(rollout.agent_id, "rollout", rollout.id),
            org_id=rollout.org_id,
            detail={"reason": reason[:1500], "step": rollout.step_index},
        )
        if alert:
            raise_alert(
                self.session,
                org_id=rollout.org_id,
                agent_id=rollout.agent_id,
                kind=ROLLOUT_PAUSED,
                severity="warning",
                actor=actor,
                message=f"rollout of v{rollout.candidate_version} paused: {reason}"[:2000],
                detail={"rollout_id": rollout.id, "step": rollout.step_index},
                subject=rollout_subject(rollout_id),
            )
        return rollout
