"""Tests for the four-layer scorecard: evidence, grounding, compliance, repetition,
monologues, tools, interruptions, and the card's stability."""

from __future__ import annotations

import pytest

from core.calls.events import CallEnded, CallRef, Role, Turn
from core.monitoring.scorecard import (
    LAYERS,
    CallEvidence,
    ComplianceCheck,
    Retrieval,
    ToolUse,
    extract_claims,
    ground,
    interruptions,
    p95,
    repeated_turns,
    score_call,
)

REF = CallRef(platform="vapi", call_id="call-1")


def turn(role: Role, text: str) -> Turn:
    return Turn(role=role, text=text)


TURNS = [
    turn("agent", "Thanks for calling Acme Dental, how can I help you today?"),
    turn("caller", "I'd like to book a cleaning. How much is it and when are you open?"),
    turn("agent", "A cleaning is $85 and we open at 9am on weekdays."),
    turn("caller", "Great, book me with Doctor Sarah Lee on Monday please."),
    turn("agent", "Done: Monday at 9:30 with Sarah Lee. Anything else I can help with?"),
    turn("caller", "No that's all, thank you very much."),
    turn("agent", "You're welcome, goodbye."),
]
CHUNK = "Cleaning costs 85 dollars. Opening hours: nine o'clock to 17:00, Monday to Friday."
BOOKED = '{"booked": true, "slot": "09:30", "dentist": "Sarah Lee"}'


def ended(**overrides: object) -> CallEnded:
    fields: dict[str, object] = {
        "call": REF,
        "ended_reason": "caller_hangup",
        "turns": TURNS,
        "turn_latency_ms": 500.0,
    }
    fields.update(overrides)
    return CallEnded.model_validate(fields)


def evidence(**overrides: object) -> CallEvidence:
    fields: dict[str, object] = {
        "ended": ended(),
        "context_fetch_ms": (120.0,),
        "tools": (ToolUse("book", "ok", True, 240.0, BOOKED),),
        "retrievals": (Retrieval((CHUNK,)),),
        "instructions": ("You are the receptionist of Acme Dental.",),
        "prompt_version": "v2",
    }
    fields.update(overrides)
    return CallEvidence(**fields)  # type: ignore[arg-type]


def test_a_grounded_healthy_call_scores_full_marks_in_every_layer() -> None:
    card = score_call(evidence())

    assert card.score == 100.0
    assert set(card.layers) == set(LAYERS)
    assert all(card.layers[name]["score"] == 1.0 for name in LAYERS)
    execution = card.layers["execution"]
    assert execution["all_grounded"] is True
    assert execution["claims"] == execution["grounded"] == 5
    assert card.metrics["grounded_ratio"] == 1.0
    assert card.metrics["tool_calls"] == 1 and card.metrics["tool_failures"] == 0
    assert card.metrics["context_fetch_ms"] == 120.0
    assert card.notes == []


def test_the_old_parts_stay_and_a_bare_call_ended_scores_as_before() -> None:
    bare = score_call(ended())
    full = score_call(evidence())

    for card in (bare, full):
        assert set(card.parts) == {
            "completion",
            "escalation",
            "talk_ratio",
            "latency",
            "frustration",
            "score",
        }
    assert bare.metrics["evidence_gathered"] is False
    assert bare.layers["execution"]["all_grounded"] is None
    assert "grounding" not in bare.layers["execution"]["parts"]


def test_same_evidence_gives_the_same_card() -> None:
    ev = evidence(tools=(ToolUse("book", "timeout", False, 4000.0),))
    copy = evidence(
        ended=ended().model_copy(deep=True), tools=(ToolUse("book", "timeout", False, 4000.0),)
    )

    assert score_call(ev) == score_call(copy)
    assert score_call(ev).model_dump() == score_call(ev).model_dump()


def test_a_stated_price_missing_from_the_evidence_is_ungrounded() -> None:
    card = score_call(evidence(retrievals=(Retrieval(("Opening hours: 9:00 to 17:00.",)),)))

    execution = card.layers["execution"]
    assert execution["all_grounded"] is False
    assert execution["ungrounded"] == ["85"]
    assert execution["grounded"] == execution["claims"] - 1
    assert card.metrics["all_grounded"] is False
    assert card.score < 100.0
    assert any("not found in the call's evidence: 85" in n for n in card.notes)


