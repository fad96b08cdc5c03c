"""The LLM-judged parts against the local fake model (fakes/llm.py): the rubric judge tells a
good transcript from a bad one and never passes an unusable answer, the simulated caller drives
a scenario to its goal, sampled calls get judged metrics beside their scorecard, and without an
LLM all of it is skipped."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from activities.post_call import CallJudge, PostCallActivities
from cli.worker import build_call_judge, judge_model_settings
from connectors.chat_llm import OpenAIChatModel
from core.agent.llm import ModelSettings
from core.calls.models import Call
from core.db import make_engine, utcnow
from core.monitoring import repository as monitoring_repo
from core.monitoring.judge import CONVERSATIONAL_RUBRICS, parse_verdict, sampled
from core.ports import Embedder, VectorStore
from core.tenancy.models import Agent, Organization
from evals import adapters
from evals.adapters import eval_ports
from evals.judge import ChatModelJudge
from evals.runner import (
    NO_LLM_JUDGED,
    NO_LLM_RUBRIC,
    NO_LLM_SIMULATED,
    CaseStatus,
    Ports,
    run_suite,
)
from evals.scenarios import load_suite
from evals.simulator import ChatModelCaller
from fakes.llm import FakeLLM, fake_llm
from orchestration.post_call_types import CallInput
from tests.conftest import SECRET_KEY, make_settings
from tests.eval_helpers import (
    AGENT,
    BAD,
    GOOD,
    RUBRIC,
    Answers,
    ScriptedRuntime,
    booking_runtime,
    write_suite,
)

SETTINGS = ModelSettings(model="fake-judge", temperature=0.0)


@pytest.fixture(scope="module")
def llm() -> Iterator[FakeLLM]:
    with fake_llm() as server:
        yield server


def _model(server: FakeLLM) -> OpenAIChatModel:
    return OpenAIChatModel(base_url=server.base_url, api_key=None)


async def test_the_judge_scores_a_good_transcript_above_a_bad_one(llm: FakeLLM) -> None:
    judge = ChatModelJudge(_model(llm), SETTINGS)
    good, good_reason = await judge.judge(RUBRIC, GOOD)
    bad, bad_reason = await judge.judge(RUBRIC, BAD)
    assert good is True and bad is False
    assert good_reason.startswith("score 1.00") and bad_reason.startswith("score 0.00")
    # The judge prompt is G-Eval-like: criteria, steps, the transcript, a strict JSON ask.
    body = llm.requests[-1].body
    system = body["messages"][0]["content"]
    assert f"Criteria: {RUBRIC}" in system and "Evaluation steps:" in system
    assert 'Return JSON: {"score"' in system
    assert "agent: Sorry, I can't help with that today." in body["messages"][1]["content"]
    assert llm.requests[-1].rule == "judge"


async def test_the_conversational_metrics_are_three_judged_rubrics(llm: FakeLLM) -> None:
    judged = await ChatModelJudge(_model(llm), SETTINGS, threshold=0.5).metrics(GOOD)
    assert judged["threshold"] == 0.5
    assert (
        set(judged["rubrics"])
        == {r.name for r in CONVERSATIONAL_RUBRICS}
        == {
            "conversation_completeness",
            "knowledge_retention",
            "role_adherence",
        }
    )
    for verdict in judged["rubrics"].values():
        assert 0 <= verdict["score"] <= 1 and verdict["passed"] == (verdict["score"] >= 0.5)


@pytest.mark.parametrize(
    "answer",
    [
        "It looks fine to me.",
        '{"score": "high", "reason": "x"}',
        '{"score": 1.5, "reason": "x"}',
        '{"score": true}',
        "```json\n{score: 1}\n```",
        "[1]",
    ],
)
async def test_an_unusable_answer_is_not_judged_never_passed(answer: str) -> None:
    passed, reason = await ChatModelJudge(Answers(answer), SETTINGS).judge(RUBRIC, GOOD)
    assert passed is None and reason.startswith("not judged:")


def test_the_verdict_parser_accepts_fences_and_surrounding_text() -> None:
    assert parse_verdict('```json\n{"score": 0.8, "reason": "ok"}\n```') == (0.8, "ok")
    assert parse_verdict('Here: {"score": 1, "reason": "fine"} done') == (1.0, "fine")


async def test_an_unusable_verdict_is_a_skipped_rubric_check(tmp_path: Path) -> None:
    text = "name: r\nturns: [hello]\nexpect: {rubric: polite}\n"
    suite = load_suite(write_suite(tmp_path / "s", {"r.yaml": text}))
    judge = ChatModelJudge(Answers("no JSON here"), SETTINGS)
    [result] = await run_suite(suite, AGENT, Ports(ScriptedRuntime(), judge=judge), run_id="r")
    rubric = {c.name: c for c in result.checks}["rubric"]
    assert rubric.passed is None and "not judged" in rubric.detail
    assert result.metrics["judged"]["rubrics"]["role_adherence"]["passed"] is None


SIMULATED = """\
name: sim
simulated:
  goal: book a table for four, under the name Dana Whitfield
  max_turns: 6
