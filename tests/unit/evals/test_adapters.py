"""The outcome check's MCP adapter against a real sandbox server (the example orders server
over stdio), through the runner."""

from __future__ import annotations

import sys
from pathlib import Path

from evals.adapters import McpOutcomeChecker
from evals.runner import CaseStatus, Ports, run_suite
from evals.scenarios import load_suite
from tests.conftest import loopback_policy
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
