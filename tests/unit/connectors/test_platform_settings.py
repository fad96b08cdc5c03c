"""Per-platform agent settings and credential kinds are the connectors' to declare: the registry
checks an agent's ``platform_settings`` through each platform, and the VAPI reply reads its
assistant from its own document."""

from __future__ import annotations

from typing import Any

import pytest

from connectors.platform import ContextReply
from connectors.registry import CREDENTIAL_KINDS, PLATFORMS, validate_platform_settings
from core.errors import InvalidInputError

INLINE = {"name": "Inline", "model": {"provider": "openai", "model": "gpt-4o"}}


def test_credential_kinds_are_each_platforms_own() -> None:
    assert {n: p.credential_kinds for n, p in PLATFORMS.items()} == CREDENTIAL_KINDS
    assert CREDENTIAL_KINDS == {
        "vapi": ("bearer", "hmac"),
        "retell": ("api_key", "llm_token"),
        "bland": ("signing_secret", "tool_token"),
        "custom": ("signing_secret",),
    }


def test_valid_settings_pass_and_nulls_are_dropped() -> None:
    doc = {"vapi": {"assistant_id": "asst-1", "assistant": None}, "retell": {}, "bland": {}}
    assert validate_platform_settings(doc) == {
        "vapi": {"assistant_id": "asst-1"},
        "retell": {},
        "bland": {},
    }
    assert validate_platform_settings({}) == {}


@pytest.mark.parametrize(
    ("doc", "named"),
    [
        ({"zoom": {}}, "platform_settings.zoom: unknown platform 'zoom'"),
        ({"vapi": []}, "platform_settings.vapi: must be an object"),
        ({"vapi": {"assistant": ["x"]}}, "platform_settings.vapi.assistant: must be an object"),
        ({"vapi": {"assistant_id": ""}}, "platform_settings.vapi.assistant_id"),
        ({"vapi": {"model": {}}}, "platform_settings.vapi.model: unknown setting"),
        ({"bland": {"pathway": "p"}}, "platform_settings.bland.pathway: unknown setting"),
    ],
)
def test_bad_settings_are_refused_naming_the_key(doc: dict[str, Any], named: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        validate_platform_settings(doc)
    assert named in caught.value.detail


@pytest.mark.parametrize(
    ("settings", "key", "value"),
    [
        ({"assistant_id": "asst-9"}, "assistantId", "asst-9"),
        ({"assistant_id": "asst-9", "assistant": INLINE}, "assistant", INLINE),
        ({}, None, None),
    ],
)
def test_the_vapi_reply_answers_with_its_settings(
    settings: dict[str, Any], key: str | None, value: Any
) -> None:
    reply = PLATFORMS["vapi"].context_reply(
        ContextReply(agent_id="a", call_id="c", variables={}, settings=settings)
    )
    assert "assistantOverrides" in reply
    if key is None:
        assert "assistant" not in reply and "assistantId" not in reply
    else:
        assert reply[key] == value
