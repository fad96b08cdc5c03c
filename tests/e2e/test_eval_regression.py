"""The eval suite catches a regression end to end: a small suite (opening hours from the prompt,
a booking through a tool) played against the real agent runtime (answering service, prompt
cache, recorder, the OpenAI-compatible chat model) with the request-driven fake model.

The baseline is the production version; a candidate with the wrong opening hours and an
instruction never to book is ``regressed``; a candidate that only rewords the prompt is
``pass``. The fake is deterministic, so every repeat of a case has the same outcome; the suite
runs ``runs_needed`` repeats per arm, the fewest at which ``evals.verdict`` can say ``pass``
(80% power to catch a fall from 95% to 80% passing)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy.engine import Engine
from sqlmodel import Session

from connectors.embedder import MiniLMEmbedder
from core.prompts.ports import NoEvalSuiteGate
from core.prompts.schemas import PromptVersionCreate
from core.prompts.service import PromptService
from core.tenancy import repository as tenancy_repo
from evals.runner import CaseResult, CaseStatus, Ports, run_suite, tallies, verdict_against
from evals.scenarios import Suite, load_suite
from evals.verdict import MIN_EFFECT, Verdict, runs_needed
from fakes.llm import FakeLLM, FakeLLMConfig, fake_llm
from tests.eval_helpers import write_suite
from tests.integration.test_agent_runtime import World
from tests.mcp_helpers import Harness
from tests.prompt_helpers import principal

pytestmark = [pytest.mark.postgres]

BOOK_TOOL = {
    "name": "book_appointment",
    "description": "Book a technician appointment for the caller at a date and time",
    "parameters": {
        "type": "object",
        "properties": {"date": {"type": "string"}, "time": {"type": "string"}},
        "required": ["date", "time"],
    },
}
PRODUCTION = (
    "You are Acme Home Services' phone agent. Our office is open Monday to Friday, 8am to 6pm. "
    "Book technician appointments for callers with book_appointment."
)
BROKEN = (
    "You are Acme Home Services' phone agent. Our office is open Monday to Friday, 10am to 4pm. "
    "Never call book_appointment."
)
REWORDED = (
    "You are the friendly phone agent of Acme Home Services. Our office is open Monday to "
    "Friday, 8am to 6pm. Book technician appointments for callers with book_appointment."
)
SCENARIOS = {
    "hours.yaml": """\
name: opening hours
turns: ["When is your office open?"]
expect:
  must_say: ["Monday to Friday, 8am to 6pm"]
  must_not_say: [10am]
""",
    "weekday.yaml": """\
name: open on a weekday
turns: ["Is the office open on Friday?"]
expect:
  must_say: [8am to 6pm]
""",
    "booking.yaml": """\
name: book a visit
turns: ["Please book an appointment for tomorrow at 3pm."]
expect:
  tools_called: [{name: book_appointment}]
""",
}
REPEATS = runs_needed(MIN_EFFECT.p0, MIN_EFFECT.p1)


@pytest.fixture(scope="module")
def llm() -> Iterator[FakeLLM]:
    with fake_llm() as fake:
        yield fake


@pytest_asyncio.fixture
async def world(
    pg_engine: Engine, embedder: MiniLMEmbedder, llm: FakeLLM, tmp_path: Path
) -> AsyncIterator[World]:
    harness = Harness(pg_engine)
    w = World(pg_engine, harness, embedder, llm, tmp_path)
    llm.config = FakeLLMConfig()
    yield w
    await w.model.aclose()
    w.index.close()
    await harness.aclose()


def _push(world: World, template: str) -> int:
    """A new version with the booking tool, unlabelled: evals target it by number."""
    with Session(world.engine, expire_on_commit=False) as session:
        agent = tenancy_repo.get_agent(session, world.agent.id)
        assert agent is not None
        body: dict[str, Any] = {"template": template, "message": "candidate", "tools": [BOOK_TOOL]}
        pushed = PromptService(session, NoEvalSuiteGate()).push_version(
            agent, PromptVersionCreate.model_validate(body), principal(agent.org_id, "content")
        )
        session.commit()
        return pushed.version


async def _run(world: World, suite: Suite, version: int, name: str) -> list[CaseResult]:
    return await run_suite(
        suite, world.agent, Ports(world.runtime), run_id=name, label=version, concurrency=8
    )


async def test_a_broken_candidate_regresses_and_a_reworded_one_passes(
    world: World, tmp_path: Path
) -> None:
    assert REPEATS >= 60  # the verdict's power requirement, not a handful of runs
    folder = write_suite(
        tmp_path / "suite", SCENARIOS, f"name: acme\nrepeats: {REPEATS}\nconcurrency: 8\n"
    )
    suite = load_suite(folder)
    production = world.release(PRODUCTION, tools=[BOOK_TOOL])
    broken, reworded = _push(world, BROKEN), _push(world, REWORDED)
    started = time.monotonic()

    baseline = await _run(world, suite, production, "baseline")
    assert len(baseline) == len(SCENARIOS) * REPEATS
    failed = [
        (r.scenario, r.status, [c for c in r.checks if c.passed is False])
        for r in baseline
        if r.status != CaseStatus.PASSED
    ]
    assert not failed, failed[:3]  # the production version passes every case: the baseline
    base = tallies(baseline)

    regressed = verdict_against(tallies(await _run(world, suite, broken, "broken")), base)
    assert regressed.verdict is Verdict.REGRESSED
    assert {s.scenario: s.verdict for s in regressed.scenarios} == {
        "opening hours": Verdict.REGRESSED,
        "open on a weekday": Verdict.REGRESSED,
        "book a visit": Verdict.REGRESSED,
    }

    passed = verdict_against(tallies(await _run(world, suite, reworded, "reworded")), base)
    assert passed.verdict is Verdict.PASS, [s.reason for s in passed.scenarios]
    assert time.monotonic() - started < 60
