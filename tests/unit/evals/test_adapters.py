"""The outcome check's MCP adapter against a real sandbox server (the example orders server
over stdio), through the runner."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from sqlmodel import Session

from connectors.vectors.embedded import EmbeddedVectorStore
from core.calls.events import Turn
from core.db import make_engine
from core.memory.service import MemoryService
from core.pii.phone import caller_hash
from evals.adapters import McpOutcomeChecker, MemorySeeder
from evals.runner import CaseStatus, Ports, run_suite
from evals.scenarios import load_suite
from tests.conftest import SECRET_KEY, loopback_policy
from tests.eval_helpers import AGENT, ScriptedRuntime, write_suite

ORDERS = Path(__file__).resolve().parents[3] / "examples" / "mcp_servers" / "orders.py"


async def test_outcome_reads_the_sandbox_server(tmp_path: Path) -> None:
    suite_yaml = (
        f"name: s\ntools:\n  sandbox:\n    orders:\n      command: [{sys.executable}, {ORDERS}]\n"
    )
    scenario = """\
name: {name}
turns: [hi]
expect:
  outcome:
    tool: order_status
    server: orders
    args: {{order_id: "{order}"}}
    where: {{order_id: "{order}", status: {{pattern: "{status}"}}}}
"""
    suite = load_suite(
        write_suite(
            tmp_path / "s",
            {
                "ok.yaml": scenario.format(name="ok", order="1042", status=".+"),
                "bad.yaml": scenario.format(name="bad", order="1042", status="no such status"),
                "missing.yaml": scenario.format(name="missing", order="1", status=".+"),
            },
            suite_yaml,
        )
    )
    ports = Ports(ScriptedRuntime(), outcomes=McpOutcomeChecker(loopback_policy()))
    results = {r.scenario: r for r in await run_suite(suite, AGENT, ports, run_id="o")}
    assert results["ok"].status is CaseStatus.PASSED, results["ok"].checks
    bad = {c.name: c for c in results["bad"].checks}["outcome order_status"]
    assert bad.passed is False and "no matching record" in bad.detail
    missing = {c.name: c for c in results["missing"].checks}["outcome order_status"]
    assert missing.passed is False and "no order" in missing.detail.lower()


async def test_prior_calls_are_seeded_into_memory(sqlite_url: str, embedder: Any) -> None:
    engine = make_engine(sqlite_url)
    vectors = EmbeddedVectorStore(engine)
    seeder = MemorySeeder(engine, SECRET_KEY, embedder, vectors)
    turns = [
        Turn(role="caller", text="Do you have gluten-free pasta?"),
        Turn(role="agent", text="Yes, on request."),
    ]
    await seeder.seed_prior_calls(AGENT, "+14155550132", [turns])
    await seeder.seed_prior_calls(AGENT, "+14155550132", [turns])  # a second case: same call
    with Session(engine) as session:
        memory = MemoryService(session, embedder, vectors)
        hashed = caller_hash(SECRET_KEY, "+14155550132")
        context = memory.get_context(AGENT.org_id, AGENT.id, hashed)
        assert context.known and context.call_count == 1 and "gluten-free" in context.summary
        hits = memory.search(AGENT.org_id, AGENT.id, hashed, "gluten free")
        assert hits
    engine.dispose()
