"""Eval runs: ``/v1/agents/{agent_id}/evals/...`` and ``/v1/evals/runs/...``.

A run is started with the suite's files in the body (``{path: text}``), checked with the same
loader as ``backline eval run`` (every problem with its file and line, 422), stored, and played
against the agent in the background; its status, progress, per-scenario tallies and verdict
against the baseline (the last accepted run of the same suite, or the one named) are read back
here. Reads need ``viewer``; starting, cancelling and accepting runs ``content`` or
``release``; registering the suite the nightly run and the release gate use, ``release``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Annotated

from fastapi import APIRouter, Path, Query, status
from starlette.concurrency import run_in_threadpool
from temporalio.service import RPCError

from api.deps import PrincipalDep, SessionDep, StateDep, auth
from api.errors import error_responses
from api.state import AppState
from core.errors import InvalidInputError, NotFoundError
from core.evals import repository as repo
from core.evals.models import EvalRun
from core.evals.pricing import eval_prices
from core.evals.schemas import (
    EvalRunCreate,
    EvalRunCreated,
    EvalRunPublic,
    EvalSuitePublic,
    SuiteFiles,
)
from core.evals.service import EvalService, run_public, suite_public
from core.tenancy.agent_info import AgentInfo
from core.tenancy.service import Principal, require_owner
from evals.execution import cases_of, execute_run, suite_from_files
from evals.files import SuiteError
from evals.scenarios import Suite
from orchestration.eval_starters import remove_eval_nightly_schedule, sync_eval_nightly_schedule
from orchestration.eval_types import SIGNAL_CANCEL, EvalSuiteInput, eval_workflow_id
from orchestration.evals import EvalSuiteWorkflow

router = APIRouter(tags=["evals"])
log = logging.getLogger("backline.evals")

RunId = Annotated[str, Path(max_length=32, description="Eval run id")]


def _load(files: dict[str, str]) -> Suite:
    try:
        return suite_from_files(files)
    except SuiteError as exc:
        raise InvalidInputError(str(exc)) from None


def _own_agent(state: AppState, principal: Principal, agent_id: str) -> AgentInfo:
    """The agent, if the caller's organization owns it (the operator: if it exists)."""
    agent = state.agents.get(agent_id)
    require_owner(principal, "agent", agent_id, agent.org_id if agent is not None else None)
    assert agent is not None
    return agent


def _own_run(session: SessionDep, principal: Principal, run_id: str) -> EvalRun:
    run = repo.get_run(session, run_id)
    require_owner(principal, "eval run", run_id, run.org_id if run is not None else None)
    if run is None:  # the operator asking for a run that does not exist
        raise NotFoundError(f"eval run '{run_id}' does not exist")
    return run


async def _launch(state: AppState, run_id: str, agent_id: str) -> None:
    """Start a stored run: as an ``EvalSuiteWorkflow`` on the workers (durable: it survives a
    restart and runs one case per activity), or in this process when it was given the eval
    adapters itself (``AppState.eval_ports``) or Temporal is not reachable."""
    if state.eval_ports is None and state.temporal is not None:
        try:
            await state.temporal.start_workflow(
                EvalSuiteWorkflow.run,
                EvalSuiteInput(run_id),
                id=eval_workflow_id(run_id),
                task_queue=state.settings.task_queue,
            )
            return
        except RPCError as exc:
            log.warning("eval run %s: could not start its workflow (%s); running here", run_id, exc)
    agent = state.agents.get(agent_id)
    if agent is None:
        raise NotFoundError(f"agent '{agent_id}' does not exist")
    ports = state.eval_ports(agent) if state.eval_ports is not None else None
    task = asyncio.get_running_loop().create_task(
        execute_run(state.engine, run_id, agent, ports, prices=eval_prices(state.settings))
    )
    state.eval_tasks.add(task)
    task.add_done_callback(state.eval_tasks.discard)


@router.post(
    "/v1/agents/{agent_id}/evals/runs",
    response_model=EvalRunCreated,
    status_code=status.HTTP_202_ACCEPTED,
    openapi_extra=auth("content or release"),
)
async def create_run(
    agent_id: str,
    body: EvalRunCreate,
    principal: PrincipalDep,
    state: StateDep,
    session: SessionDep,
) -> EvalRunCreated:
    """Check the suite, store the run (``queued``) and start it; answers at once with its id."""
    if body.label is not None and body.version is not None:
        raise InvalidInputError("give label or version, not both")

    def store() -> EvalRun:
        suite, cases = cases_of(_load(body.files), body.tags, body.repeats)
        if not cases:
            raise InvalidInputError(
                "no scenario of the suite has any of the tags "
                f"{', '.join(body.tags)}; check the tags: in the scenario files"
            )
        agent = _own_agent(state, principal, agent_id)
        run = EvalService(session).create_run(
            agent.org_id,
            agent_id,
            suite.config.name,
            body.files,
            len(cases),
            label=body.label,
            version=body.version,
            tags=body.tags,
            repeats=body.repeats,
            baseline_run_id=body.baseline_run_id,
            cost_cap_usd=body.cost_cap_usd,
        )
        session.commit()
        return run

    run = await run_in_threadpool(store)
    await _launch(state, run.id, agent_id)
    return EvalRunCreated(id=run.id, status=run.status, total=run.total)