expect:
  tools_called: [{name: create_booking}]
  rubric: The agent confirms the booking for Dana Whitfield.
"""


async def test_the_simulated_caller_drives_a_scenario_to_its_goal(
    llm: FakeLLM, tmp_path: Path
) -> None:
    suite = load_suite(write_suite(tmp_path / "s", {"sim.yaml": SIMULATED}))
    runtime = booking_runtime()
    model = _model(llm)
    ports = Ports(
        runtime, judge=ChatModelJudge(model, SETTINGS), simulator=ChatModelCaller(model, SETTINGS)
    )
    [result] = await run_suite(suite, AGENT, ports, run_id="r")
    assert runtime.said == [
        "Hi, I'd like to book a table for four.",
        "Under the name Dana Whitfield.",
    ]
    checks = {c.name: c.passed for c in result.checks}
    assert checks["caller finished"] is True and checks["called create_booking"] is True
    assert checks["rubric"] is True
    assert result.status is CaseStatus.PASSED
    # The caller prompt carries the goal; the agent's turns are what the caller hears.
    caller_requests = [r for r in llm.requests if r.rule == "caller"]
    assert len(caller_requests) == 3  # two lines, then the stop token
    last = caller_requests[-1].body["messages"]
    assert "Your goal: book a table for four" in last[0]["content"]
    assert last[-1] == {
        "role": "user",
        "content": "You're booked, Dana Whitfield. I've confirmed it.",
    }


async def test_a_caller_that_never_reaches_its_goal_fails_the_case(
    llm: FakeLLM, tmp_path: Path
) -> None:
    suite = load_suite(write_suite(tmp_path / "s", {"sim.yaml": SIMULATED}))
    runtime = ScriptedRuntime()  # always "Sure.": nothing is ever booked
    ports = Ports(runtime, simulator=ChatModelCaller(_model(llm), SETTINGS))
    [result] = await run_suite(suite, AGENT, ports, run_id="r")
    assert len(runtime.said) == 6
    assert {c.name: c.passed for c in result.checks}["caller finished"] is False
    assert result.status is CaseStatus.FAILED


async def test_without_an_llm_the_judged_parts_are_skipped(tmp_path: Path) -> None:
    suite = load_suite(
        write_suite(
            tmp_path / "s",
            {"sim.yaml": SIMULATED, "r.yaml": "name: r\nturns: [hi]\nexpect: {rubric: polite}\n"},
        )
    )
    results = {
        r.scenario: r for r in await run_suite(suite, AGENT, Ports(ScriptedRuntime()), run_id="r")
    }
    assert results["sim"].status is CaseStatus.SKIPPED and results["sim"].reason == NO_LLM_SIMULATED
    rubric = {c.name: c for c in results["r"].checks}["rubric"]
    assert rubric.passed is None and rubric.detail == NO_LLM_RUBRIC
    # Each conversational metric is recorded as skipped, with the reason, never as passed.
    judged = results["r"].metrics["judged"]
    assert judged["engine"] is None and set(judged["rubrics"]) == {
        r.name for r in CONVERSATIONAL_RUBRICS
    }
    for verdict in judged["rubrics"].values():
        assert verdict["score"] is None and verdict["passed"] is None
        assert verdict["reason"] == NO_LLM_JUDGED and "BACKLINE_LLM_BASE_URL" in NO_LLM_JUDGED
    assert "BACKLINE_LLM_BASE_URL" in NO_LLM_RUBRIC and "BACKLINE_LLM_BASE_URL" in NO_LLM_SIMULATED
    # The worker builds no post-call judge without an LLM, nor with a sample rate of 0.
    db = "sqlite://"
    assert build_call_judge(make_settings(db, tmp_path, judge_sample_rate=1.0)) is None
    llm_url = "http://127.0.0.1:9/v1"
    with_llm = make_settings(db, tmp_path, llm_base_url=llm_url, judge_sample_rate=0.0)
    assert build_call_judge(with_llm) is None
    judge = build_call_judge(
        make_settings(db, tmp_path, llm_base_url=llm_url, judge_sample_rate=0.25)
    )
    assert judge is not None and judge.sample_rate == 0.25 and judge.threshold == 0.7
    assert judge_model_settings(with_llm).temperature == 0.0


# -- post-call ------------------------------------------------------------------------------


@pytest.fixture
def engine(sqlite_url: str) -> Iterator[Engine]:
    engine = make_engine(sqlite_url)
    yield engine
    engine.dispose()


def _seed(engine: Engine, agent: str, call_ids: list[str]) -> dict[str, int]:
    pks: dict[str, int] = {}
    with Session(engine) as session:
        session.add(Organization(id=f"org-{agent}", name=agent))
        session.flush()
        session.add(Agent(id=agent, org_id=f"org-{agent}", name=agent))
        for call_id in call_ids:
            call = Call(
                org_id=f"org-{agent}",
                agent_id=agent,
                platform="vapi",
                platform_call_id=call_id,
                status="ended",
                started_at=utcnow() - timedelta(minutes=2),
                ended_at=utcnow(),
                ended_reason="customer-ended-call",
                transcript=[t.model_dump(mode="json") for t in GOOD],
            )
            session.add(call)
            session.flush()
            assert call.id is not None
            pks[call_id] = call.id
        session.commit()
    return pks


def test_sampled_calls_get_judged_metrics_beside_the_card(llm: FakeLLM, engine: Engine) -> None:
    agent = f"agent-{uuid.uuid4().hex[:8]}"
    ids = [f"c{i}" for i in range(12)]
    rate = 0.5
    chosen = {c for c in ids if sampled(agent, "vapi", c, rate)}
    assert chosen and chosen != set(ids)
    pks = _seed(engine, agent, ids)
    judge = CallJudge(lambda: _model(llm), SETTINGS, sample_rate=rate)
    with_judge = PostCallActivities(
        engine, SECRET_KEY, cast(Embedder, None), cast(VectorStore, None), None, judge=judge
    )
    without = PostCallActivities(
        engine, SECRET_KEY, cast(Embedder, None), cast(VectorStore, None), None
    )
    for pk in pks.values():
        plain = without.score_call(CallInput(pk)).score
        # The result (what the workflow's history records) is the card's score either way.
        assert with_judge.score_call(CallInput(pk)).score == plain
    with Session(engine) as session:
        for call_id in ids:
            row = monitoring_repo.get_score(session, agent, "vapi", call_id)
            assert row is not None
            if call_id in chosen:
                judged = row.metrics["judged"]
                assert set(judged["rubrics"]) == {r.name for r in CONVERSATIONAL_RUBRICS}
                assert all(v["score"] is not None for v in judged["rubrics"].values())
                assert judged["model"] == "fake-judge"
            else:
                assert "judged" not in row.metrics
    # A later re-score (no judge) keeps the grades beside the fresh card.
    some = sorted(chosen)[0]
    without.score_call(CallInput(pks[some]))
    with Session(engine) as session:
        row = monitoring_repo.get_score(session, agent, "vapi", some)
        assert row is not None and "judged" in row.metrics and "words_per_agent_turn" in row.metrics


def test_a_failing_judge_never_fails_the_score_step(engine: Engine) -> None:
    agent = f"agent-{uuid.uuid4().hex[:8]}"
    pks = _seed(engine, agent, ["c1"])
    down = OpenAIChatModel(base_url="http://127.0.0.1:9/v1", api_key=None)
    judge = CallJudge(lambda: down, SETTINGS, sample_rate=1.0, budget_s=2.0)
    acts = PostCallActivities(
        engine, SECRET_KEY, cast(Embedder, None), cast(VectorStore, None), None, judge=judge
    )
    assert 0 <= acts.score_call(CallInput(pks["c1"])).score <= 100
    with Session(engine) as session:
        row = monitoring_repo.get_score(session, agent, "vapi", "c1")
        assert row is not None
        # Every rubric is recorded as not judged (the model is unreachable), none as passed.
        assert all(v["passed"] is None for v in row.metrics["judged"]["rubrics"].values())


def test_the_eval_ports_have_a_judge_and_a_caller_only_with_a_model(llm: FakeLLM) -> None:
    runtime = ScriptedRuntime()
    common: tuple[Any, ...] = (runtime, cast(Engine, None), SECRET_KEY, None, None, None)
    without = eval_ports(*common)
    assert without.judge is None and without.simulator is None
    with_model = eval_ports(
        *common, model=_model(llm), model_settings=SETTINGS, judge_threshold=0.9
    )
    assert isinstance(with_model.judge, ChatModelJudge) and with_model.judge.threshold == 0.9
    assert isinstance(with_model.simulator, ChatModelCaller)


def test_deepeval_asked_for_but_not_installed_falls_back_to_backlines_judge(
    llm: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    reason = "deepeval is not installed (pip install --no-deps -r requirements-deepeval.txt)"
    monkeypatch.setattr(adapters, "deepeval_missing", lambda: reason)
    common: tuple[Any, ...] = (ScriptedRuntime(), cast(Engine, None), SECRET_KEY, None, None, None)
    ports = eval_ports(*common, model=_model(llm), model_settings=SETTINGS, deepeval=True)
    assert isinstance(ports.judge, ChatModelJudge) and isinstance(ports.simulator, ChatModelCaller)
    # Without an LLM there is no judge at all, deepeval or not.
    without = eval_ports(*common, deepeval=True)
    assert without.judge is None and without.simulator is None
