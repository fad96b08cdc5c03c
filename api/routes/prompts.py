"""Prompts treated like code: ``/v1/agents/{agent_id}/prompts/...``.

Versions (immutable, diffable), labels (moved, rolled back, protected, eval-gated, audited),
A/B experiments with their results, and canary rollouts run by ``PromptRolloutWorkflow``
(started, signalled and queried here). Reads need ``viewer``; pushing versions and moving
unprotected labels ``content`` or ``release``; protected labels, experiments and rollouts
``release``. Nothing here is on the call hot path: serving reads the in-process cache.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Response, status
from starlette.concurrency import run_in_threadpool
from temporalio.client import WorkflowHandle, WorkflowQueryFailedError, WorkflowQueryRejectedError
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from api.deps import PrincipalDep, SessionDep, StateDep, TenancyDep, auth
from api.errors import error_responses
from core.db import INT_COLUMN_MAX
from core.errors import (
    ConflictError,
    NotFoundError,
    TemporalUnavailableError,
)
from core.prompts import repository as repo
from core.prompts.rollouts import plan_rollout
from core.prompts.schemas import (
    LABEL_PATTERN,
    CurrentRollout,
    ExperimentCreate,
    ExperimentPublic,
    ExperimentResults,
    ExperimentStop,
    LabelMove,
    LabelMovePublic,
    LabelMoveResult,
    LabelPolicy,
    LabelPublic,
    LabelRollback,
    PromptStatus,
    PromptVersionCreate,
    PromptVersionPublic,
    PushResult,
    RolloutAction,
    RolloutCheckPublic,
    RolloutCreate,
    RolloutLastCheck,
    RolloutPublic,
    RolloutStarted,
    VersionDiff,
)
from core.prompts.service import PromptService, experiment_public
from core.tenancy.models import Agent
from core.tenancy.service import Principal
from orchestration.prompt_rollout import PromptRolloutWorkflow, rollout_workflow_id
from orchestration.prompt_rollout_types import (
    RolloutInput,
    RolloutResult,
    RolloutSignal,
    RolloutStep,
)
from orchestration.starters import start_prompt_rollout

router = APIRouter(prefix="/v1/agents/{agent_id}/prompts", tags=["prompts"])
LabelPath = Annotated[str, Path(pattern=LABEL_PATTERN, description="e.g. production, staging")]
IdPath = Annotated[int, Path(ge=1, le=INT_COLUMN_MAX)]
QUERY_TIMEOUT = timedelta(seconds=3)


def get_prompts(state: StateDep, session: SessionDep) -> PromptService:
    return PromptService(session, state.eval_gate)


PromptsDep = Annotated[PromptService, Depends(get_prompts)]


def _agent(tenancy: TenancyDep, principal: Principal, agent_id: str, scope: str) -> Agent:
    agent = tenancy.require_agent(agent_id)
    principal.require(scope, agent.org_id)
    return agent


# -- versions ------------------------------------------------------------------------------


@router.post(
    "/versions",
    status_code=status.HTTP_201_CREATED,
    response_model=PushResult,
    responses={200: {"model": PushResult, "description": "Identical content: the existing one"}},
    openapi_extra=auth("content or release"),
)
def push_version(
    agent_id: str,
    body: PromptVersionCreate,
    principal: PrincipalDep,
    tenancy: TenancyDep,
    prompts: PromptsDep,
    response: Response,
) -> PushResult:
    """Push a new immutable version; identical content answers 200 with the existing one."""
    agent = tenancy.require_agent(agent_id)
    result = prompts.push_version(agent, body, principal)
    if not result.created:
        response.status_code = status.HTTP_200_OK
    return result


@router.get("/versions", response_model=list[PromptVersionPublic], openapi_extra=auth("viewer"))
def list_versions(
    agent_id: str, principal: PrincipalDep, tenancy: TenancyDep, prompts: PromptsDep
) -> list[PromptVersionPublic]:
    _agent(tenancy, principal, agent_id, "viewer")
    return prompts.list_versions(agent_id)


@router.get("/versions/{version}", response_model=PromptVersionPublic, openapi_extra=auth("viewer"))
def get_version(
    agent_id: str,
    version: Annotated[int, Path(ge=1, le=INT_COLUMN_MAX)],
    principal: PrincipalDep,
    tenancy: TenancyDep,
    prompts: PromptsDep,
) -> PromptVersionPublic:
    _agent(tenancy, principal, agent_id, "viewer")
    return prompts.get_version(agent_id, version)


@router.get("/diff", response_model=VersionDiff, openapi_extra=auth("viewer"))
def diff_versions(
    agent_id: str,
    principal: PrincipalDep,
    tenancy: TenancyDep,
    prompts: PromptsDep,
    from_version: Annotated[int, Query(ge=1, le=INT_COLUMN_MAX)],
    to_version: Annotated[int, Query(ge=1, le=INT_COLUMN_MAX)],
) -> VersionDiff:
    _agent(tenancy, principal, agent_id, "viewer")
    return prompts.diff(agent_id, from_version, to_version)


# -- labels --------------------------------------------------------------------------------


@router.get("/labels", response_model=list[LabelPublic], openapi_extra=auth("viewer"))
def list_labels(
    agent_id: str, principal: PrincipalDep, tenancy: TenancyDep, prompts: PromptsDep
) -> list[LabelPublic]:
    _agent(tenancy, principal, agent_id, "viewer")
    return prompts.list_labels(agent_id)


@router.get("/labels/history", response_model=list[LabelMovePublic], openapi_extra=auth("viewer"))
def label_history(
    agent_id: str,
    principal: PrincipalDep,
    tenancy: TenancyDep,
    prompts: PromptsDep,
    label: Annotated[str | None, Query(pattern=LABEL_PATTERN)] = None,
) -> list[LabelMovePublic]:
    _agent(tenancy, principal, agent_id, "viewer")
    return [
        LabelMovePublic.model_validate(m, from_attributes=True)
        for m in prompts.label_history(agent_id, label)
    ]


@router.put(
    "/labels/{label}",
    response_model=LabelMoveResult,
    responses=error_responses(409),
    openapi_extra=auth("content or release"),
)
def move_label(
    agent_id: str,
    label: LabelPath,
    body: LabelMove,
    principal: PrincipalDep,
    tenancy: TenancyDep,
    prompts: PromptsDep,
) -> LabelMoveResult:
    """Point a label at a version (creating the label); audited with who and why. A label with
    ``require_eval_gate`` needs a passed run of every registered eval suite on the version
    (409 naming the suite and the run to start otherwise); ``override_eval_gate`` moves anyway
    with the release scope, audited. Every API process serves the move within about a second."""
    agent = tenancy.require_agent(agent_id)
    return prompts.move_label(
        agent,
        label,
        body.version,
        body.reason,
        principal,
        override_eval_gate=body.override_eval_gate,
    )


@router.post(
    "/labels/{label}/rollback",
    response_model=LabelMoveResult,
    responses=error_responses(409),
    openapi_extra=auth("content or release"),
)
def rollback_label(
    agent_id: str,
    label: LabelPath,
    body: LabelRollback,
    principal: PrincipalDep,
    tenancy: TenancyDep,
    prompts: PromptsDep,
) -> LabelMoveResult:
    """Move the label back to the version it pointed at before (or ``to_version``)."""
    agent = tenancy.require_agent(agent_id)
    return prompts.rollback_label(agent, label, body.reason, principal, body.to_version)


@router.put("/labels/{label}/policy", response_model=LabelPublic, openapi_extra=auth("release"))
def set_label_policy(
    agent_id: str,
    label: LabelPath,
    body: LabelPolicy,
    principal: PrincipalDep,
    tenancy: TenancyDep,
    prompts: PromptsDep,
) -> LabelPublic:
    """Protect a label (release scope only) and/or require a passing eval suite to move it."""
    agent = tenancy.require_agent(agent_id)
    return prompts.set_policy(
        agent,
        label,
        protected=body.protected,
        require_eval_gate=body.require_eval_gate,
        reason=body.reason,
        principal=principal,
    )


# -- experiments ---------------------------------------------------------------------------


@router.post(
    "/experiments",
    status_code=status.HTTP_201_CREATED,
    response_model=ExperimentPublic,
    responses=error_responses(409),
    openapi_extra=auth("release"),
)
def create_experiment(
    agent_id: str,
    body: ExperimentCreate,
    principal: PrincipalDep,
    tenancy: TenancyDep,
    prompts: PromptsDep,
) -> ExperimentPublic:
    """Split traffic: each variant gets its weight, control (default: production) the rest.
    Callers are assigned stickily by a hash of caller and experiment."""
    agent = tenancy.require_agent(agent_id)
    return prompts.create_experiment(agent, body, principal)


@router.get("/experiments", response_model=list[ExperimentPublic], openapi_extra=auth("viewer"))
def list_experiments(
    agent_id: str, principal: PrincipalDep, tenancy: TenancyDep, prompts: PromptsDep
) -> list[ExperimentPublic]:
    _agent(tenancy, principal, agent_id, "viewer")
    return [experiment_public(e) for e in repo.list_experiments(prompts.session, agent_id)]


@router.get(
    "/experiments/{experiment_id}", response_model=ExperimentResults, openapi_extra=auth("viewer")
)
def experiment_results(
    agent_id: str,
    experiment_id: IdPath,
    principal: PrincipalDep,
    tenancy: TenancyDep,
    prompts: PromptsDep,
) -> ExperimentResults:
    """Per variant: calls, quality score (95% CI), task completion, transfer rate, tool
    failures, latency, each against control with an always-valid CI, and a verdict."""
    agent = _agent(tenancy, principal, agent_id, "viewer")
    return prompts.experiment_results(agent, experiment_id)


@router.post(
    "/experiments/{experiment_id}/stop",
    response_model=ExperimentPublic,
    responses=error_responses(409),
    openapi_extra=auth("release"),
)
def stop_experiment(
    agent_id: str,
    experiment_id: IdPath,
    body: ExperimentStop,
    principal: PrincipalDep,
    tenancy: TenancyDep,
    prompts: PromptsDep,
) -> ExperimentPublic:
    agent = tenancy.require_agent(agent_id)
    return prompts.stop_experiment(agent, experiment_id, body.reason, principal)


# -- rollouts ------------------------------------------------------------------------------


def _handle(state: StateDep, agent_id: str) -> WorkflowHandle[PromptRolloutWorkflow, RolloutResult]:
    if state.temporal is None:
        raise TemporalUnavailableError(
            f"Temporal is not reachable yet ({state.temporal_error}); retry shortly"
        )
    return state.temporal.get_workflow_handle_for(
        PromptRolloutWorkflow.run, rollout_workflow_id(agent_id)
    )


@router.post(
    "/rollouts",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=RolloutStarted,
    responses=error_responses(409),
    openapi_extra=auth("release"),
)
async def start_rollout(
    agent_id: str,
    body: RolloutCreate,
    principal: PrincipalDep,
    tenancy: TenancyDep,
    prompts: PromptsDep,
    state: StateDep,
) -> RolloutStarted:
    """Start ``PromptRolloutWorkflow`` (id ``prompt-rollout-{agent_id}``); 409 while another
    rollout of this agent is open; 422 for a plan a step of which could pass untested (fewer
    than the guards' 20 canary calls) or without a step below 100%."""
    client = _handle(state, agent_id)  # fails fast when Temporal is down
    agent, data, control = await run_in_threadpool(
        _rollout_input, agent_id, body, principal, tenancy, prompts
    )
    assert state.temporal is not None
    try:
        handle = await start_prompt_rollout(
            state.temporal, data=data, task_queue=state.settings.task_queue
        )
    except WorkflowAlreadyStartedError as exc:
        raise ConflictError(
            f"a rollout of agent '{agent.id}' is already running ({client.id}); abort or "
            "promote it first"
        ) from exc
    return RolloutStarted(
        workflow_id=handle.id,
        run_id=handle.result_run_id,
        candidate_version=data.candidate_version,
        control_version=control,
    )


def _rollout_input(
    agent_id: str,
    body: RolloutCreate,
    principal: Principal,
    tenancy: TenancyDep,
    prompts: PromptService,
) -> tuple[Agent, RolloutInput, int]:
    agent = _agent(tenancy, principal, agent_id, "release")
    plan = plan_rollout(prompts, agent, body)
    data = RolloutInput(
        org_id=agent.org_id,
        agent_id=agent_id,
        candidate_version=plan.candidate_version,
        steps=[
            RolloutStep(s.weight, s.hold_s, s.min_canary_calls, s.max_duration_s)
            for s in plan.steps
        ],
        check_interval_s=body.check_interval_s,
        actor=principal.actor,
        reason=body.reason,
    )
    return agent, data, plan.control_version


@router.get("/rollouts", response_model=list[RolloutPublic], openapi_extra=auth("viewer"))
def list_rollouts(
    agent_id: str, principal: PrincipalDep, tenancy: TenancyDep, prompts: PromptsDep
) -> list[RolloutPublic]:
    """The agent's rollouts, newest first."""
    _agent(tenancy, principal, agent_id, "viewer")
    return [
        RolloutPublic.model_validate(r, from_attributes=True)
        for r in repo.list_rollouts(prompts.session, agent_id)
    ]


@router.get(
    "/rollouts/{rollout_id}/checks",
    response_model=list[RolloutCheckPublic],
    openapi_extra=auth("viewer"),
)
def rollout_checks(
    agent_id: str,
    rollout_id: IdPath,
    principal: PrincipalDep,
    tenancy: TenancyDep,
    prompts: PromptsDep,
) -> list[RolloutCheckPublic]:
    """Every guard look of a rollout, oldest first: samples, each guard's statistic, verdict."""
    _agent(tenancy, principal, agent_id, "viewer")
    rollout = repo.get_rollout(prompts.session, rollout_id)
    if rollout is None or rollout.agent_id != agent_id:
        raise NotFoundError(f"agent '{agent_id}' has no rollout {rollout_id}")
    return [
        RolloutCheckPublic.model_validate(c, from_attributes=True)
        for c in repo.list_checks(prompts.session, rollout_id)
    ]


async def _live(state: StateDep, agent_id: str) -> dict[str, Any] | None:
    """The workflow's own status (query), or None when no worker can answer right now."""
    try:
        live = await _handle(state, agent_id).query(
            PromptRolloutWorkflow.status, rpc_timeout=QUERY_TIMEOUT
        )
    except (
        RPCError,
        TemporalUnavailableError,
        WorkflowQueryFailedError,
        WorkflowQueryRejectedError,
    ):
        return None
    return asdict(live)


@router.get("/rollouts/current", response_model=CurrentRollout, openapi_extra=auth("viewer"))
async def current_rollout(
    agent_id: str,
    principal: PrincipalDep,
    tenancy: TenancyDep,
    prompts: PromptsDep,
    state: StateDep,
) -> CurrentRollout:
    """The latest rollout (database) and, while it runs, its live status (workflow query):
    step, weights, samples, last metrics and the verdict history."""
    body = await run_in_threadpool(_current_rollout, agent_id, principal, tenancy, prompts)
    if body.rollout.status in repo.ACTIVE_ROLLOUT:
        body.live = await _live(state, agent_id)
    return body


def _current_rollout(
    agent_id: str, principal: Principal, tenancy: TenancyDep, prompts: PromptService
) -> CurrentRollout:
    _agent(tenancy, principal, agent_id, "viewer")
    row = repo.latest_rollout(prompts.session, agent_id)
    if row is None or row.id is None:
        raise NotFoundError(f"agent '{agent_id}' has never had a rollout")
    checks = repo.list_checks(prompts.session, row.id)
    last = checks[-1] if checks else None
    return CurrentRollout(
        rollout=RolloutPublic.model_validate(row, from_attributes=True),
        live=None,
        last_check=(
            RolloutLastCheck.model_validate(last, from_attributes=True)
            if last is not None
            else None
        ),
    )


@router.post(
    "/rollouts/current/{action}", responses=error_responses(409), openapi_extra=auth("release")
)
async def signal_rollout(
    agent_id: str,
    action: Literal["pause", "resume", "abort", "promote"],
    body: RolloutAction,
    principal: PrincipalDep,
    tenancy: TenancyDep,
    state: StateDep,
) -> dict[str, str]:
    """pause | resume | abort (immediate rollback) | promote (promote now)."""
    await run_in_threadpool(_agent, tenancy, principal, agent_id, "release")
    handle = _handle(state, agent_id)
    sig = RolloutSignal(actor=principal.actor, reason=body.reason)
    signals = {
        "pause": PromptRolloutWorkflow.pause,
        "resume": PromptRolloutWorkflow.resume,
        "abort": PromptRolloutWorkflow.abort,
        "promote": PromptRolloutWorkflow.promote_now,
    }
    try:
        await handle.signal(signals[action], sig)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise NotFoundError(f"no rollout of agent '{agent_id}' is running") from exc
        raise
    return {"workflow_id": handle.id, "signal": action, "status": "sent"}


@router.get("/status", response_model=PromptStatus, openapi_extra=auth("viewer"))
async def prompt_status(
    agent_id: str,
    principal: PrincipalDep,
    tenancy: TenancyDep,
    prompts: PromptsDep,
    state: StateDep,
) -> PromptStatus:
    """Labels, what callers are served now, the running experiment and rollout (live)."""

    def _status() -> PromptStatus:
        return prompts.status(_agent(tenancy, principal, agent_id, "viewer"))

    result = await run_in_threadpool(_status)
    if result.rollout is not None and result.rollout.status in repo.ACTIVE_ROLLOUT:
        result.live = await _live(state, agent_id)
    return result
