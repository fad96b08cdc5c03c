"""Tests for the non-LLM call analysis: extractive summary and rule-based facts."""

from __future__ import annotations

import pytest

from core.calls.events import Role, Turn
from core.memory.analysis import (
    FACT_KEYS,
    METHOD_RULES,
    CallAnalysis,
    ExtractedFact,
    analyze_call_rules,
    extract_facts_rules,
    normalize_fact_value,
    redact_analysis,
    summarize_extractive,
)
from core.pii.policy import PiiPolicy


def turn(role: Role, text: str) -> Turn:
    return Turn(role=role, text=text)


def caller(text: str) -> list[Turn]:
    return [turn("caller", text)]


def facts_of(turns: list[Turn]) -> dict[str, str]:
    return {f.key: f.value for f in extract_facts_rules(turns)}


ORDER_CALL = [
    turn("agent", "Thanks for calling Acme, how can I help you today?"),
    turn("caller", "Hi, this is Dana. Where is my order 1042?"),
    turn("agent", "Let me check that for you."),
    turn("agent", "Your order 1042 was delivered on February 27."),
    turn("caller", "Oh great, thanks."),
    turn("agent", "You're welcome. Have a great day!"),
]


# ---------------------------------------------------------------- summary


def test_summary_keeps_caller_request_and_agent_resolution_in_call_order() -> None:
    summary = summarize_extractive(ORDER_CALL, max_sentences=2)

    assert (
        summary
        == "Caller: Where is my order 1042? Agent: Your order 1042 was delivered on February 27."
    )


def test_summary_of_empty_transcript_is_empty() -> None:
    assert summarize_extractive([]) == ""


def test_summary_of_only_greetings_and_fillers_is_empty() -> None:
    turns = [
        turn("agent", "Hello! Thanks for calling, how can I help?"),
        turn("caller", "Hello? Hello?"),
        turn("agent", "Okay. Have a nice day."),
    ]

    assert summarize_extractive(turns) == ""


def test_summary_skips_greetings_and_hold_fillers() -> None:
    summary = summarize_extractive(ORDER_CALL, max_sentences=3)

    assert "Thanks for calling" not in summary
    assert "Let me check" not in summary
    assert "Have a great day" not in summary


def test_summary_fills_exactly_max_sentences_when_the_call_has_enough() -> None:
    turns = [
        turn("caller", "My internet router keeps dropping the connection every evening."),
        turn("agent", "I see the router on your account restarted twelve times this week."),
        turn("caller", "Yes, the connection drops around eight every evening."),
        turn("agent", "I've scheduled a technician to replace the router on Friday."),
        turn("caller", "Will the technician call before coming?"),
        turn("agent", "Yes, the technician will call thirty minutes before arriving."),
    ]

    for limit in (1, 2, 3, 4):
        summary = summarize_extractive(turns, max_sentences=limit)
        ended = summary.count(".") + summary.count("?") + summary.count("!")
        assert ended == limit, (limit, summary)


def test_summary_uses_only_sentences_from_the_call() -> None:
    summary = summarize_extractive(ORDER_CALL)
    spoken = " ".join(t.text for t in ORDER_CALL)

    for part in summary.replace("Agent:", "|").replace("Caller:", "|").split("|"):
        if part.strip():
            assert part.strip() in spoken


def test_summary_merges_consecutive_sentences_of_one_speaker_under_one_label() -> None:
    turns = [
        turn("caller", "My refund for order 77812 never arrived. The refund was approved in May."),
        turn("agent", "The refund for order 77812 was sent to your card today."),
    ]

    summary = summarize_extractive(turns, max_sentences=3)

    assert summary.count("Caller:") == 1
    assert summary.startswith("Caller: My refund for order 77812 never arrived.")
    assert summary.endswith("Agent: The refund for order 77812 was sent to your card today.")


