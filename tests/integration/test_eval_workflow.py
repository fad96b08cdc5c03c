"""EvalSuiteWorkflow on the Temporal dev server and Postgres: one activity per case under the
suite's concurrency limit, every case stored, the verdict computed; cancelled by signal; the
cases of a run whose worker has no agent runtime recorded as errors. The agent runtime is a
scripted stand-in (tests/eval_helpers.py)."""

from __future__ import annotations

import asyncio
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session
from temporalio.testing import WorkflowEnvironment

from activities.evals import EvalActivities
from cli.worker import worker_for
from core.evals import repository as repo
from core.evals.service import EvalService
from core.tenancy.agent_info import AgentInfo
from evals.execution import CaseWork, run_cases
from evals.runner import Ports
from orchestration.eval_types import SIGNAL_CANCEL, EvalRunResult, EvalSuiteInput, eval_workflow_id
from orchestration.evals import EvalSuiteWorkflow
from tests.eval_helpers import Reply, ScriptedRuntime, Tool

pytestmark = [pytest.mark.postgres, pytest.mark.temporal]

SCENARIO = """\
name: book
turns: [I'd like a table for four]
expect:
  tools_called: [{name: create_booking, args: {party_size: 4}}]
"""
OTHER = "name: hello\nturns: [hello]\nexpect: {must_say: [help]}\n"


def agent_info(agent_id: str) -> AgentInfo:
    return AgentInfo(
        id=agent_id, org_id="org-evals", name="demo", platform_settings={}, credentials={}
    )


def create_run(engine: Engine, suite_yaml: str) -> str:
    files = {"suite.yaml": suite_yaml, "book.yaml": SCENARIO, "hello.yaml": OTHER}
    with Session(engine) as session:
        service = EvalService(session)
        run = service.create_run("org-evals", f"agent-{uuid.uuid4().hex[:8]}", "s", files, 0)
        _, cases = run_cases(run)
        run.total = len(cases)
        session.add(run)
        session.commit()
        return run.id


async def run_workflow(
    env: WorkflowEnvironment,
    engine: Engine,
    run_id: str,
    runtime: ScriptedRuntime | None,
    during: Any = None,
) -> EvalRunResult:
    ports_for = (lambda agent: Ports(runtime)) if runtime is not None else None
    work = CaseWork(engine, agent_info, ports_for)
    acts = EvalActivities(
        work.prepare, work.run_case, work.cancel_requested, work.finalize, heartbeat_every_s=0.2
    )
    queue = f"evals-{uuid.uuid4().hex[:8]}"
    with ThreadPoolExecutor(max_workers=4) as executor:
        async with worker_for(env.client, queue, [acts], executor):
            handle = await env.client.start_workflow(
                EvalSuiteWorkflow.run,
                EvalSuiteInput(run_id),
                id=eval_workflow_id(run_id),
                task_queue=queue,
            )
            if during is not None:
                await during(handle)
            return await handle.result()


async def test_cases_fan_out_under_the_limit_and_the_run_is_judged(
    temporal_env: WorkflowEnvironment, pg_engine: Engine
) -> None:
    run_id = create_run(pg_engine, "name: s\nrepeats: 3\nconcurrency: 2\n")
    runtime = ScriptedRuntime(
        {"four": Reply("Booked.", tool_calls=[Tool("create_booking", {"party_size": 4})])},
        default=Reply("How can I help?"),
        delay=0.1,
    )
    result = await run_workflow(temporal_env, pg_engine, run_id, runtime)
    assert (result.status, result.done, result.total) == ("inconclusive", 6, 6)
    assert runtime.peak <= 2
    with Session(pg_engine) as session:
        run = repo.get_run(session, run_id)
        assert run is not None and run.passed == 6 and run.finished_at is not None
        rows = repo.case_results(session, run_id)
        assert [r.case_index for r in rows] == list(range(6))
        assert {(s["scenario"], s["passed"], s["runs"]) for s in run.scenarios} == {
            ("book", 3, 3),
            ("hello", 3, 3),
        }


async def test_cancel_signal_stops_the_run(
    temporal_env: WorkflowEnvironment, pg_engine: Engine
) -> None:
    run_id = create_run(pg_engine, "name: s\nrepeats: 10\nconcurrency: 1\n")
    runtime = ScriptedRuntime(default=Reply("How can I help?"), delay=0.3)

    async def cancel_soon(handle: Any) -> None:
        await asyncio.sleep(1.0)
        with Session(pg_engine) as session:
            EvalService(session).request_cancel(run_id)
            session.commit()
        await handle.signal(SIGNAL_CANCEL)

    result = await run_workflow(temporal_env, pg_engine, run_id, runtime, during=cancel_soon)
    assert result.status == "cancelled" and result.done == result.total == 20
    with Session(pg_engine) as session:
        rows = repo.case_results(session, run_id)
        skipped = [r for r in rows if r.status == "skipped"]
        assert len(skipped) >= 10 and all("cancelled" in (r.reason or "") for r in skipped)


async def test_without_an_agent_runtime_every_case_is_an_error(
    temporal_env: WorkflowEnvironment, pg_engine: Engine
) -> None:
    run_id = create_run(pg_engine, "name: s\n")
    result = await run_workflow(temporal_env, pg_engine, run_id, None)
    assert result.status == "failed" and result.done == 2
    with Session(pg_engine) as session:
        rows = repo.case_results(session, run_id)
        assert all(r.status == "error" and "no agent runtime" in (r.reason or "") for r in rows)
