"""The demo eval suite (examples/evals/demo) loads cleanly, and a few of its scenarios run end to
end through the real agent runtime: the demo agent's prompt, its knowledge base (the files in
examples/knowledge, ingested), its appointments and orders MCP servers, and the fake LLM, whose
answers follow only from the request. The expected verdicts are what that scripted model does
with what it is sent, not fixed outcomes: a fact that is in the knowledge is said and grounded, a
tool the caller asks for is called, and a tool the prompt forbids is not."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy.engine import Engine

from cli.ops import DEMO_ASSISTANT
from connectors.embedder import MiniLMEmbedder
from connectors.llamaindex import LlamaIndexIngestor
from core.knowledge.schemas import SourceCreate
from evals.runner import CaseResult, CaseStatus, Ports, run_case
from evals.scenarios import Suite, load_suite
from fakes.llm import FakeLLM, FakeLLMConfig, fake_llm
from tests.integration.test_agent_runtime import World
from tests.knowledge_helpers import add_source
from tests.mcp_helpers import APPOINTMENTS, ORDERS, Harness, HttpServer

ROOT = Path(__file__).resolve().parents[2]
SUITE = ROOT / "examples" / "evals" / "demo"
KNOWLEDGE = ROOT / "examples" / "knowledge"
PROMPT = DEMO_ASSISTANT["model"]["messages"][0]["content"]  # type: ignore[index]


def test_the_demo_suite_loads() -> None:
    suite = load_suite(SUITE)
    assert suite.config.agent == "demo"
    assert len(suite.scenarios) >= 12
    personas = {c.persona.name for c in suite.cases() if c.persona is not None}
    assert {"angry", "confused", "elderly_slow", "interrupter", "noisy_speech"} <= personas
    assert set(suite.config.tools.sandbox) == {"appointments", "orders"}
    tools = {t.name for s in suite.scenarios for t in s.expect.tools_called}
    assert {"order_status", "list_slots", "book_slot", "cancel_booking"} <= tools


@pytest.fixture(scope="module")
def llm() -> Iterator[FakeLLM]:
    with fake_llm() as fake:
        yield fake


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, HttpServer]]:
    running = {
        "appointments": HttpServer(APPOINTMENTS).start(),
        "orders": HttpServer(ORDERS).start(),
    }
    yield running
    for server in running.values():
        server.stop()


@pytest_asyncio.fixture
async def world(
    pg_engine: Engine,
    embedder: MiniLMEmbedder,
    llm: FakeLLM,
    servers: dict[str, HttpServer],
    tmp_path: Path,
) -> AsyncIterator[World]:
    harness = Harness(pg_engine)
    w = World(pg_engine, harness, embedder, llm, tmp_path)
    llm.config = FakeLLMConfig()
    for name, server in servers.items():
        await harness.register(name=name, transport="http", url=server.url)
    for tool in ("list_slots", "book_slot", "cancel_booking", "order_status", "refund_order"):
        harness.enable(tool)
    refresher = w.refresher(LlamaIndexIngestor(embedder))
    for path in sorted(KNOWLEDGE.glob("*.md")):
        source = SourceCreate(
            kind="file",
            name=path.name,
            filename=path.name,
            content_base64=base64.b64encode(path.read_bytes()).decode(),
        )
        refresher.refresh(add_source(pg_engine, w.agent.org_id, w.agent.id, source))
    yield w
    await w.model.aclose()
    w.index.close()
    await harness.aclose()


async def _run(world: World, suite: Suite, names: list[str]) -> dict[str, CaseResult]:
    results = {}
    for i, case in enumerate(c for c in suite.cases() if c.scenario.name in names):
        ports = Ports(world.runtime)
        results[case.scenario.name] = await run_case(
            suite, case, world.agent, ports, run_id="demo", index=i
        )
    return results


def _check(result: CaseResult, name: str) -> bool | None:
    [check] = [c for c in result.checks if c.name == name]
    return check.passed


async def test_scenarios_through_the_runtime_pass_and_fail_as_the_model_behaves(
    world: World,
) -> None:
    suite = load_suite(SUITE)
    names = ["drain cleaning price", "order status", "list open slots"]
    world.release(PROMPT)
    results = await _run(world, suite, names)
    assert set(results) == set(names)
    for result in results.values():
        # A case fails exactly when one of its checks failed; none errored.
        failed = any(c.passed is False for c in result.checks)
        assert result.status == (CaseStatus.FAILED if failed else CaseStatus.PASSED)

    # The tools the caller asks for are called with the number they said, and the answer
    # comes from the tool's result.
    assert results["order status"].status == CaseStatus.PASSED
    assert results["list open slots"].status == CaseStatus.PASSED
    # The price is in the ingested price list: the angry caller still hears it.
    assert _check(results["drain cleaning price"], "says $175") is True

    # The same scenario against a prompt that forbids the tool: the model obeys, so the
    # tools_called expectation is missed, and it reaches for the other order tool instead,
    # which the scenario's tools_not_called catches.
    world.release(PROMPT + " Never call order_status.")
    again = await _run(world, suite, ["order status"])
    assert again["order status"].status == CaseStatus.FAILED
    assert _check(again["order status"], "called order_status") is False
    assert _check(again["order status"], "did not call refund_order") is False
