"""Tests for the deterministic per-call quality scorecard."""

from __future__ import annotations

import pytest

from core.calls.events import CallEnded, CallRef, Role, Turn, canonical_end_reason
from core.monitoring.scorecard import WEIGHTS, score_call

REF = CallRef(platform="vapi", call_id="call-1")


def turn(role: Role, text: str) -> Turn:
    return Turn(role=role, text=text)


# Agent talk ratio ~0.5 and more than 20 words: a healthy, ordinary call.
GOOD_TURNS = [
    turn("agent", "Thanks for calling Acme, how can I help you today?"),
    turn("caller", "Where is my order 1042? It was supposed to arrive on Monday."),
    turn("agent", "Your order 1042 was delivered on February 27 to the front porch."),
    turn("caller", "Oh I see it now, thank you so much for checking that for me."),
    turn("agent", "You're welcome, have a great day."),
]


def ended(**overrides: object) -> CallEnded:
    fields: dict[str, object] = {
        "call": REF,
        "ended_reason": "customer-ended-call",
        "turns": GOOD_TURNS,
        "turn_latency_ms": 500.0,
    }
    fields.update(overrides)
    # Tests speak the platforms' own reason strings; connectors hand core the canonical one.
    raw = fields.get("ended_reason")
    fields["platform_ended_reason"] = raw
    fields["ended_reason"] = canonical_end_reason(raw if isinstance(raw, str) else None)
    return CallEnded.model_validate(fields)


def test_weights_sum_to_one() -> None:
    assert sum(WEIGHTS.values()) == pytest.approx(1.0)


def test_healthy_call_scores_full_marks() -> None:
    card = score_call(ended())

    assert card.score == 100.0
    assert card.parts == {
        "completion": 1.0,
        "escalation": 1.0,
        "talk_ratio": 1.0,
        "latency": 1.0,
        "frustration": 1.0,
        "score": 100.0,
    }
    assert card.notes == []


def test_same_input_gives_same_scorecard() -> None:
    event = ended(ended_reason="silence-timed-out", turn_latency_ms=2100.0, transferred=True)

    assert score_call(event) == score_call(event.model_copy(deep=True))


def test_every_part_stays_within_zero_and_one() -> None:
    worst = ended(
        ended_reason="pipeline-error-openai-llm-failed",
        transferred=True,
        turn_latency_ms=9000.0,
        turns=[
            turn("caller", "This is ridiculous! Hello? Hello? Hello? Speak to a human, damn it."),
            turn("caller", "Let me talk to a manager now!"),
        ],
    )

    card = score_call(worst)

    assert all(0.0 <= v <= 1.0 for k, v in card.parts.items() if k != "score")
    assert card.score == 0.0


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("customer-ended-call", 1.0),
        ("assistant-ended-call", 1.0),
        ("assistant-said-end-call-phrase", 1.0),
        ("user_hangup", 1.0),
        ("assistant-forwarded-call", 0.6),
        ("silence-timed-out", 0.25),
        ("customer-did-not-answer", 0.25),
        ("assistant-error", 0.0),
        ("pipeline-error-openai-llm-failed", 0.0),
        ("error_llm_websocket_open", 0.0),
        ("something-new", 0.5),
        (None, 0.5),
    ],
)
def test_completion_follows_the_ended_reason(reason: str | None, expected: float) -> None:
    assert score_call(ended(ended_reason=reason)).parts["completion"] == expected


def test_platform_success_overrides_the_ended_reason() -> None:
    failed = score_call(ended(ended_reason="customer-ended-call", platform_success=False))
    succeeded = score_call(ended(ended_reason="assistant-error", platform_success=True))

    assert failed.parts["completion"] == 0.0
    assert succeeded.parts["completion"] == 1.0


def test_error_ending_lowers_the_score_and_says_why() -> None:
    card = score_call(ended(ended_reason="assistant-error"))

    assert card.score == pytest.approx(100 * (1 - WEIGHTS["completion"]))
    assert any("assistant-error" in n for n in card.notes)


def test_call_where_the_caller_never_spoke_cannot_count_as_completed() -> None:
    card = score_call(ended(turns=[turn("agent", "Hello, are you there?")]))

    assert card.parts["completion"] == 0.25


def test_transfer_lowers_escalation() -> None:
    by_flag = score_call(ended(transferred=True))
    by_reason = score_call(ended(ended_reason="assistant-forwarded-call"))

    assert by_flag.parts["escalation"] == pytest.approx(0.4)
    assert by_reason.parts["escalation"] == pytest.approx(0.4)
    assert by_flag.score < 100.0


