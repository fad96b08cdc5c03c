"""How long an eval suite takes, and how much of it is Backline rather than the model.

A generated demo-like suite (12 scenarios: opening hours, prices and bookings, two caller lines
each) played as 2 built-in personas (``non_native``, ``elderly_slow``), so 24 cases, at
concurrency 8, in process: the real agent runtime (answering service with the prompt cache,
caller memory over the real embedder, knowledge retrieval, the SQL recorder on a SQLite file
in a temp dir, the tool catalogue) and the eval runner with its checks, against the
request-driven fake model (``fakes.llm``) answering every request after a fixed time to first
token (``--ttft-ms``, 300 by default).

Orchestration overhead, per case: (case wall time - the sum of its turns' ``upstream_ms``) /
that sum, i.e. what the runner and the runtime add (prompt serving, memory, retrieval,
recording, checks) relative to the time spent waiting on the model. The table shows its
median, p90 and max over the cases (target: median <= 10%), beside the suite's wall time and
total model time.

``--temporal`` plays the same suite as a stored run through ``EvalSuiteWorkflow`` on a Temporal
dev server with an in-process worker (one ``evals.run_case`` activity per case, every result
stored), so the wall time also carries the Temporal round trips and the per-case database work.

Run: ``.venv/bin/python -m bench.eval_suite_wall [--ttft-ms 300] [--concurrency 8] [--temporal]
[--json FILE] [--profile FILE]`` (``--profile``: cProfile of the measured suite, the event loop's
thread only, for ``python -m pstats FILE``).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import statistics
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from sqlmodel import Session
from temporalio.testing import WorkflowEnvironment

from activities.evals import EvalActivities
from bench.common import machine_info, say, table, write_json
from cli.launch import temporal_binary
from cli.ops import migrate
from cli.worker import MAX_CONCURRENT_ACTIVITIES, worker_for
from connectors.answering import CachedPrompts, SqlEventRecorder, StoredMemory
from connectors.chat_llm import OpenAIChatModel
from connectors.embedder import shared_embedder
from connectors.mcp.pool import McpClientPool
from connectors.tool_routing import GatewayToolCatalog, GatewayToolRouter
from connectors.vectors.embedded import EmbeddedVectorStore
from connectors.vectors.knowledge_embedded import EmbeddedKnowledgeIndex
from core.agent.llm import ModelSettings
from core.agent.runtime import AgentRuntime, RuntimeSettings
from core.calls.answering import AnsweringService
from core.db import make_engine, session_scope
from core.egress import egress_policy
from core.evals import repository as repo
from core.evals.service import EvalService
from core.knowledge.retrieval import KnowledgeRetriever
from core.prompts.cache import PromptCache
from core.prompts.ports import NoEvalSuiteGate
from core.prompts.schemas import PromptVersionCreate
from core.prompts.service import PromptService
from core.settings import Settings
from core.tenancy import repository as tenancy_repo
from core.tenancy.agent_info import AgentInfo
from core.tenancy.schemas import AgentCreate, OrganizationCreate
from core.tenancy.service import Principal, TenancyService
from core.tools.gateway import ToolGateway
from evals.execution import CaseWork, run_cases
from evals.runner import CaseStatus, Ports, run_suite
from evals.scenarios import load_suite
from fakes.llm import FakeLLMConfig, fake_llm
from orchestration.eval_types import EvalSuiteInput, eval_workflow_id
from orchestration.evals import EvalSuiteWorkflow

SECRET = "bench-secret-key-0123456789abcdef0123456789"
PROMPT = (
    "You are Acme Home Services' phone agent. Our office is open Monday to Friday, 8am to 6pm. "
    "A drain cleaning costs $175 and a boiler service costs $120. "
    "Book technician appointments for callers with book_appointment."
)
BOOK_TOOL = {
    "name": "book_appointment",
    "description": "Book a technician appointment for the caller at a date and time",
    "parameters": {
        "type": "object",
        "properties": {"date": {"type": "string"}, "time": {"type": "string"}},
        "required": ["date", "time"],
    },
}
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")


def scenarios() -> dict[str, str]:
    out: dict[str, str] = {}
    for i, day in enumerate(DAYS):
        out[f"hours_{i}.yaml"] = (
            f'name: hours on {day}\nturns: ["Is the office open on {day}?", '
            '"When is your office open?"]\nexpect:\n  must_say: ["8am to 6pm"]\n'
        )
        out[f"book_{i}.yaml"] = (
            f'name: book on {day}\nturns: ["How much does a drain cleaning cost?", '
            f'"Please book an appointment on {day} at 3pm."]\n'
            "expect:\n  tools_called: [{name: book_appointment}]\n  must_say: ['175']\n"
        )
    return out


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def through_temporal(
    engine: Any, agent: AgentInfo, runtime: AgentRuntime, folder: Path
) -> tuple[list[Any], float]:
    """The suite as a stored run played by ``EvalSuiteWorkflow`` on a Temporal dev server, with
    an in-process worker serving the eval activities (one activity per case, each case stored
    in the database); its results read back from the stored rows, and its wall time."""
    files = {p.name: p.read_text() for p in sorted(folder.glob("*.yaml"))}
    with Session(engine) as session:
        run = EvalService(session).create_run(agent.org_id, agent.id, "demo", files, 0)
        run.total = len(run_cases(run)[1])
        session.commit()
        run_id = run.id
    work = CaseWork(engine, lambda _: agent, lambda _: Ports(runtime))
    acts = EvalActivities(work.prepare, work.run_case, work.cancel_requested, work.finalize)
    env = await WorkflowEnvironment.start_local(dev_server_existing_path=temporal_binary())
    try:
        with ThreadPoolExecutor(max_workers=MAX_CONCURRENT_ACTIVITIES) as executor:
            async with worker_for(env.client, "eval-wall", [acts], executor):
                started = time.perf_counter()
                await env.client.execute_workflow(
                    EvalSuiteWorkflow.run,
                    EvalSuiteInput(run_id),
                    id=eval_workflow_id(run_id),
                    task_queue="eval-wall",
                )
                wall_s = time.perf_counter() - started
    finally:
        await env.shutdown()
    with Session(engine) as session:
        rows = repo.case_results(session, run_id)
    # The stored rows carry what the figures read: status, trace (upstream_ms), seconds.
    return list(rows), wall_s


async def bench(
    ttft_ms: int, concurrency: int, profile: str | None = None, temporal: bool = False
) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="eval-wall-"))
    url = f"sqlite:///{tmp / 'backline.db'}"
    migrate(url)
    engine = make_engine(url)
    settings = Settings(egress_allow="127.0.0.1")
    embedder = shared_embedder()
    org_id, agent_id = f"org-{uuid.uuid4().hex[:8]}", f"agent-{uuid.uuid4().hex[:8]}"
    with session_scope(engine) as session:
        tenancy = TenancyService(session, SECRET, "bench-admin-token")
        tenancy.create_org(OrganizationCreate(id=org_id, name="Bench org"), "bench")
        session.flush()
        tenancy.create_agent(org_id, AgentCreate(id=agent_id, name="Acme"), "bench")
    cache = PromptCache()
    with Session(engine) as session:
        row = tenancy_repo.get_agent(session, agent_id)
        assert row is not None
        release = Principal(actor="bench", org_id=org_id, scopes=frozenset({"release"}))
        svc = PromptService(session, NoEvalSuiteGate())
        body = {"template": PROMPT, "message": "bench", "tools": [BOOK_TOOL]}
        pushed = svc.push_version(row, PromptVersionCreate.model_validate(body), release)
        svc.move_label(row, "production", pushed.version, "bench", release)
        session.commit()
        cache.refresh(session, force=True)
        agent = AgentInfo(
            id=row.id, org_id=row.org_id, name=row.name, platform_settings={}, credentials={}
        )
    gateway = ToolGateway(engine, McpClientPool(egress_policy(settings)), SECRET)
    recorder = SqlEventRecorder(engine, SECRET)
    index = EmbeddedKnowledgeIndex(tmp / "knowledge")

    class Starter:
        async def start(self, **_: Any) -> bool | None:
            return True

    answering = AnsweringService(
        prompts=CachedPrompts(cache, engine),
        memory=StoredMemory(embedder, EmbeddedVectorStore(engine)),
        knowledge=KnowledgeRetriever(embedder, index),
        tools=GatewayToolRouter(lambda: gateway, recorder),
        recorder=recorder,
        post_call=Starter(),
    )
    folder = tmp / "suite"
    folder.mkdir()
    (folder / "suite.yaml").write_text(
        f"name: demo\npersonas: [non_native, elderly_slow]\nconcurrency: {concurrency}\n"
    )
    for name, text in scenarios().items():
        (folder / name).write_text(text)
    suite = load_suite(folder)
    with fake_llm(FakeLLMConfig(ttft_s=ttft_ms / 1000)) as llm:
        model = OpenAIChatModel(llm.base_url, None)
        runtime = AgentRuntime(
            answering=answering,
            model=model,
            tools=GatewayToolCatalog(lambda: gateway),
            settings=RuntimeSettings(model=ModelSettings(model="fake", timeout_s=10.0)),
        )
        # One warm-up case: model loading and first connections are not the suite's cost.
        await run_suite(suite, agent, Ports(runtime), run_id="warm", cases=suite.cases()[:1])
        profiler = cProfile.Profile() if profile else None
        if profiler is not None:
            profiler.enable()
        started = time.perf_counter()
        if temporal:
            results, wall_s = await through_temporal(engine, agent, runtime, folder)
        else:
            results = await run_suite(
                suite, agent, Ports(runtime), run_id="bench", concurrency=concurrency
            )
            wall_s = time.perf_counter() - started
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(profile)
        await model.aclose()
    index.close()
    engine.dispose()
    overheads, upstream_total, turns = [], 0.0, 0
    for r in results:
        upstream = sum(float(t.get("upstream_ms") or 0) for t in r.trace)
        upstream_total += upstream
        turns += len(r.trace)
        if upstream > 0:
            overheads.append((r.seconds * 1000 - upstream) / upstream)
    return {
        "cases": len(results),
        "passed": sum(r.status == CaseStatus.PASSED for r in results),
        "turns": turns,
        "concurrency": concurrency,
        "ttft_ms": ttft_ms,
        "wall_s": round(wall_s, 2),
        "llm_s": round(upstream_total / 1000, 2),
        "ideal_wall_s": round(upstream_total / 1000 / concurrency, 2),
        "overhead_median": round(statistics.median(overheads), 4),
        "overhead_p90": round(_pct(overheads, 0.9), 4),
        "overhead_max": round(max(overheads), 4),
        "suite_overhead": round((wall_s * concurrency * 1000 - upstream_total) / upstream_total, 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ttft-ms", type=int, default=300, help="the fake model's fixed TTFT")
    parser.add_argument("--concurrency", type=int, default=8, help="cases at once")
    parser.add_argument("--json", metavar="FILE", help="also write the results to FILE")
    parser.add_argument(
        "--temporal",
        action="store_true",
        help="run the suite as EvalSuiteWorkflow on a Temporal dev server (one activity per "
        "case, results stored), not in process",
    )
    parser.add_argument(
        "--profile",
        metavar="FILE",
        help="cProfile the measured suite (this process's CPU, all threads' time in the loop "
        "thread's callers) into FILE, for pstats",
    )
    args = parser.parse_args()
    machine = machine_info()
    say(
        f"eval suite wall time: ttft {args.ttft_ms} ms, concurrency {args.concurrency}, "
        f"{'through EvalSuiteWorkflow' if args.temporal else 'in process'}"
    )
    out = asyncio.run(bench(args.ttft_ms, args.concurrency, args.profile, args.temporal))
    out["mode"] = "temporal" if args.temporal else "in process"
    machine["loadavg_at_end"] = " ".join(f"{x:.2f}" for x in __import__("os").getloadavg())
    print(
        table(
            ["cases", "passed", "turns", "wall", "LLM time", "LLM time / conc.", "overhead"],
            [
                [
                    out["cases"],
                    out["passed"],
                    out["turns"],
                    f"{out['wall_s']:.2f} s",
                    f"{out['llm_s']:.2f} s",
                    f"{out['ideal_wall_s']:.2f} s",
                    f"median {out['overhead_median']:.1%}, p90 {out['overhead_p90']:.1%}, "
                    f"max {out['overhead_max']:.1%}",
                ]
            ],
        )
    )
    print(
        f"suite level (wall x concurrency - LLM time) / LLM time: {out['suite_overhead']:.1%}; "
        f"target per-case median <= 10%: {'met' if out['overhead_median'] <= 0.10 else 'NOT met'}"
    )
    print(f"machine: {machine}")
    write_json(args.json, {"results": out, "machine": machine})


if __name__ == "__main__":
    main()
