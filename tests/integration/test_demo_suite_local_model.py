"""The whole demo eval suite (examples/evals/demo) against a real small model: SmolLM2-135M
served by ``backline llm serve``'s server in place of the scripted fake, through the real agent
runtime, knowledge base and MCP tool servers of ``test_demo_eval_suite``.

A 135M model answering text only is weak, and the suite must say so: every case reaches a
verdict (none errors), every expected tool call is missed, and not every case passes. How many
pass and how long it takes is printed (``-s``) and recorded in bench/README.md. Skipped unless
the optional packages are importable; it loads the model and generates for minutes on 2 cores."""

from __future__ import annotations

import time
from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from connectors.tool_routing import GatewayToolCatalog
from core.agent.llm import ModelSettings
from core.agent.runtime import AgentRuntime, RuntimeSettings
from evals.runner import CaseStatus, Ports, run_case
from evals.scenarios import load_suite
from tests.integration.test_agent_runtime import World
from tests.integration.test_demo_eval_suite import PROMPT, SUITE, servers, world
from tests.local_model_helpers import local_model_marks, served_smollm2

__all__ = ["servers", "world"]  # the demo suite's fixtures, with this module's `llm`

MAX_TOKENS = 48

pytestmark = [*local_model_marks(timeout_s=3600), pytest.mark.postgres]


@pytest.fixture(scope="module")
def llm() -> Iterator[SimpleNamespace]:
    """The real local model where the demo suite's fixtures expect the fake."""
    with served_smollm2(max_tokens=MAX_TOKENS) as server:
        yield SimpleNamespace(base_url=server.base_url, config=None)


async def test_the_demo_suite_catches_a_weak_local_model(world: World) -> None:
    suite = load_suite(SUITE)
    world.release(PROMPT)
    # The world's own runtime gives the fake 5 s; the local model needs minutes per turn when
    # the machine is busy.
    runtime = AgentRuntime(
        answering=world.answering,
        model=world.model,
        tools=GatewayToolCatalog(lambda: world.harness.gateway),
        settings=RuntimeSettings(
            model=ModelSettings(model="smollm2", temperature=0, timeout_s=600.0)
        ),
    )
    began = time.perf_counter()
    results = [
        await run_case(suite, case, world.agent, Ports(runtime), run_id="local", index=i)
        for i, case in enumerate(suite.cases())
    ]
    wall = time.perf_counter() - began

    assert len(results) == len(suite.cases()) >= 12
    assert {r.status for r in results} <= {CaseStatus.PASSED, CaseStatus.FAILED}
    tool_checks = [c for r in results for c in r.checks if c.name.startswith("called ")]
    assert tool_checks and all(c.passed is False for c in tool_checks)
    # Every case ends on the model's own words, not the runtime's fallback sentence.
    last = [r.transcript[-1] for r in results]
    assert all(t["role"] == "agent" for t in last)
    assert all(t["text"].strip() and t["text"] != runtime.settings.fallback_sentence for t in last)
    passed = [r.scenario for r in results if r.status == CaseStatus.PASSED]
    assert len(passed) < len(results)
    print(f"\nSmolLM2-135M on the demo suite: {len(passed)}/{len(results)} passed in {wall:.0f} s")
    for r in results:
        failed = [f"{c.name}" for c in r.checks if c.passed is False]
        print(f"  {r.status.value:7} {r.scenario:28} {r.seconds:6.1f} s  {'; '.join(failed)}")
        print(f"          said: {r.transcript[-1]['text'][:140]!r}")
