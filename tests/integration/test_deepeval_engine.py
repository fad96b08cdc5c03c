"""deepeval as the eval runner's judge and simulated caller, against the local fake model over
HTTP (fakes/llm.py through the official openai client): structured requests carry the schema as
``response_format`` and answers are validated against it, the conversational metrics and the
scenario's rubric (ConversationalGEval) are graded, ConversationSimulator drives a simulated
scenario to its goal, and everything is recorded in a stored eval run on Postgres.

deepeval is optional (requirements-deepeval.txt, not in requirements.lock): these tests run
only where it is installed. Scores against the fake test the plumbing, not quality.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

pytest.importorskip("deepeval")

from pydantic import BaseModel
from sqlalchemy.engine import Engine
from sqlmodel import Session

from connectors.chat_llm import OpenAIChatModel
from core.agent.llm import ModelSettings
from core.calls.events import Turn
from core.evals import repository as repo
from core.evals.service import EvalService
from core.tenancy.agent_info import AgentInfo
from evals.adapters import eval_ports
from evals.deepeval_engine import (
    BacklineDeepEvalModel,
    DeepEvalCaller,
    DeepEvalJudge,
    to_deepeval_turns,
)
from evals.execution import execute_run, run_cases
from fakes.llm import FakeLLM, fake_llm
from tests.conftest import SECRET_KEY
from tests.eval_helpers import BAD, GOOD, RUBRIC, Answers, booking_runtime

SETTINGS = ModelSettings(model="fake-judge", temperature=0.0)
METRICS = {"conversation_completeness", "knowledge_retention", "role_adherence"}


@pytest.fixture(scope="module")
def llm() -> Iterator[FakeLLM]:
    with fake_llm() as server:
        yield server


def _model(server: FakeLLM) -> OpenAIChatModel:
    return OpenAIChatModel(base_url=server.base_url, api_key=None)


class Reading(BaseModel):
    intentions: list[str]
    verdict: str


def test_telemetry_and_dotenv_loading_are_off() -> None:
    assert os.environ["DEEPEVAL_TELEMETRY_OPT_OUT"] == "1"
    assert os.environ["DEEPEVAL_DISABLE_DOTENV"] == "1"


async def test_a_schema_request_is_sent_as_json_schema_and_validated(llm: FakeLLM) -> None:
    model = BacklineDeepEvalModel(_model(llm), SETTINGS)
    prompt = 'Turns:\n[{"role": "user", "content": "I need a table"}]\nJSON:'
    answer = await model.a_generate(prompt, schema=Reading)
    assert isinstance(answer, Reading) and answer.intentions == ["I need a table"]
    body = llm.requests[-1].body
    assert body["model"] == "fake-judge" and body["messages"] == [
        {"role": "user", "content": prompt}
    ]
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["name"] == "Reading"
    assert body["response_format"]["json_schema"]["schema"] == Reading.model_json_schema()
    assert llm.requests[-1].rule == "structured"
    with pytest.raises(ValueError, match="does not fit Reading"):
        await BacklineDeepEvalModel(Answers('{"verdict": "yes"}'), SETTINGS).a_generate(
            "x", schema=Reading
        )


def test_the_transcript_becomes_deepeval_turns() -> None:
    turns = to_deepeval_turns([*GOOD, Turn(role="caller", text="  ")])
    assert [(t.role, t.content) for t in turns] == [
        ("assistant", GOOD[0].text),
        ("user", GOOD[1].text),
        ("assistant", GOOD[2].text),
    ]


async def test_the_rubric_through_conversational_geval_tells_good_from_bad(
    llm: FakeLLM,
) -> None:
    judge = DeepEvalJudge(_model(llm), SETTINGS, threshold=0.5)
    before = len(llm.requests)
    good, good_reason = await judge.judge(RUBRIC, GOOD)
    bad, bad_reason = await judge.judge(RUBRIC, BAD)
    assert good is True and good_reason.startswith("deepeval ConversationalGEval score 1.00")
    assert bad is False and bad_reason.startswith("deepeval ConversationalGEval score 0.00")
    asked = llm.requests[before:]
    assert asked and all(r.rule == "structured" for r in asked)
    schemas = {r.body["response_format"]["json_schema"]["name"] for r in asked}
    assert {"Steps", "ReasonScore"} <= schemas
    assert any(RUBRIC in r.body["messages"][0]["content"] for r in asked)


async def test_the_conversational_metrics_are_deepeval_metrics(llm: FakeLLM) -> None:
    judged = await DeepEvalJudge(_model(llm), SETTINGS, threshold=0.5).metrics(GOOD)
    assert judged["engine"] == "deepeval" and judged["model"] == "fake-judge"
    assert set(judged["rubrics"]) == METRICS
    for verdict in judged["rubrics"].values():
        assert 0 <= verdict["score"] <= 1 and verdict["passed"] == (verdict["score"] >= 0.5)


async def test_a_model_that_cannot_follow_the_schema_is_not_judged_never_passed() -> None:
    judge = DeepEvalJudge(Answers("It looks fine to me."), SETTINGS)
    passed, reason = await judge.judge(RUBRIC, GOOD)
    assert passed is None and "not judged" in reason and "JSON object" in reason
    judged = await judge.metrics(GOOD)
    assert set(judged["rubrics"]) == METRICS
    assert all(v["passed"] is None and v["score"] is None for v in judged["rubrics"].values())


async def test_the_simulator_writes_lines_towards_the_goal_and_hangs_up(llm: FakeLLM) -> None:
    caller = DeepEvalCaller(_model(llm), SETTINGS)
    goal = "book a table for four, under the name Dana"
    transcript = [Turn(role="agent", text="Hello, how can I help?")]
    first = await caller.next_line(goal, "Dana, in a hurry", transcript)
    assert first == "Book a table for four."
    prompt = llm.requests[-1].body["messages"][0]["content"]
    assert "Dana, in a hurry" in prompt and f'Scenario: "{goal}"' in prompt
    transcript += [Turn(role="caller", text=first), Turn(role="agent", text="What name?")]
    assert await caller.next_line(goal, None, transcript) == "Under the name Dana."
    transcript += [
        Turn(role="caller", text="Under the name Dana."),
        Turn(role="agent", text="Your table for four is booked under Dana."),
    ]
    assert await caller.next_line(goal, None, transcript) is None
    schema = llm.requests[-1].body["response_format"]["json_schema"]["name"]
    assert schema == "ConversationCompletion"


SIMULATED = """\
name: sim
simulated:
  goal: book a table for four, under the name Dana Whitfield
  max_turns: 6