def test_summary_prefers_the_resolution_over_an_unrelated_agent_aside() -> None:
    turns = [
        turn("caller", "I need to change my delivery address for order 5521."),
        turn("agent", "Our stores are open from nine to five on weekdays."),
        turn("agent", "I've updated the delivery address for order 5521."),
    ]

    summary = summarize_extractive(turns, max_sentences=2)

    assert summary == (
        "Caller: I need to change my delivery address for order 5521. "
        "Agent: I've updated the delivery address for order 5521."
    )


def test_summary_is_deterministic() -> None:
    assert summarize_extractive(ORDER_CALL) == summarize_extractive(list(ORDER_CALL))


def test_summary_rejects_a_non_positive_sentence_budget() -> None:
    with pytest.raises(ValueError):
        summarize_extractive(ORDER_CALL, max_sentences=0)


def test_summary_adds_a_full_stop_to_unpunctuated_sentences() -> None:
    turns = [
        turn("caller", "where is my package 88123"),
        turn("agent", "package 88123 ships Monday"),
    ]

    assert (
        summarize_extractive(turns)
        == "Caller: where is my package 88123. Agent: package 88123 ships Monday."
    )


# ---------------------------------------------------------------- facts: names


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("My name is Dana.", "Dana"),
        ("my name's Dana Whitfield and I have a question", "Dana Whitfield"),
        ("Hi, this is Dana.", "Dana"),
        ("Hello this is Marcus Lee calling about my bill", "Marcus Lee"),
        ("You can call me Sam.", "Sam"),
        ("Call me O'Neil please", "O'Neil"),
        ("My name is Mary-Ann McDonald.", "Mary-Ann McDonald"),
    ],
)
def test_name_is_extracted_from_self_introductions(text: str, name: str) -> None:
    assert facts_of(caller(text)).get("name") == name


@pytest.mark.parametrize(
    "text",
    [
        "this is ridiculous",
        "This is ridiculous!",
        "Honestly, This is Unacceptable.",
        "I think this is Amazon's fault.",
        "Can you call me back tomorrow?",
        "Please call me Tomorrow.",
        "my name is not important",
        "This is the third time I'm calling.",
    ],
)
def test_name_is_not_extracted_from_lookalike_phrases(text: str) -> None:
    assert "name" not in facts_of(caller(text))


def test_second_name_token_that_is_not_a_name_is_dropped() -> None:
    assert facts_of(caller("This is Dana Please help me"))["name"] == "Dana"


# ---------------------------------------------------------------- facts: contact preference


@pytest.mark.parametrize(
    ("text", "channel"),
    [
        ("I prefer email.", "email"),
        ("I'd prefer an e-mail, thanks", "email"),
        ("Please text me.", "text"),
        ("I prefer text messages", "text"),
        ("Contact me by phone.", "phone"),
        ("You can reach me via SMS", "text"),
        ("I'd rather get a phone call", "phone"),
        ("I prefer to be called", "phone"),
        ("Just call me instead", "phone"),
    ],
)
def test_contact_preference_is_normalized_to_a_lowercase_channel(text: str, channel: str) -> None:
    assert facts_of(caller(text))["contact_preference"] == channel


def test_latest_contact_preference_wins_within_one_turn() -> None:
    facts = facts_of(caller("I prefer email... actually, text me instead."))

    assert facts["contact_preference"] == "text"


def test_latest_contact_preference_wins_across_turns() -> None:
    turns = [
        turn("caller", "Please text me about it."),
        turn("agent", "Sure, texts it is."),
        turn("caller", "Actually I prefer email."),
    ]

    assert facts_of(turns)["contact_preference"] == "email"


def test_negated_channel_is_not_a_preference() -> None:
    facts = facts_of(caller("Please don't text me, email me instead."))

    assert facts["contact_preference"] == "email"


@pytest.mark.parametrize(
    "text", ["Could you email me the receipt?", "Can you call me back later?", "Call me Dana."]
)
def test_one_off_requests_are_not_contact_preferences(text: str) -> None:
    assert "contact_preference" not in facts_of(caller(text))


# ---------------------------------------------------------------- facts: city


