"""Eval run cost: every case's LLM tokens (as the fake OpenAI-compatible model reports them,
counted from what it was sent and what it answered) are summed and priced; a run with a cost cap
stops starting cases once its spending reaches the cap, records the rest as not run and says
why; a model that reports no usage makes the cost unknown and the cap unenforceable, said as a
warning. Real agent runtime, Postgres and the Temporal dev server; only the LLM is faked."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy.engine import Engine
from sqlmodel import Session
from temporalio.testing import WorkflowEnvironment

from activities.evals import EvalActivities
from cli.worker import worker_for
from connectors.embedder import MiniLMEmbedder
from core.evals import repository as repo
from core.evals.models import EvalCaseResult
from core.evals.pricing import Price, PriceTable
from core.evals.service import EvalService, run_public
from core.tenancy.agent_info import AgentInfo
from evals.execution import CaseWork, execute_run, finalize, price_case, run_cases
from evals.runner import Ports, run_case
from fakes.llm import FakeLLM, FakeLLMConfig, count_tokens, fake_llm
from fakes.llm_policy import text_of
from orchestration.eval_types import EvalRunResult, EvalSuiteInput, eval_workflow_id
from orchestration.evals import EvalSuiteWorkflow
from tests.integration.test_agent_runtime import World
from tests.mcp_helpers import Harness

pytestmark = [pytest.mark.postgres, pytest.mark.temporal]

HELLO = "name: hello\nturns: [hello, 'When are you open?']\nexpect: {must_say: [help]}\n"
PROMPT = "You are Acme's phone agent. Be brief and offer help."
PRICES = PriceTable(Price(input_per_1k=1.0, output_per_1k=2.0))


@pytest.fixture(scope="module")
def llm() -> Iterator[FakeLLM]:
    with fake_llm() as fake:
        yield fake


@pytest_asyncio.fixture
async def world(
    pg_engine: Engine, embedder: MiniLMEmbedder, llm: FakeLLM, tmp_path: Path
) -> AsyncIterator[World]:
    w = World(pg_engine, Harness(pg_engine), embedder, llm, tmp_path)
    llm.config = FakeLLMConfig()
    w.release(PROMPT)
    yield w
    await w.model.aclose()
    w.index.close()


def create_run(engine: Engine, agent: AgentInfo, repeats: int, cap: float | None) -> str:
    files = {"suite.yaml": f"name: s\nrepeats: {repeats}\nconcurrency: 1\n", "hello.yaml": HELLO}
    with Session(engine) as session:
        run = EvalService(session).create_run(
            agent.org_id, agent.id, "s", files, repeats, cost_cap_usd=cap
        )
        session.commit()
        return run.id


async def run_workflow(
    env: WorkflowEnvironment, world: World, run_id: str, prices: PriceTable | None
) -> EvalRunResult:
    agent = world.agent
    work = CaseWork(
        world.engine,
        lambda agent_id: agent if agent_id == agent.id else None,
        lambda _: Ports(world.runtime),
        prices,
    )
    acts = EvalActivities(
        work.prepare, work.run_case, work.cancel_requested, work.finalize, heartbeat_every_s=0.2
    )
    queue = f"evals-cost-{uuid.uuid4().hex[:8]}"
    with ThreadPoolExecutor(max_workers=4) as executor:
        async with worker_for(env.client, queue, [acts], executor):
            return await env.client.execute_workflow(
                EvalSuiteWorkflow.run,
                EvalSuiteInput(run_id),
                id=eval_workflow_id(run_id),
                task_queue=queue,
            )


async def one_case_cost(world: World) -> float:
    """What one case of the suite costs at PRICES, played outside any run."""
    run_id = create_run(world.engine, world.agent, 1, None)
    with Session(world.engine) as session:
        suite, cases = run_cases(EvalService(session).require_run(run_id))
    result = await run_case(suite, cases[0], world.agent, Ports(world.runtime), run_id="p", index=0)
    cost = price_case(result.to_json(), PRICES)["metrics"]["cost_usd"]
    assert cost is not None and cost > 0
    return float(cost)


async def test_the_cost_cap_stops_new_cases_and_says_why(
    temporal_env: WorkflowEnvironment, world: World, llm: FakeLLM
) -> None:
    cap = round(2.5 * await one_case_cost(world), 2)
    run_id = create_run(world.engine, world.agent, 8, cap)
    llm.requests.clear()
    result = await run_workflow(temporal_env, world, run_id, PRICES)

    with Session(world.engine) as session:
        run = repo.get_run(session, run_id)
        assert run is not None
        rows = repo.case_results(session, run_id)
        public = run_public(run)
    played = [r for r in rows if "cost_usd" in r.metrics]
    not_run = [r for r in rows if r not in played]
    # Cases run one at a time: the cap is reached by the last case played and not before.
    costs = [float(r.metrics["cost_usd"]) for r in played]
    assert 1 < len(played) < 8 and sum(costs[:-1]) < cap <= sum(costs)
    assert [r.case_index for r in played] == list(range(len(played)))
    assert len(rows) == 8 and result.done == result.total == 8
    assert all(r.status == "skipped" and "cost cap" in (r.reason or "") for r in not_run)
    assert not any(r.passed for r in not_run)
    assert run.stop_reason == (
        f"stopped: cost cap {cap:.2f} USD reached after {len(played)} of 8 scenario runs"
    )
    assert run.status != "passed" and run.skipped == len(not_run)
    # Tokens are the fake model's own count of what it was sent and what it answered.
    sent = sum(
        count_tokens(text_of(m.get("content"))) for r in llm.requests for m in r.body["messages"]
    )
    assert run.prompt_tokens == sent and run.completion_tokens > 0
    assert run.prompt_tokens == sum(r.metrics["prompt_tokens"] for r in played)
    assert public.cost is not None and public.cost.cost_usd == pytest.approx(sum(costs))
    assert public.cost.cost_cap_usd == cap and public.warnings == []


async def test_without_reported_usage_the_cost_is_unknown_and_the_cap_is_not_enforced(
    temporal_env: WorkflowEnvironment, world: World, llm: FakeLLM
) -> None:
    llm.config = FakeLLMConfig(report_usage=False)
    run_id = create_run(world.engine, world.agent, 3, 0.01)
    await run_workflow(temporal_env, world, run_id, PRICES)
    with Session(world.engine) as session:
        run = repo.get_run(session, run_id)
        assert run is not None
        rows = repo.case_results(session, run_id)
        public = run_public(run)
    assert run.stop_reason is None and run.cost_unknown == 3
    assert all(r.metrics["cost_usd"] is None for r in rows)
    assert all("did not report token usage" in r.metrics["cost_unknown"] for r in rows)
    assert public.cost is not None and public.cost.cost_usd is None
    [warning] = public.warnings
    assert "cost unknown for 3 of 3" in warning and "could not be fully enforced" in warning


async def test_a_run_played_in_process_stops_at_its_cost_cap_too(world: World) -> None:
    cap = round(2.5 * await one_case_cost(world), 2)
    run_id = create_run(world.engine, world.agent, 8, cap)
    run = await execute_run(world.engine, run_id, world.agent, Ports(world.runtime), prices=PRICES)
    with Session(world.engine) as session:
        rows = repo.case_results(session, run_id)
    played = [r for r in rows if "cost_usd" in r.metrics]
    costs = [float(r.metrics["cost_usd"]) for r in played]
    assert 1 < len(played) < 8 and sum(costs[:-1]) < cap <= sum(costs)
    assert len(rows) == 8 and all(
        r.status == "skipped" and "cost cap" in (r.reason or "") for r in rows if r not in played
    )
    assert run.status not in ("passed", "cancelled")
    assert run.stop_reason == (
        f"stopped: cost cap {cap:.2f} USD reached after {len(played)} of 8 scenario runs"
    )


def test_a_run_stopped_early_is_never_passed(pg_engine: Engine) -> None:
    """Against a baseline its played cases match (a pass verdict), a run some of whose cases
    did not run is inconclusive; the same run with every case played passes."""
    agent = f"agent-{uuid.uuid4().hex[:8]}"
    files = {"suite.yaml": "name: s\nrepeats: 200\n", "hello.yaml": HELLO}

    def stored_run(played: int) -> str:
        with Session(pg_engine) as session:
            service = EvalService(session)
            base = service.create_run("org-cost", agent, "s", files, 200)
            service.finish(
                base.id,
                "passed",
                "pass",
                [{"key": "hello", "scenario": "hello", "passed": 200, "runs": 200}],
            )
            base.accepted = True
            run = service.create_run("org-cost", agent, "s", files, 200, baseline_run_id=base.id)
            for i in range(played):
                session.add(
                    EvalCaseResult(
                        run_id=run.id,
                        case_index=i,
                        scenario="hello",
                        repeat=i,
                        status="passed",
                        passed=True,
                    )
                )
            session.commit()
            return run.id

    complete = finalize(pg_engine, stored_run(200))
    assert (complete.status, complete.verdict) == ("passed", "pass")
    stopped = finalize(
        pg_engine,
        stored_run(199),
        not_run_reason="not run: the run's cost cap (0.50 USD) was reached",
        stop_reason="stopped: cost cap 0.50 USD reached after 199 of 200 scenario runs",
    )
    assert (stopped.status, stopped.verdict) == ("inconclusive", "inconclusive")
    assert stopped.stop_reason is not None and stopped.skipped == 1
