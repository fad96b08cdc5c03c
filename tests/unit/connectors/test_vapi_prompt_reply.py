"""A served prompt version in VAPI's assistant-request reply: inline in the assistant's model
(or in assistantOverrides for an assistant id), never losing the platform's own settings."""

from __future__ import annotations

from types import MappingProxyType

from connectors.vapi.mapping import assistant_request_reply
from core.prompts.serving import ServedPrompt

INLINE = {
    "name": "Demo",
    "firstMessage": "Hello",
    "model": {
        "provider": "openai",
        "model": "gpt-4o",
        "temperature": 0.7,
        "messages": [
            {"role": "system", "content": "old system prompt"},
            {"role": "assistant", "content": "example turn"},
        ],
    },
}


def _prompt(model: dict[str, object] | None = None) -> ServedPrompt:
    return ServedPrompt(
        version=3,
        ref="v3",
        source="label:production",
        experiment_id=None,
        system_prompt="Rendered prompt for {{customer.number}}",
        first_message="Hi from v3",
        model=MappingProxyType(model or {}),
        tools=(),
    )


def test_inline_assistant_gets_the_rendered_prompt_and_keeps_its_other_settings() -> None:
    reply = assistant_request_reply(
        assistant_id=None,
        assistant=INLINE,
        variables={"backline_caller_known": "no"},
        prompt=_prompt({"provider": "openai", "model": "gpt-4o-mini"}),
        tools=[{"type": "function", "function": {"name": "memory_search"}}],
    )
    model = reply["assistant"]["model"]
    assert model["model"] == "gpt-4o-mini" and model["temperature"] == 0.7
    assert model["messages"] == [
        {"role": "system", "content": "Rendered prompt for {{customer.number}}"},
        {"role": "assistant", "content": "example turn"},
    ]
    assert model["tools"][0]["function"]["name"] == "memory_search"
    assert reply["assistant"]["firstMessage"] == "Hi from v3"
    assert INLINE["model"]["messages"][0]["content"] == "old system prompt"  # not mutated


def test_assistant_id_gets_a_model_override_only_when_the_version_names_its_model() -> None:
    with_model = assistant_request_reply(
        assistant_id="asst-1",
        assistant=None,
        variables={},
        prompt=_prompt({"provider": "openai", "model": "gpt-4o-mini"}),
    )
    assert with_model["assistantId"] == "asst-1"
    assert with_model["assistantOverrides"]["model"]["messages"][0]["role"] == "system"
    assert with_model["assistantOverrides"]["firstMessage"] == "Hi from v3"

    without = assistant_request_reply(
        assistant_id="asst-1", assistant=None, variables={"x": "1"}, prompt=_prompt()
    )
    assert "model" not in without["assistantOverrides"]
    assert without["assistantOverrides"]["variableValues"] == {"x": "1"}


def test_no_served_prompt_leaves_the_reply_unchanged() -> None:
    reply = assistant_request_reply(assistant_id=None, assistant=INLINE, variables={"a": "b"})
    assert reply == {"assistant": INLINE, "assistantOverrides": {"variableValues": {"a": "b"}}}