@pytest.mark.parametrize(
    ("text", "city"),
    [
        ("I live in Austin.", "Austin"),
        ("I just moved to Denver last month", "Denver"),
        ("I'm in Boston right now", "Boston"),
        ("We relocated to Salt Lake City", "Salt Lake City"),
        ("I live in Austin, Texas", "Austin"),
        ("I moved to Austin Texas", "Austin"),
        ("I live in New York", "New York"),
    ],
)
def test_city_is_extracted_and_capitalized(text: str, city: str) -> None:
    assert facts_of(caller(text))["city"] == city


@pytest.mark.parametrize(
    "text",
    ["I'm in a hurry", "I'm in the queue", "I'm in Spanish class", "I moved to the new plan"],
)
def test_city_is_not_extracted_from_lookalike_phrases(text: str) -> None:
    assert "city" not in facts_of(caller(text))


def test_latest_city_wins() -> None:
    turns = [turn("caller", "I live in Austin."), turn("caller", "Oh wait, I moved to Denver.")]

    assert facts_of(turns)["city"] == "Denver"


# ---------------------------------------------------------------- facts: identifiers


@pytest.mark.parametrize(
    ("text", "order_id"),
    [
        ("Where is order 1042?", "1042"),
        ("My order number is 1042.", "1042"),
        ("order #A-55210 never came", "A-55210"),
        ("the order no. ab9931 is late", "AB9931"),
    ],
)
def test_order_id_is_extracted(text: str, order_id: str) -> None:
    assert facts_of(caller(text))["order_id"] == order_id


@pytest.mark.parametrize(
    "text", ["I placed an order 2 weeks ago", "in order to fix it", "I ordered 300 items"]
)
def test_order_id_needs_an_identifier_with_digits(text: str) -> None:
    assert "order_id" not in facts_of(caller(text))


@pytest.mark.parametrize(
    ("text", "account_id"),
    [("My account ACC-7781 is locked", "ACC-7781"), ("account number is 55123", "55123")],
)
def test_account_id_is_extracted_uppercase(text: str, account_id: str) -> None:
    assert facts_of(caller(text))["account_id"] == account_id


# ---------------------------------------------------------------- facts: language, appointment


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("I speak Spanish.", "spanish"),
        ("I only speak French", "french"),
        ("Can we do this in Spanish please?", "spanish"),
        ("en español por favor", "spanish"),
        ("Can you switch to German?", "german"),
    ],
)
def test_language_is_extracted_lowercase(text: str, language: str) -> None:
    assert facts_of(caller(text))["language"] == language


def test_language_not_spoken_is_not_a_preference() -> None:
    assert "language" not in facts_of(caller("I don't speak Spanish, sorry."))


@pytest.mark.parametrize(
    ("text", "appointment"),
    [
        ("I have an appointment on Tuesday at 3pm.", "Tuesday at 3pm"),
        ("I'm booked for March 5th", "March 5"),
        ("my appointment at 10:30 a.m. on Friday", "Friday at 10:30am"),
        ("Can I reschedule my appointment to next Monday at 9 AM?", "next Monday at 9am"),
        ("I'm scheduled for Sept 12 at 2:15 pm", "September 12 at 2:15pm"),
    ],
)
def test_appointment_is_extracted_with_normalized_date_and_time(
    text: str, appointment: str
) -> None:
    assert facts_of(caller(text))["appointment"] == appointment


def test_cancelled_appointment_is_not_recorded() -> None:
    assert "appointment" not in facts_of(caller("Please cancel my appointment on Monday."))


@pytest.mark.parametrize(
    ("text", "allergy"),
    [
        ("I'm allergic to peanuts.", "peanuts"),
        ("I have a severe Peanut allergy", "peanut"),
        ("Just so you know I'm allergic to latex and penicillin.", "latex and penicillin"),
    ],
)
def test_allergy_is_extracted_lowercase(text: str, allergy: str) -> None:
    assert facts_of(caller(text)).get("allergy") == allergy


# ---------------------------------------------------------------- facts: scope


def test_facts_come_only_from_the_caller() -> None:
    turns = [
        turn("agent", "My name is Sam, I live in Austin and I prefer email."),
        turn("caller", "Okay, thanks."),
    ]

    assert extract_facts_rules(turns) == []


