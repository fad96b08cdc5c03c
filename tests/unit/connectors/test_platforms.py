"""The platform registry: one VoicePlatform per platform, found by name, each parsing its own
end-of-call payloads and naming its tool deadline and caller-number fields."""

from __future__ import annotations

import json
import re

import pytest

from connectors.registry import PLATFORMS, get_platform, parse_call_ended
from core.errors import InvalidInputError
from fakes import bland, custom, retell, vapi

TURNS = [("agent", "Hello, how can I help?"), ("caller", "I need to book a cleaning.")]
ENDED = {
    "vapi": vapi.end_of_call("c-vapi", "+14155550100", TURNS),
    "retell": retell.call_ended("c-retell", "+14155550100", TURNS),
    "bland": bland.post_call("c-bland", "+14155550100", TURNS),
    "custom": custom.call_ended("c-custom", "+14155550100", TURNS),
}


def test_each_platform_is_registered_under_its_own_name() -> None:
    assert sorted(PLATFORMS) == ["bland", "custom", "retell", "vapi"]
    for name, platform in PLATFORMS.items():
        assert platform.name == name
        assert get_platform(name) is platform


def test_an_unknown_platform_is_refused_by_name() -> None:
    with pytest.raises(InvalidInputError, match="no end-of-call parser for platform 'zoom'"):
        get_platform("zoom")
    with pytest.raises(InvalidInputError, match="no end-of-call parser for platform 'zoom'"):
        parse_call_ended("zoom", b"{}")


@pytest.mark.parametrize("name", sorted(ENDED))
def test_end_of_call_payloads_parse_through_the_registry(name: str) -> None:
    ended = parse_call_ended(name, json.dumps(ENDED[name]).encode())
    assert ended.call.platform == name
    assert ended.call.call_id == f"c-{name}"
    assert [t.text for t in ended.turns] == [text for _, text in TURNS]


def test_tool_deadlines_are_the_exported_timeouts() -> None:
    assert {n: p.tool_deadline_s for n, p in PLATFORMS.items()} == {
        "vapi": 15.0,
        "retell": 10.0,
        "bland": 10.0,
        "custom": 10.0,
    }


@pytest.mark.parametrize("name", sorted(ENDED))
def test_caller_number_fields_find_the_number_in_end_of_call_payloads(name: str) -> None:
    raw = json.dumps(ENDED[name]).encode()
    fields = "|".join(map(re.escape, PLATFORMS[name].caller_number_fields))
    found = re.findall(rf'"(?:{fields})"\s*:\s*"([^"]+)"'.encode(), raw)
    assert b"+14155550100" in found
