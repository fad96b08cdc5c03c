"""The speech-to-text normalizer: ASR artefacts in, the knowledge base's words out; clean text
passes through unchanged (lower-cased)."""

from __future__ import annotations

import pytest

from core.knowledge.normalize import Vocabulary, normalize, phonetic_key, vocabulary_terms

VOCAB = Vocabulary.build(
    vocabulary_terms(
        [
            "Water heater flush costs $149. Air duct cleaning $449. Tankless water heater.",
            "Dishwasher repair. Furnace tune-up. Thermostat installation. Charger install.",
        ]
    )
)


@pytest.mark.parametrize(
    ("heard", "expected"),
    [
        ("um so like how much is uh the the tune up", "how much is the tune up"),
        ("you know I mean what are your hours", "what are your hours"),
        ("can I book on mon- on monday", "can i book on monday"),
        ("I want I want a quote", "i want a quote"),
        ("one forty nine dollars", "149 dollars"),
        ("a hundred and forty nine", "149"),
        ("eighteen fifty for the tank", "1850 for the tank"),
        ("thirty four hundred dollars", "3400 dollars"),
        ("three thousand four hundred", "3400"),
        ("twenty twenty six holidays", "2026 holidays"),
        ("zip nine four six one two", "zip 94612"),
        ("open on november twenty sixth", "open on november 26"),
        ("zero percent interest", "0 percent interest"),
        ("a c tune up", "ac tune up"),
        ("h v a c service", "hvac service"),
        ("put in a g f c i outlet", "put in a gfci outlet"),
        ("the e v charger", "the ev charger"),
        ("send an e mail", "send an email"),
        ("the price is $1,850.", "the price is $1850"),
    ],
)
def test_asr_artefacts_become_written_words(heard: str, expected: str) -> None:
    assert normalize(heard) == expected


@pytest.mark.parametrize(
    "clean",
    [
        "How much is the diagnostic fee?",
        "Do I still pay the 89 dollar fee if I go ahead with the repair?",
        "What's the price for a tankless water heater?",
        "Can you install a water heater I bought at Home Depot?",
        "Is that the one I ordered last time?",
        "How much to add a second AC system to my plan?",
        "What kind of filter do I need?",
        "I would like a quote",
    ],
)
def test_clean_questions_keep_their_words(clean: str) -> None:
    out = normalize(clean, VOCAB)
    words = [w.strip("?.,!") for w in clean.lower().split()]
    assert out.split() == [w for w in words if w]


def test_vocabulary_repairs_sound_alikes_and_split_words() -> None:
    assert normalize("water heater flash", VOCAB) == "water heater flush"
    assert normalize("the dish washer is broken", VOCAB) == "the dishwasher is broken"
    assert normalize("tank less water heater", VOCAB) == "tankless water heater"
    # one edit from a known word: kept, and the known word added (never silently replaced)
    assert normalize("the dishwasser leaks", VOCAB) == "the dishwasser dishwasher leaks"
    assert normalize("the furnice tune up", VOCAB) == "the furnace tune up"  # same sound
    # short words have too many sound-alikes to repair
    assert normalize("duck cleaning", VOCAB) == "duck cleaning"
    assert normalize("do i need to", VOCAB) == "do i need to"


def test_forms_of_a_word_are_not_treated_as_mishearings() -> None:
    assert normalize("how much do you charge", VOCAB) == "how much do you charge"
    assert normalize("installing a charging station", VOCAB) == "installing a charging station"
    assert normalize("clean the duct", VOCAB) == "clean the duct"  # "cleaning" is known


def test_phonetic_keys_group_sound_alikes_only() -> None:
    assert phonetic_key("flush") == phonetic_key("flash")
    assert phonetic_key("write") == phonetic_key("right")
    assert phonetic_key("knight") == phonetic_key("night")
    assert phonetic_key("duct") != phonetic_key("duck")
    assert phonetic_key("price") != phonetic_key("hours")


def test_vocabulary_orders_by_frequency_and_drops_stopwords() -> None:
    terms = vocabulary_terms(["the heater heater heater and flush flush duct"])
    assert terms == ["heater", "flush", "duct"]