@pytest.mark.parametrize(
    "request_text",
    [
        "Can I talk to a manager?",
        "I want to speak with a representative.",
        "Just transfer me to an agent please.",
        "Representative!",
    ],
)
def test_caller_asking_for_a_human_lowers_escalation(request_text: str) -> None:
    card = score_call(ended(turns=[*GOOD_TURNS, turn("caller", request_text)]))

    assert card.parts["escalation"] == pytest.approx(0.8)


def test_each_further_request_for_a_human_lowers_escalation_more() -> None:
    once = score_call(ended(turns=[*GOOD_TURNS, turn("caller", "Let me talk to a manager.")]))
    twice = score_call(
        ended(
            turns=[
                *GOOD_TURNS,
                turn("caller", "Let me talk to a manager."),
                turn("caller", "I said let me talk to a supervisor."),
            ]
        )
    )

    assert twice.parts["escalation"] < once.parts["escalation"] < 1.0


def test_agent_monologue_lowers_talk_ratio() -> None:
    monologue = [
        turn("caller", "What are your hours?"),
        turn("agent", " ".join(["We are open every weekday and most weekends too."] * 10)),
    ]

    card = score_call(ended(turns=monologue))

    assert card.parts["talk_ratio"] < 0.2
    assert any("monologue" in n for n in card.notes)


def test_near_silent_agent_lowers_talk_ratio() -> None:
    turns = [
        turn("caller", " ".join(["I have been waiting for my refund for weeks now."] * 5)),
        turn("agent", "Okay."),
    ]

    card = score_call(ended(turns=turns))

    assert card.parts["talk_ratio"] == 0.0


def test_a_call_with_no_words_scores_zero_talk_ratio() -> None:
    assert score_call(ended(turns=[])).parts["talk_ratio"] == 0.0


def test_very_short_call_is_penalized_as_near_silent() -> None:
    short = [turn("caller", "Hi there."), turn("agent", "Hello, how can I help?")]

    card = score_call(ended(turns=short))

    assert 0.0 < card.parts["talk_ratio"] < 0.5
    assert any("near-silent" in n for n in card.notes)


@pytest.mark.parametrize(
    ("latency_ms", "expected"),
    [(300.0, 1.0), (800.0, 1.0), (2400.0, 0.5), (4000.0, 0.0), (12000.0, 0.0)],
)
def test_latency_degrades_linearly_from_800_to_4000_ms(latency_ms: float, expected: float) -> None:
    assert score_call(ended(turn_latency_ms=latency_ms)).parts["latency"] == pytest.approx(expected)


def test_missing_latency_is_left_out_and_weights_renormalized() -> None:
    card = score_call(ended(ended_reason="assistant-error", turn_latency_ms=None))

    assert "latency" not in card.parts
    remaining = 1 - WEIGHTS["latency"]
    assert card.score == pytest.approx(
        round(100 * (remaining - WEIGHTS["completion"]) / remaining, 2)
    )
    assert any("latency not reported" in n and "renormalized" in n for n in card.notes)


@pytest.mark.parametrize(
    "complaint",
    [
        "This is ridiculous.",
        "That's not what I asked.",
        "Are you even listening to me?",
        "I want to speak to a human.",
        "What the hell is going on?",
        "I already told you that.",
    ],
)
def test_each_frustration_cue_lowers_frustration(complaint: str) -> None:
    card = score_call(ended(turns=[*GOOD_TURNS, turn("caller", complaint)]))

    assert card.parts["frustration"] == pytest.approx(0.75)
    assert any("frustration" in n for n in card.notes)


def test_frustration_cues_accumulate() -> None:
    angry = "This is ridiculous, are you even listening? That's not what I asked."

    card = score_call(ended(turns=[*GOOD_TURNS, turn("caller", angry)]))

    assert card.parts["frustration"] == pytest.approx(0.25)


def test_a_single_hello_is_not_frustration_but_repeated_ones_are() -> None:
    one = score_call(ended(turns=[turn("caller", "Hello?"), *GOOD_TURNS]))
    three = score_call(
        ended(turns=[turn("caller", "Hello? Hello?"), turn("caller", "Hello?"), *GOOD_TURNS])
    )

    assert one.parts["frustration"] == 1.0
    assert three.parts["frustration"] == pytest.approx(0.5)


def test_agent_words_are_never_frustration_cues() -> None:
    turns = [*GOOD_TURNS, turn("agent", "I understand this is ridiculous; let me get a human.")]

    assert score_call(ended(turns=turns)).parts["frustration"] == 1.0


def test_score_is_the_weighted_mean_of_the_parts() -> None:
    card = score_call(
        ended(
            ended_reason="silence-timed-out",
            turn_latency_ms=2400.0,
            turns=[*GOOD_TURNS, turn("caller", "This is ridiculous.")],
        )
    )

    expected = 100 * sum(WEIGHTS[k] * card.parts[k] for k in WEIGHTS)
    assert card.score == pytest.approx(expected, abs=0.01)
    assert card.parts["score"] == card.score