expect:
  tools_called: [{name: create_booking}]
  rubric: The agent confirms the booking for Dana Whitfield.
"""


@pytest.mark.postgres
async def test_a_simulated_scenario_runs_through_deepeval_and_is_recorded(
    llm: FakeLLM, pg_engine: Engine
) -> None:
    agent = AgentInfo(
        id=f"agent-{uuid.uuid4().hex[:8]}",
        org_id="org-evals",
        name="demo",
        platform_settings={},
        credentials={},
    )
    files = {"suite.yaml": "name: s\n", "sim.yaml": SIMULATED}
    with Session(pg_engine) as session:
        run = EvalService(session).create_run(agent.org_id, agent.id, "s", files, 1)
        run_cases(run)
        session.commit()
        run_id = run.id
    runtime = booking_runtime()
    ports = eval_ports(
        runtime,
        pg_engine,
        SECRET_KEY,
        None,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        model=_model(llm),
        model_settings=SETTINGS,
        judge_threshold=0.5,
        deepeval=True,
    )
    assert isinstance(ports.judge, DeepEvalJudge) and isinstance(ports.simulator, DeepEvalCaller)
    finished = await execute_run(pg_engine, run_id, agent, ports, poll_s=0.1)
    assert finished.status in ("inconclusive", "passed")
    assert runtime.said == ["Book a table for four.", "Under the name Dana Whitfield."]
    with Session(pg_engine) as session:
        [row] = repo.case_results(session, run_id)
    assert row.status == "passed"
    checks = {c["name"]: c for c in row.checks}
    assert checks["caller finished"]["passed"] is True
    assert checks["called create_booking"]["passed"] is True
    assert checks["rubric"]["passed"] is True
    assert checks["rubric"]["detail"].startswith("deepeval ConversationalGEval score")
    judged = row.metrics["judged"]
    assert judged["engine"] == "deepeval" and set(judged["rubrics"]) == METRICS
    assert all(v["score"] is not None for v in judged["rubrics"].values())
