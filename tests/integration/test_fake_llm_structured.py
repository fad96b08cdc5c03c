"""The local fake model's structured-output answers over HTTP (fakes/llm_structured.py through
the chat connector): the connector sends ``ModelSettings.response_format`` as is, and the fake
fills the schema from what the prompt says, ignoring turns labelled as examples."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from connectors.chat_llm import OpenAIChatModel
from core.agent.llm import ChatMessage, ModelSettings
from fakes.llm import FakeLLM, fake_llm

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "is_complete": {"type": "boolean"},
        "verdict": {"type": "string", "enum": ["yes", "no", "idk"]},
        "score": {"type": "number", "minimum": 0, "maximum": 10},
        "intentions": {"type": "array", "items": {"type": "string"}},
        "reason": {"type": "string"},
        "simulated_input": {"type": "string"},
        "note": {"anyOf": [{"type": "string"}, {"type": "null"}]},
    },
    "required": ["is_complete", "verdict", "score", "intentions", "reason"],
}
FORMAT = {"type": "json_schema", "json_schema": {"name": "Probe", "schema": SCHEMA}}
EXAMPLE = """Example Conversation:
[{"role": "user", "content": "Reset my password"},
 {"role": "assistant", "content": "Your password reset is completed."}]
"""


def _prompt(turns: list[tuple[str, str]]) -> str:
    conversation = json.dumps([{"role": r, "content": c} for r, c in turns], indent=4)
    return (
        f'{EXAMPLE}\nScenario: "book a table for four, under the name Dana"\n'
        f"Conversation History:\n{conversation}\nJSON Output:"
    )


@pytest.fixture(scope="module")
def llm() -> Iterator[FakeLLM]:
    with fake_llm() as server:
        yield server


async def _ask(llm: FakeLLM, prompt: str) -> dict[str, Any]:
    model = OpenAIChatModel(base_url=llm.base_url, api_key=None)
    try:
        settings = replace(ModelSettings(model="fake-judge"), response_format=FORMAT)
        result = await model.complete([ChatMessage.user(prompt)], settings=settings)
    finally:
        await model.aclose()
    assert llm.requests[-1].body["response_format"] == FORMAT
    assert llm.requests[-1].rule == "structured"
    value = json.loads(result.content)
    assert isinstance(value, dict)
    return value


async def test_a_goal_met_in_the_conversation_fills_the_schema_accordingly(llm: FakeLLM) -> None:
    value = await _ask(
        llm,
        _prompt(
            [
                ("user", "A table for four please"),
                ("assistant", "Which name should I book under?"),
                ("user", "Dana"),
                ("assistant", "Your table for four is booked under Dana."),
            ]
        ),
    )
    assert value["is_complete"] is True and value["verdict"] == "yes"
    assert value["score"] == 10.0
    assert value["intentions"] == ["A table for four please", "Dana"]
    assert value["simulated_input"] == "Under the name Dana."
    assert value["note"] == "Under the name Dana."
    assert "share" in value["reason"] and "four" in value["reason"]


async def test_an_unanswered_caller_and_the_examples_count_for_nothing(llm: FakeLLM) -> None:
    value = await _ask(
        llm, _prompt([("user", "A table for four please"), ("assistant", "Sorry, I can't.")])
    )
    # The example's completed reset does not leak into the verdicts.
    assert value["is_complete"] is False and value["verdict"] == "no"
    assert value["score"] == 0.0
    assert value["intentions"] == ["A table for four please"]
    assert value["simulated_input"] == "Under the name Dana."


async def test_no_conversation_starts_the_scenario(llm: FakeLLM) -> None:
    value = await _ask(llm, _prompt([]))
    assert value["simulated_input"] == "Book a table for four."
    assert value["is_complete"] is False and value["intentions"] == []
