"""Every platform refuses, at parse time, a call id that could never key a call: longer than
the call-id columns or carrying control characters. The 422 names the wire field."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from connectors.bland.webhooks import parse_dynamic_data, parse_post_call
from connectors.custom.webhooks import parse_event as custom_parse_event
from connectors.retell.webhooks import parse_event as retell_parse_event
from connectors.retell.webhooks import parse_inbound
from connectors.vapi.webhooks import parse_event as vapi_parse_event
from core.calls.events import MAX_CALL_ID_LENGTH, CallRef
from core.errors import MalformedWebhookError
from fakes import custom
from tests.helpers import fixture


def _vapi(call_id: str) -> dict[str, Any]:
    body = copy.deepcopy(fixture("vapi_end_of_call_report.json"))
    body["message"]["call"]["id"] = call_id
    return body


def _retell(call_id: str) -> dict[str, Any]:
    body = copy.deepcopy(fixture("retell_call_ended.json"))
    body["call"]["call_id"] = call_id
    return body


def _bland(call_id: str) -> dict[str, Any]:
    body = copy.deepcopy(fixture("bland_post_call_webhook.json"))
    body["call_id"] = call_id
    return body


def _bland_context(call_id: str) -> dict[str, Any]:
    return {"call_id": call_id, "from": "+14155550123"}


def _custom(call_id: str) -> dict[str, Any]:
    return custom.call_ended(call_id, "+14155550123", [("caller", "Hello?")])


def _custom_context(call_id: str) -> dict[str, Any]:
    return custom.call_started("+14155550123", call_id)


def _retell_inbound(call_id: str) -> dict[str, Any]:
    body = copy.deepcopy(fixture("retell_call_inbound.json"))
    body["call_inbound"]["call_id"] = call_id
    return body


PLATFORMS: list[tuple[str, Callable[[str], dict[str, Any]], Callable[..., Any], str]] = [
    ("vapi", _vapi, vapi_parse_event, "message.call.id"),
    ("retell", _retell, retell_parse_event, "call.call_id"),
    ("bland", _bland, parse_post_call, "call_id"),
    ("bland-context", _bland_context, parse_dynamic_data, "call_id"),
    ("custom", _custom, custom_parse_event, "call.id"),
    ("custom-context", _custom_context, custom_parse_event, "call.id"),
    (
        "retell-inbound",
        _retell_inbound,
        lambda b: parse_inbound(b, id_key="k"),
        "call_inbound.call_id",
    ),
]
BAD_IDS = {
    "too long": "c" * (MAX_CALL_ID_LENGTH + 1),
    "a megabyte": "c" * 1_000_000,
    "newline": "call-1\nforged log line",
    "nul": "call-1\x00",
    "escape": "call-\x1b[31m",
}


@pytest.mark.parametrize(
    ("name", "build", "parse", "field"), PLATFORMS, ids=[p[0] for p in PLATFORMS]
)
@pytest.mark.parametrize("bad", list(BAD_IDS.values()), ids=list(BAD_IDS))
def test_unstorable_call_id_is_refused_naming_the_field(
    name: str,
    build: Callable[[str], dict[str, Any]],
    parse: Callable[..., Any],
    field: str,
    bad: str,
) -> None:
    with pytest.raises(MalformedWebhookError) as err:
        parse(build(bad))
    assert f"'{field}'" in err.value.detail
    assert err.value.status_code == 422


@pytest.mark.parametrize(
    ("name", "build", "parse", "field"), PLATFORMS, ids=[p[0] for p in PLATFORMS]
)
def test_longest_printable_call_id_is_accepted(
    name: str, build: Callable[[str], dict[str, Any]], parse: Callable[..., Any], field: str
) -> None:
    longest = "é-" + "c" * (MAX_CALL_ID_LENGTH - 2)
    assert parse(build(longest)).call.call_id == longest


def test_canonical_call_ref_refuses_what_a_connector_let_through() -> None:
    with pytest.raises(MalformedWebhookError, match="at most 256 characters"):
        CallRef(platform="vapi", call_id="c" * 257)
