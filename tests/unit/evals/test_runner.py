"""The eval runner against a scripted conversation: each kind of check passing and failing,
simulated callers skipped without an LLM, the concurrency limit, cancellation and time caps."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from evals.grounding import claims, ungrounded
from evals.runner import (
    NO_LLM_SIMULATED,
    CaseStatus,
    Ports,
    run_status,
    run_suite,
    tallies,
    verdict_against,
)
from evals.scenarios import Outcome, SandboxServer, load_suite
from evals.verdict import Verdict
from tests.eval_helpers import (
    AGENT,
    RecordingSeeder,
    Reply,
    ScriptedRuntime,
    Tool,
    booking_runtime,
    write_suite,
)

BOOKING = """\
name: book
caller:
  number: "+14155550132"
  prior_calls:
    - turns:
        - caller: Do you do gluten-free?
        - agent: Yes.
opening: Hi, I'd like to book a table.
turns:
  - For four people tomorrow at seven thirty.
  - The name is Dana Whitfield.
  - Is there parking?
expect:
  tools_called:
    - name: create_booking
      args: {party_size: 4, time: "19:30", name: {pattern: "(?i)dana.*"}, notes: {present: false}}
  tools_not_called: [cancel_booking]
  must_say: [booked, "/confirm(ed|ation)/i"]
  must_not_say: ["I can't help"]
  numbers_from_knowledge: [12]
  grounded: true
  max_turns: 8
  transfer: false
"""


def checks_by_name(result: Any) -> dict[str, Any]:
    return {c.name: c for c in result.checks}


async def test_every_deterministic_check_passes(tmp_path: Path) -> None:
    suite = load_suite(write_suite(tmp_path / "s", {"book.yaml": BOOKING}))
    seeder = RecordingSeeder()
    runtime = booking_runtime()
    [result] = await run_suite(suite, AGENT, Ports(runtime, seeder=seeder), run_id="r1")
    assert result.status is CaseStatus.PASSED, [c for c in result.checks if not c.passed]
    names = checks_by_name(result)
    assert {"called create_booking", "did not call cancel_booking", "says booked"} <= set(names)
    assert names["grounded"].passed and names["number 12 from knowledge"].passed
    assert {c.layer for c in result.checks} >= {"infrastructure", "execution", "reaction"}
    assert seeder.seeded[0][0] == "+14155550132" and seeder.seeded[0][1][0][1].role == "agent"
    assert runtime.targets[0].call_id == "eval-r1-0000-r0"
    assert runtime.said[0] == "Hi, I'd like to book a table."
    assert result.metrics["tool_calls"] == 1 and result.metrics["upstream_ms_p50"] == 200.0
    assert result.transcript[0]["role"] == "agent" and result.trace[2]["tool_calls"]


async def test_each_check_fails_with_a_detail(tmp_path: Path) -> None:
    suite = load_suite(write_suite(tmp_path / "s", {"book.yaml": BOOKING}))
    bad = ScriptedRuntime(
        {
            "four": Reply("Sorry, I can't help with that. We have 15 tables at Oak Lane."),
            "name": Reply(
                "Done.",
                tool_calls=[
                    Tool("create_booking", {"party_size": 2, "time": "19:30", "name": "Dana"}),
                    Tool("cancel_booking", {"id": "x"}),
                    Tool("transfer_call", {}),
                ],
            ),
        }
    )
    [result] = await run_suite(suite, AGENT, Ports(bad, seeder=RecordingSeeder()), run_id="r2")
    assert result.status is CaseStatus.FAILED
    failed = {c.name: c.detail for c in result.checks if c.passed is False}
    assert "party_size" in failed["called create_booking"]
    assert failed["did not call cancel_booking"] == "called 1 time(s)"
    assert failed["says booked"] == "never said"
    assert "I can't help" in failed["does not say I can't help"]
    assert "not in the knowledge" in failed["number 12 from knowledge"]
    assert "15" in failed["grounded"] and "Oak Lane" in failed["grounded"]
    assert "transferred: True" in failed["did not transfer"]


async def test_max_turns_stops_the_conversation(tmp_path: Path) -> None:
    text = "name: short\nturns: [a, b, c, d]\nexpect: {max_turns: 2}\n"
    suite = load_suite(write_suite(tmp_path / "s", {"a.yaml": text}))
    runtime = ScriptedRuntime()
    [result] = await run_suite(suite, AGENT, Ports(runtime), run_id="r")
    assert runtime.said == ["a", "b"] and result.status is CaseStatus.FAILED
    failed = {c.name: c.detail for c in result.checks if c.passed is False}
    assert failed == {
        "within 2 turns": "2 agent turns; stopped there: 2 scripted caller line(s) were left"
    }
    text = "name: enough\nturns: [a, b]\nexpect: {max_turns: 2}\n"
    suite = load_suite(write_suite(tmp_path / "t", {"a.yaml": text}))
    [result] = await run_suite(suite, AGENT, Ports(ScriptedRuntime()), run_id="r")
    assert result.status is CaseStatus.PASSED


async def test_simulated_caller_without_llm_is_skipped_not_passed(tmp_path: Path) -> None:
    sim = "name: sim\nsimulated: {goal: get a refund}\n"
    ok = "name: ok\nturns: [hello]\n"
    suite = load_suite(
        write_suite(tmp_path / "s", {"sim.yaml": sim, "ok.yaml": ok}, "name: s\nrepeats: 2\n")
    )
    results = await run_suite(suite, AGENT, Ports(ScriptedRuntime()), run_id="r")
    sims = [r for r in results if r.scenario == "sim"]
    assert all(r.status is CaseStatus.SKIPPED and r.reason == NO_LLM_SIMULATED for r in sims)
    counts = {t.scenario: (t.passed, t.runs, t.skipped) for t in tallies(results)}
    assert counts == {"ok": (2, 2, 0), "sim": (0, 0, 2)}


async def test_simulated_caller_with_a_simulator(tmp_path: Path) -> None:
    class Caller:
        async def next_line(self, goal: str, persona: str | None, transcript: list[Any]) -> Any:
            return None if len(transcript) > 4 else f"I want to {goal}"

    sim = "name: sim\nsimulated: {goal: get a refund, max_turns: 5}\nexpect: {must_say: [Sure]}\n"
    suite = load_suite(write_suite(tmp_path / "s", {"sim.yaml": sim}))
    runtime = ScriptedRuntime()
    [result] = await run_suite(suite, AGENT, Ports(runtime, simulator=Caller()), run_id="r")
    assert result.status is CaseStatus.PASSED and runtime.said == ["I want to get a refund"] * 2


async def test_rubric_and_outcome_use_their_ports_or_are_skipped(tmp_path: Path) -> None:
    text = """\