def test_a_name_nobody_mentioned_is_ungrounded() -> None:
    turns = [*TURNS[:4], turn("agent", "Done: Monday at 9:30 with Robert Brown.")]
    card = score_call(evidence(ended=ended(turns=turns)))

    assert card.layers["execution"]["ungrounded"] == ["Robert Brown"]


@pytest.mark.parametrize(
    ("said", "known"),
    [
        ("We open at 9am.", "Hours: 9:00 - 17:00"),
        ("We open at 9:00.", "We open at nine o'clock"),
        ("We close at 5 pm.", "Closing time 17:00"),
        ("It costs $25.", "The fee is 25 dollars"),
        ("It costs twenty five dollars.", "Fee: $25.00"),
        ("That's 1,200 dollars.", "price 1200"),
        ("Your appointment is on March 3rd.", "date: 2026-03-03"),
        ("Ask for Sarah Lee.", "dentist: sarah  lee"),
    ],
)
def test_grounding_normalizes_times_prices_and_number_words(said: str, known: str) -> None:
    assert ground([said], [known]).grounded == ground([said], [known]).claims > 0


def test_number_words_without_a_unit_are_not_claims() -> None:
    assert extract_claims("One moment, no one can see that yet.") == []
    assert extract_claims("It takes two hours.") == [("number", "2")]
    assert ("name", "Acme Dental Care") in extract_claims("Thanks for calling Acme Dental Care.")
    # Greeting and sentence-opening words are no part of a name.
    assert extract_claims("Hi Sarah Lee.") == [("name", "Sarah Lee")]
    assert extract_claims("Thank You") == []
    # A sentence's first word is no part of the name after it.
    assert extract_claims("Sure. Unfortunately Sarah Lee is out.") == [("name", "Sarah Lee")]
    assert extract_claims("Sarah Lee is in.") == [("name", "Sarah Lee")]


def test_the_caller_s_own_words_ground_what_the_agent_repeats() -> None:
    turns = [
        turn("caller", "My order number is 1042."),
        turn("agent", "Thanks, I found order 1042."),
    ]
    card = score_call(evidence(ended=ended(turns=turns), retrievals=(), tools=()))

    assert card.layers["execution"]["all_grounded"] is True


def test_memory_facts_ground_claims() -> None:
    turns = [turn("caller", "Hi, it's me again."), turn("agent", "Welcome back, see you at 4pm.")]
    without = score_call(evidence(ended=ended(turns=turns)))
    with_fact = score_call(evidence(ended=ended(turns=turns), memory_facts=("slot: 4:00 pm",)))

    assert without.layers["execution"]["all_grounded"] is False
    assert with_fact.layers["execution"]["all_grounded"] is True


def test_repetition_counts_turns_saying_the_same_again() -> None:
    again = "Could you please tell me your date of birth?"
    assert repeated_turns([again, "Sorry?", again, again.replace("please ", "")]) == 2
    assert repeated_turns(["Okay.", "Okay.", "Okay."]) == 0  # too short to count

    turns = [
        turn("agent", again),
        turn("caller", "Why?"),
        turn("agent", again),
        turn("caller", "March third."),
        turn("agent", "Thanks, that is all."),
    ]
    card = score_call(evidence(ended=ended(turns=turns)))
    assert card.layers["execution"]["repeated_agent_turns"] == 1
    assert card.layers["execution"]["parts"]["repetition"] == pytest.approx(0.66)
    assert any("repeated itself 1 time" in n for n in card.notes)


def test_the_longest_monologue_merges_consecutive_agent_turns() -> None:
    long = " ".join(["word"] * 70)
    turns = [turn("caller", "Tell me everything."), turn("agent", long), turn("agent", long)]
    card = score_call(evidence(ended=ended(turns=turns)))

    execution = card.layers["execution"]
    assert execution["longest_monologue_words"] == 140
    assert execution["parts"]["monologue"] == pytest.approx((200 - 140) / 140, abs=1e-4)
    assert execution["words_per_agent_turn"] == 140
    assert card.metrics["words_per_agent_turn"] == 140


def test_compliance_checks_pass_and_fail() -> None:
    checks = (
        ComplianceCheck("greets_by_brand", must_say=r"acme dental"),
        ComplianceCheck("recording_notice", must_say=r"recorded|recording"),
        ComplianceCheck("no_guarantees", must_not_say=r"\bguarantee"),
        ComplianceCheck("no_price_talk", must_not_say=r"\$\d+"),
    )
    card = score_call(evidence(compliance=checks))

    results = {r["name"]: r["passed"] for r in card.layers["execution"]["compliance"]}
    assert results == {
        "greets_by_brand": True,
        "recording_notice": False,
        "no_guarantees": True,
        "no_price_talk": False,
    }
    assert card.layers["execution"]["parts"]["compliance"] == 0.5
    assert any("recording_notice, no_price_talk" in n for n in card.notes)


