"""A prompt version's variable defaults reach each platform with its own variables (VAPI
``assistantOverrides.variableValues``, Retell inbound ``dynamic_variables``, the Bland
dynamic-data reply), so the platform fills its ``{{name}}``; a value the call already carries
is never replaced, and Backline's ``backline_`` variables always win."""

from __future__ import annotations

from types import MappingProxyType

from connectors.bland import mapping as bland_mapping
from connectors.bland.webhooks import parse_dynamic_data
from connectors.retell import mapping as retell_mapping
from connectors.vapi import mapping as vapi_mapping
from connectors.vapi.webhooks import parse_event
from core.calls.events import ContextRequest
from core.prompts.serving import ServedPrompt
from tests.bland_helpers import dynamic_data
from tests.helpers import assistant_request

DANA = "+14155550123"


def _prompt(defaults: dict[str, str]) -> ServedPrompt:
    return ServedPrompt(
        version=2,
        ref="v2",
        source="label:production",
        experiment_id=None,
        system_prompt="You serve {{account_tier}} customers.",
        first_message=None,
        model=MappingProxyType({}),
        tools=(),
        defaults=defaults,
    )


def test_vapi_sends_the_default_in_variable_values() -> None:
    reply = vapi_mapping.assistant_request_reply(
        assistant_id="asst-1",
        assistant=None,
        variables=_prompt({"account_tier": "standard"}).variables(),
        prompt=_prompt({"account_tier": "standard"}),
    )
    values = reply["assistantOverrides"]["variableValues"]
    assert values["account_tier"] == "standard"
    assert values["backline_prompt_version"] == "v2"


def test_vapi_reads_the_values_a_call_was_created_with() -> None:
    body = assistant_request(DANA)
    body["message"]["call"]["assistantOverrides"] = {"variableValues": {"account_tier": "gold"}}
    event = parse_event(body)
    assert isinstance(event, ContextRequest)
    assert event.variables == {"account_tier": "gold"}
    assert parse_event(assistant_request(DANA)).variables == {}  # type: ignore[union-attr]


def test_retell_sends_the_default_as_a_dynamic_variable() -> None:
    reply = retell_mapping.inbound_reply(_prompt({"account_tier": "standard"}).variables())
    dynamic = reply["call_inbound"]["dynamic_variables"]
    assert dynamic["account_tier"] == "standard"
    assert dynamic["backline_system_prompt"] == "You serve {{account_tier}} customers."


def test_bland_sends_the_default_in_the_dynamic_data_reply() -> None:
    reply = bland_mapping.dynamic_data_reply(_prompt({"account_tier": "standard"}).variables())
    assert reply["account_tier"] == "standard"


def test_bland_body_values_are_the_calls_own_and_unfilled_templates_are_not() -> None:
    filled = parse_dynamic_data({**dynamic_data(DANA), "account_tier": "gold"})
    assert filled.variables["account_tier"] == "gold"
    unfilled = parse_dynamic_data({**dynamic_data(DANA), "account_tier": "{{account_tier}}"})
    assert "account_tier" not in unfilled.variables


def test_backline_namespace_wins_over_a_default_of_the_same_name() -> None:
    values = _prompt({"backline_prompt_version": "spoofed", "plan": "basic"}).variables()
    assert values["backline_prompt_version"] == "v2" and values["plan"] == "basic"