@router.get("/v1/evals/runs", response_model=list[EvalRunPublic], openapi_extra=auth("viewer"))
def list_runs(
    principal: PrincipalDep,
    session: SessionDep,
    agent_id: Annotated[str | None, Query(max_length=64, description="Only this agent")] = None,
    suite: Annotated[str | None, Query(max_length=200, description="Only this suite")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[EvalRunPublic]:
    """Newest first, without per-case results."""
    org_id = None if principal.operator else principal.org_id
    return [run_public(r) for r in repo.list_runs(session, org_id, agent_id, suite, limit)]


@router.get("/v1/evals/runs/{run_id}", response_model=EvalRunPublic, openapi_extra=auth("viewer"))
def get_run(
    run_id: RunId,
    principal: PrincipalDep,
    session: SessionDep,
    cases: Annotated[bool, Query(description="Include every case's checks and transcript")] = False,
) -> EvalRunPublic:
    """Status, progress (done/total), verdict and per-scenario results."""
    run = _own_run(session, principal, run_id)
    return run_public(run, repo.case_results(session, run_id) if cases else None)


@router.post(
    "/v1/evals/runs/{run_id}/cancel",
    response_model=EvalRunPublic,
    openapi_extra=auth("content or release"),
)
async def cancel_run(
    run_id: RunId, principal: PrincipalDep, state: StateDep, session: SessionDep
) -> EvalRunPublic:
    """Stop the run: cases under way are abandoned, the rest skipped; it ends ``cancelled``."""

    def flag() -> EvalRunPublic:
        _own_run(session, principal, run_id)
        public = run_public(EvalService(session).request_cancel(run_id))
        session.commit()
        return public

    public = await run_in_threadpool(flag)
    if state.temporal is not None:  # a run on the workers stops at once, not at its next case
        with contextlib.suppress(RPCError):
            handle = state.temporal.get_workflow_handle(eval_workflow_id(run_id))
            await handle.signal(SIGNAL_CANCEL)
    return public


@router.post(
    "/v1/evals/runs/{run_id}/accept",
    response_model=EvalRunPublic,
    openapi_extra=auth("release"),
)
def accept_run(run_id: RunId, principal: PrincipalDep, session: SessionDep) -> EvalRunPublic:
    """Make the run the baseline later runs of its suite are compared with."""
    _own_run(session, principal, run_id)
    principal.require("release", principal.org_id)
    return run_public(EvalService(session).accept(run_id))


@router.put(
    "/v1/agents/{agent_id}/evals/suite",
    response_model=EvalSuitePublic,
    openapi_extra=auth("release"),
)
async def register_suite(
    agent_id: str, body: SuiteFiles, principal: PrincipalDep, state: StateDep, session: SessionDep
) -> EvalSuitePublic:
    """Register (or replace) the agent's suite of this name for the nightly run and the
    release gate; creates or updates its nightly schedule (``BACKLINE_EVAL_NIGHTLY_CRON``)."""

    def store() -> EvalSuitePublic:
        agent = _own_agent(state, principal, agent_id)
        suite = _load(body.files)
        stored = EvalService(session).register_suite(
            agent.org_id, agent_id, suite.config.name, body.files
        )
        session.commit()
        return suite_public(stored)

    public = await run_in_threadpool(store)
    if state.temporal is not None:
        await sync_eval_nightly_schedule(
            state.temporal,
            agent_id=agent_id,
            suite_name=public.name,
            cron=state.settings.eval_nightly_cron,
            task_queue=state.settings.task_queue,
        )
    return public


@router.delete(
    "/v1/agents/{agent_id}/evals/suite/{name}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(404),
    openapi_extra=auth("release"),
)
async def unregister_suite(
    agent_id: str,
    name: Annotated[str, Path(max_length=200)],
    principal: PrincipalDep,
    state: StateDep,
    session: SessionDep,
) -> None:
    """Unregister the suite: the release gate no longer asks for it and its nightly schedule
    is deleted. Its stored runs stay."""

    def remove() -> None:
        _own_agent(state, principal, agent_id)
        principal.require("release", principal.org_id)
        if not repo.delete_suite(session, agent_id, name):
            raise NotFoundError(f"agent '{agent_id}' has no registered eval suite '{name}'")
        session.commit()

    await run_in_threadpool(remove)
    if state.temporal is not None:
        await remove_eval_nightly_schedule(state.temporal, agent_id=agent_id, suite_name=name)


@router.get(
    "/v1/agents/{agent_id}/evals/suite",
    response_model=list[EvalSuitePublic],
    openapi_extra=auth("viewer"),
)
def list_suites(
    agent_id: str, principal: PrincipalDep, state: StateDep, session: SessionDep
) -> list[EvalSuitePublic]:
    """The agent's registered suites."""
    _own_agent(state, principal, agent_id)
    return [suite_public(s) for s in repo.list_suites(session, agent_id)]