def test_no_declared_checks_leaves_compliance_out() -> None:
    assert "compliance" not in score_call(evidence()).layers["execution"]["parts"]


def test_tool_failures_and_fallbacks_lower_the_infrastructure_layer() -> None:
    tools = (
        ToolUse("book", "ok", True, 300.0, BOOKED),
        ToolUse("lookup", "timeout", False, 4800.0),
        ToolUse("lookup", "breaker_open", False, 1.0),
        ToolUse("crm", "tool_error", False, 200.0),
    )
    card = score_call(evidence(tools=tools))

    infra = card.layers["infrastructure"]
    assert infra["tool_calls"] == 4
    assert infra["tool_failures"] == 3
    assert infra["fallbacks_spoken"] == 2  # a tool's own error is not the fallback
    assert infra["failed_tools"] == ["crm", "lookup"]
    assert infra["tool_p95_ms"] == 4800.0
    assert infra["parts"]["tools"] == pytest.approx(0.7 * 0.25 + 0.3 * 0.05, abs=1e-4)
    assert infra["score"] < 1.0
    assert card.metrics["tool_failures"] == 3
    assert any("3 of 4 tool call(s) failed" in n for n in card.notes)


def test_p95_is_the_nearest_rank() -> None:
    assert p95([]) is None
    assert p95([5.0]) == 5.0
    assert p95([float(i) for i in range(1, 101)]) == 95.0


def test_a_slow_context_fetch_and_stale_knowledge_show_in_infrastructure() -> None:
    card = score_call(
        evidence(context_fetch_ms=(90.0, 1150.0), retrievals=(Retrieval((CHUNK,), 2),))
    )

    infra = card.layers["infrastructure"]
    assert infra["context_fetch_ms"] == 1150.0
    assert infra["parts"]["context_fetch"] == pytest.approx(0.5)
    assert card.metrics["stale_hits"] == 2


def test_caller_reaction_counts_human_requests_and_interruptions() -> None:
    turns = [
        turn("agent", "Let me explain our policy, it covers"),
        turn("caller", "Stop. I want to speak to a human please."),
        turn("agent", "I can help with that—"),
        turn("caller", "Just transfer me to a real person..."),
    ]
    card = score_call(evidence(ended=ended(turns=turns, transferred=True)))

    reaction = card.layers["reaction"]
    assert reaction["human_requests"] == 2
    assert reaction["interruptions"] == 3
    assert interruptions(turns) == 3
    assert reaction["parts"]["interruptions"] == pytest.approx(0.55)
    outcome = card.layers["outcome"]
    assert outcome["transferred"] is True and outcome["contained"] is False
    assert outcome["end_reason"] == "caller_hangup"
    assert card.metrics["contained"] is False


def test_the_overall_score_and_layers_stay_within_bounds() -> None:
    worst = evidence(
        ended=ended(
            ended_reason="error",
            transferred=True,
            turn_latency_ms=9000.0,
            turns=[turn("caller", "This is ridiculous! Speak to a human, damn it.")],
        ),
        context_fetch_ms=(5000.0,),
        tools=(ToolUse("x", "timeout", False, 9000.0),),
        compliance=(ComplianceCheck("hello", must_say="hello"),),
    )
    card = score_call(worst)

    assert 0.0 <= card.score <= 100.0
    for layer in card.layers.values():
        assert layer["score"] is None or 0.0 <= layer["score"] <= 1.0
        assert all(0.0 <= v <= 1.0 for v in layer["parts"].values())


def test_the_judge_sample_is_deterministic_and_empty_by_default() -> None:
    from core.monitoring.judge import sampled

    assert not any(sampled("a", "vapi", f"c{i}", 0.0) for i in range(100))
    assert all(sampled("a", "vapi", f"c{i}", 1.0) for i in range(100))
    picks = [sampled("a", "vapi", f"c{i}", 0.3) for i in range(1000)]
    assert picks == [sampled("a", "vapi", f"c{i}", 0.3) for i in range(1000)]
    assert 200 < sum(picks) < 400