name: out
turns: [hi]
expect:
  rubric: polite
  outcome: {tool: list_bookings, items: bookings, where: {party_size: 4}}
"""
    suite = load_suite(write_suite(tmp_path / "s", {"a.yaml": text}))
    [skipped] = await run_suite(suite, AGENT, Ports(ScriptedRuntime()), run_id="r")
    assert skipped.status is CaseStatus.PASSED  # skipped checks never fail a case...
    assert {c.name: c.passed for c in skipped.checks}["rubric"] is None  # ...nor pass it

    class Judge:
        async def judge(self, rubric: str, transcript: list[Any]) -> tuple[bool, str]:
            return False, "rude"

    class Outcomes:
        async def call(self, outcome: Outcome, server: SandboxServer | None) -> Any:
            return {"bookings": [{"party_size": 2}]}

    ports = Ports(ScriptedRuntime(), judge=Judge(), outcomes=Outcomes())
    [judged] = await run_suite(suite, AGENT, ports, run_id="r")
    failed = {c.name: c for c in judged.checks if c.passed is False}
    assert failed["rubric"].detail == "rude" and failed["outcome list_bookings"].layer == "outcome"


async def test_runtime_error_is_an_infrastructure_failure(tmp_path: Path) -> None:
    suite = load_suite(write_suite(tmp_path / "s", {"a.yaml": "name: a\nturns: [boom]\n"}))
    runtime = ScriptedRuntime({"boom": TimeoutError("upstream timed out")})
    [result] = await run_suite(suite, AGENT, Ports(runtime), run_id="r")
    assert result.status is CaseStatus.ERROR and result.counted and not result.passed
    assert result.checks[0].layer == "infrastructure" and "timed out" in result.checks[0].detail


async def test_concurrency_limit(tmp_path: Path) -> None:
    suite = load_suite(
        write_suite(tmp_path / "s", {"a.yaml": "name: a\nturns: [x]\n"}, "name: s\nrepeats: 6\n")
    )
    runtime = ScriptedRuntime(delay=0.05)
    results = await run_suite(suite, AGENT, Ports(runtime), run_id="r", concurrency=2)
    assert len(results) == 6 and all(r.passed for r in results)
    assert runtime.peak == 2


async def test_cancel_and_time_cap_skip_the_rest(tmp_path: Path) -> None:
    suite = load_suite(
        write_suite(tmp_path / "s", {"a.yaml": "name: a\nturns: [x]\n"}, "name: s\nrepeats: 5\n")
    )
    cancel = asyncio.Event()

    reported: list[int] = []

    def first_done(i: int, result: Any) -> None:
        reported.append(i)
        cancel.set()

    results = await run_suite(
        suite,
        AGENT,
        Ports(ScriptedRuntime(delay=0.02)),
        run_id="r",
        concurrency=1,
        cancel=cancel,
        on_result=first_done,
    )
    assert [r.status for r in results].count(CaseStatus.PASSED) == 1
    assert all("cancelled" in r.reason for r in results[1:])
    assert sorted(reported) == list(range(5))  # every case is reported, run or not

    capped = await run_suite(
        suite, AGENT, Ports(ScriptedRuntime(delay=0.2)), run_id="r", concurrency=1, time_cap=0.1
    )
    assert all(r.status is CaseStatus.SKIPPED and "time cap" in r.reason for r in capped)


async def test_verdict_against_a_baseline(tmp_path: Path) -> None:
    suite = load_suite(
        write_suite(
            tmp_path / "s",
            {"a.yaml": "name: a\nturns: [x]\nexpect: {must_say: [great]}\n"},
            "name: s\nrepeats: 5\n",
        )
    )
    good = await run_suite(suite, AGENT, Ports(ScriptedRuntime(default=Reply("great"))), run_id="b")
    bad = await run_suite(suite, AGENT, Ports(ScriptedRuntime(default=Reply("no"))), run_id="c")
    verdict = verdict_against(tallies(bad), tallies(good))
    assert verdict.verdict is Verdict.REGRESSED
    assert run_status(bad, verdict, has_baseline=True) == "regressed"
    alone = verdict_against(tallies(good), None)
    assert run_status(good, alone, has_baseline=False) == "inconclusive"
    assert run_status(bad, verdict_against(tallies(bad), None), has_baseline=False) == "failed"


def test_grounding_claims() -> None:
    assert claims("We open at 7:30. Ask for Dana Whitfield at the Elm Street door.") == [
        "7",
        "30",
        "Dana Whitfield",
        "Elm Street",
    ]
    assert ungrounded(["It costs $1,200 at Oak Lane."], ["price 1200, Oak lane"]) == []
    assert ungrounded(["I can seat 14."], ["seats 140"]) == ["14"]