def test_facts_are_listed_in_stable_key_order() -> None:
    turns = [
        turn("caller", "I speak Spanish. My order 1042 is late."),
        turn("caller", "I live in Austin. My name is Dana. Please text me."),
    ]

    facts = extract_facts_rules(turns)

    assert [f.key for f in facts] == ["name", "contact_preference", "city", "order_id", "language"]
    assert [f.key for f in facts] == [k for k in FACT_KEYS if k in {f.key for f in facts}]


def test_curly_apostrophes_are_understood() -> None:
    facts = facts_of(caller("I\u2019m in Boston and my name\u2019s Dana."))

    assert facts == {"name": "Dana", "city": "Boston"}


def test_whole_call_analysis_combines_summary_and_facts() -> None:
    analysis = analyze_call_rules(ORDER_CALL)

    assert analysis.method == METHOD_RULES == "extractive+rules"
    assert analysis.summary.startswith("Caller: Where is my order 1042?")
    assert analysis.facts == [
        ExtractedFact(key="name", value="Dana"),
        ExtractedFact(key="order_id", value="1042"),
    ]


def test_empty_call_analysis_is_empty() -> None:
    analysis = analyze_call_rules([])

    assert (analysis.summary, analysis.facts) == ("", [])


@pytest.mark.parametrize(
    ("key", "raw", "stored"),
    [
        ("contact_preference", "Text message", "text"),
        ("contact_preference", "E-mail", "email"),
        ("contact_preference", "carrier pigeon", None),
        ("language", "Spanish", "spanish"),
        ("city", "salt lake city", "Salt Lake City"),
        ("order_id", "#ab-1042", "AB-1042"),
        ("favorite_color", "blue", None),
        ("name", "   ", None),
    ],
)
def test_fact_values_are_normalized_per_key(key: str, raw: str, stored: str | None) -> None:
    assert normalize_fact_value(key, raw) == stored


def test_a_street_address_the_caller_gives_becomes_the_address_fact() -> None:
    facts = extract_facts_rules(caller("The leak is at four twenty two Oak Lane, Apartment 4B."))
    assert ExtractedFact(key="address", value="four twenty two Oak Lane, Apartment 4B") in facts


def test_a_redacted_address_yields_no_address_fact() -> None:
    assert extract_facts_rules(caller("The leak is at [ADDRESS].")) == []


def _analysis(
    *facts: tuple[str, str], summary: str = "Caller: leak at 12 Harbour Road."
) -> CallAnalysis:
    return CallAnalysis(
        summary=summary,
        facts=[ExtractedFact(key=k, value=v) for k, v in facts],
        method=METHOD_RULES,
    )


def test_redact_analysis_drops_the_address_fact_under_the_default_policy() -> None:
    result = redact_analysis(
        _analysis(("address", "12 Harbour Road"), ("name", "Dana")), PiiPolicy()
    )
    assert result.facts == [ExtractedFact(key="name", value="Dana")]
    assert result.summary == "Caller: leak at [ADDRESS]."


def test_redact_analysis_keeps_the_address_fact_but_not_in_the_summary() -> None:
    result = redact_analysis(_analysis(("address", "12 Harbour Road")), PiiPolicy(address="keep"))
    assert result.facts == [ExtractedFact(key="address", value="12 Harbour Road")]
    assert result.summary == "Caller: leak at [ADDRESS]."


def test_redact_analysis_redacts_what_an_llm_reformatted_and_drops_empty_facts() -> None:
    analysis = _analysis(
        ("appointment", "born 1982-03-04, visit Thursday"),
        ("account_id", "dana at example dot com"),
        summary="Caller (DOB March 4th, 1982) wants a plumber.",
    )
    result = redact_analysis(analysis, PiiPolicy(address="keep"))
    assert result.summary == "Caller (DOB [DOB]) wants a plumber."
    assert result.facts == [ExtractedFact(key="appointment", value="born [DOB], visit Thursday")]
