"""Retell connector: X-Retell-Signature checked against retell-sdk's own helper, parsing into
canonical events from payloads validated with the SDK's call models, reply shapes, and
custom-function definitions validated against the SDK's ``GeneralToolCustomTool``."""

from __future__ import annotations

import copy
import json
import re
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from retell.lib.webhook_auth import symmetric, verify
from retell.types import PhoneCallResponse, WebCallResponse
from retell.types.llm_response import GeneralToolCustomTool

from connectors.common import parse_json_body
from connectors.retell import mapping
from connectors.retell.tools import tool_definitions
from connectors.retell.webhooks import (
    SIGNATURE_WINDOW_MS,
    parse_call_ended,
    parse_event,
    parse_function_call,
    parse_inbound,
    sign,
    verify_request,
    verify_signature,
)
from core.calls.events import (
    CallAnalyzed,
    CallEnded,
    CallStarted,
    ContextRequest,
    Informational,
    ToolCallBatch,
    TranscriptUpdate,
)
from core.errors import InvalidInputError, MalformedWebhookError, WebhookSignatureError
from core.tools.builtins import BUILTIN_TOOLS, ToolOutcome
from tests.helpers import fixture, raw

KEY = "key_retell_webhook_badge"
ID_KEY = "test-secret-key"
DANA = "+14155550123"
OUR_NUMBER = "+14155550999"


def _event(name: str) -> dict[str, Any]:
    """A fixture whose call object is checked against the SDK's PhoneCallResponse first."""
    body = copy.deepcopy(fixture(name))
    PhoneCallResponse.model_validate(body["call"])
    return body


def _now_ms() -> int:
    return int(time.time() * 1000)


# -- signatures -----------------------------------------------------------------------------


def test_signature_made_by_retell_sdk_verifies_over_raw_bytes_with_non_ascii_text() -> None:
    body = _event("retell_call_ended.json")
    body["call"]["transcript"] = "Agent: ¿Cómo está, Dána? 你好\nUser: Très bien 👍"
    text = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
    header = symmetric["sign"](text, KEY)
    verify_signature(text.encode("utf-8"), header, KEY)


def test_our_signature_is_accepted_by_retell_sdk_verify() -> None:
    text = json.dumps({"event": "call_started", "note": "Dána"}, ensure_ascii=False)
    assert verify(text, KEY, sign(text.encode("utf-8"), KEY))  # type: ignore[no-untyped-call]


def test_re_serialized_json_does_not_verify_so_the_raw_body_is_required() -> None:
    text = json.dumps({"transcript": "Dána"}, separators=(",", ":"), ensure_ascii=False)
    header = symmetric["sign"](text, KEY)
    re_encoded = json.dumps(json.loads(text)).encode()  # ASCII-escaped, spaced: other bytes
    with pytest.raises(WebhookSignatureError, match="does not match"):
        verify_signature(re_encoded, header, KEY)


@pytest.mark.parametrize("offset_ms", [-(SIGNATURE_WINDOW_MS + 1_000), SIGNATURE_WINDOW_MS + 1_000])
def test_signature_older_or_newer_than_five_minutes_is_rejected(offset_ms: int) -> None:
    text = '{"event":"call_started"}'
    header = symmetric["sign"](text, KEY, timestamp=_now_ms() + offset_ms)
    with pytest.raises(WebhookSignatureError, match="clock"):
        verify_signature(text.encode(), header, KEY)


def test_signature_just_inside_the_window_is_accepted() -> None:
    text = '{"event":"call_started"}'
    now = _now_ms()
    header = symmetric["sign"](text, KEY, timestamp=now - SIGNATURE_WINDOW_MS + 1_000)
    verify_signature(text.encode(), header, KEY, now_ms=now)


def test_tampered_body_wrong_key_and_altered_digest_are_rejected() -> None:
    text = '{"event":"call_ended","call":{"call_id":"c1"}}'
    header = symmetric["sign"](text, KEY)
    with pytest.raises(WebhookSignatureError, match="does not match"):
        verify_signature(text.replace("c1", "c2").encode(), header, KEY)
    with pytest.raises(WebhookSignatureError, match="does not match"):
        verify_signature(text.encode(), header, "another-key")
    flipped = header[:-1] + ("0" if header[-1] != "0" else "1")
    with pytest.raises(WebhookSignatureError, match="does not match"):
        verify_signature(text.encode(), flipped, KEY)


@pytest.mark.parametrize(
    "header", [None, "", "v=123", "d=" + "a" * 64, "v=1,d=" + "A" * 64, "sha256=abc"]
)
def test_missing_or_malformed_signature_header_is_rejected(header: str | None) -> None:
    with pytest.raises(WebhookSignatureError, match="X-Retell-Signature"):
        verify_signature(b"{}", header, KEY)


def test_agent_without_retell_key_is_told_how_to_configure_one() -> None:
    with pytest.raises(WebhookSignatureError) as info:
        verify_request(b"{}", sign(b"{}", KEY), [], agent_id="agent-9")
    assert "PUT /v1/agents/agent-9/credentials/retell" in info.value.detail


def test_any_configured_key_verifies_so_keys_rotate_without_downtime() -> None:
    header = sign(b"{}", KEY)
    verify_request(b"{}", header, ["old-key", KEY], agent_id="agent-9")
    with pytest.raises(WebhookSignatureError, match="agent-9"):
        verify_request(b"{}", header, ["old-key"], agent_id="agent-9")


# -- event webhook --------------------------------------------------------------------------


def test_call_started_becomes_call_started_with_inbound_caller() -> None:
    event = parse_event(_event("retell_call_started.json"))
    assert isinstance(event, CallStarted)
    assert event.call.platform == "retell"
    assert event.call.call_id == "call_5e2d9b7a1c3f4e8d0a6b2c4d"
    assert event.call.caller_number == DANA
    assert event.call.direction == "inbound"
    assert event.started_at == datetime(2026, 3, 2, 17, 4, 12, 900000, tzinfo=UTC)


def test_call_ended_becomes_call_ended_with_turns_times_and_reason() -> None:
    event = parse_event(_event("retell_call_ended.json"))
    assert isinstance(event, CallEnded)
    assert event.call.caller_number == DANA
    assert [(t.role, t.text) for t in event.turns] == [
        ("agent", "Hi Dana, how can I help?"),
        ("caller", "Where is my last order?"),
    ]
    assert [t.seconds_from_start for t in event.turns] == [0.8, 28.1]
    assert event.started_at == datetime(2026, 3, 2, 17, 4, 12, 900000, tzinfo=UTC)
    assert event.ended_at == datetime(2026, 3, 2, 17, 7, 10, tzinfo=UTC)
    assert event.platform_ended_reason == "user_hangup"
    assert event.ended_reason == "caller_hangup"
    assert event.transferred is False
    assert event.platform_summary is None  # call_ended carries no analysis yet


def test_call_ended_without_transcript_object_reads_the_transcript_string() -> None:
    body = _event("retell_call_ended.json")
    del body["call"]["transcript_object"]
    body["call"]["transcript"] = "Agent: Hello there.\nUser: I need help: my order.\nnoise"
    event = parse_event(body)
    assert isinstance(event, CallEnded)
    assert [(t.role, t.text) for t in event.turns] == [
        ("agent", "Hello there."),
        ("caller", "I need help: my order."),
    ]


def test_transfer_disconnection_marks_the_call_transferred() -> None:
    body = _event("retell_call_ended.json")
    body["call"]["disconnection_reason"] = "call_transfer"
    PhoneCallResponse.model_validate(body["call"])
    event = parse_event(body)
    assert isinstance(event, CallEnded)
    assert event.transferred is True
    assert event.platform_ended_reason == "call_transfer"
    assert event.ended_reason == "transferred"


def test_outbound_call_identifies_the_caller_by_to_number() -> None:
    call = PhoneCallResponse(
        call_type="phone_call",
        call_id="call_outbound_1",
        agent_id="agent_7f3c2a9e1b5d",
        agent_version=4,
        call_status="ended",
        direction="outbound",
        from_number=OUR_NUMBER,
        to_number=DANA,
        end_timestamp=1772471230000,
        latency={"e2e": {"p50": 812.5}},
    )
    body = {"event": "call_ended", "call": call.model_dump(mode="json", exclude_none=True)}
    event = parse_event(body)
    assert isinstance(event, CallEnded)
    assert event.call.caller_number == DANA
    assert event.call.direction == "outbound"
    assert event.turn_latency_ms == 812.5


def test_web_call_has_no_caller_number() -> None:
    call = WebCallResponse(
        call_type="web_call",
        call_id="call_web_1",
        agent_id="agent_7f3c2a9e1b5d",
        agent_version=4,
        call_status="ended",
        access_token="tok",
    )
    event = parse_event(
        {"event": "call_ended", "call": call.model_dump(mode="json", exclude_none=True)}
    )
    assert isinstance(event, CallEnded)
    assert event.call.direction == "web"
    assert event.call.caller_number is None


def test_call_analyzed_becomes_call_analyzed_with_summary_sentiment_and_custom_data() -> None:
    event = parse_event(_event("retell_call_analyzed.json"))
    assert isinstance(event, CallAnalyzed)
    assert event.call.call_id == "call_5e2d9b7a1c3f4e8d0a6b2c4d"
    assert event.platform_summary == "Caller asked about order 1042; told it was delivered."
    assert event.sentiment == "Positive"
    assert event.platform_success is True
    assert event.data == {"intent": "order_status"}


def test_transcript_updated_carries_the_newest_utterance() -> None:
    body = _event("retell_call_ended.json")
    body["event"] = "transcript_updated"
    body["call"]["call_status"] = "ongoing"
    event = parse_event(body)
    assert isinstance(event, TranscriptUpdate)
    assert (event.role, event.text) == ("caller", "Where is my last order?")


def test_transcript_updated_without_turns_is_informational() -> None:
    body = _event("retell_call_started.json")
    body["event"] = "transcript_updated"
    event = parse_event(body)
    assert isinstance(event, Informational)
    assert event.call is not None and event.call.call_id == "call_5e2d9b7a1c3f4e8d0a6b2c4d"


@pytest.mark.parametrize("name", ["transfer_started", "transfer_bridged", "some_future_event"])
def test_transfer_and_unknown_events_are_informational(name: str) -> None:
    body = _event("retell_call_ended.json")
    body["event"] = name
    body["call"]["transfer_destination"] = "+14155550777"
    event = parse_event(body)
    assert isinstance(event, Informational)
    assert event.platform_type == name
    assert event.data == {"call_status": "ended", "disconnection_reason": "user_hangup"}


def test_unknown_extra_fields_are_tolerated() -> None:
    body = _event("retell_call_ended.json")
    body["event_timestamp"] = 1772471230001
    body["call"]["brand_new_field"] = {"nested": [1, 2]}
    body["call"]["transcript_object"][0]["brand_new_field"] = True
    event = parse_event(body)
    assert isinstance(event, CallEnded)
    assert len(event.turns) == 2


@pytest.mark.parametrize(
    ("fixture_name", "mutate", "field"),
    [
        ("retell_call_ended.json", lambda b: b.pop("event"), "'event'"),
        ("retell_call_ended.json", lambda b: b.pop("call"), "'call'"),
        ("retell_call_ended.json", lambda b: b["call"].pop("call_id"), "'call.call_id'"),
        ("retell_call_ended.json", lambda b: b["call"].pop("from_number"), "'call.from_number'"),
        ("retell_call_ended.json", lambda b: b["call"].pop("direction"), "'call.direction'"),
        ("retell_call_started.json", lambda b: b["call"].pop("call_id"), "'call.call_id'"),
        (
            "retell_call_analyzed.json",
            lambda b: b["call"].pop("call_analysis"),
            "'call.call_analysis'",
        ),
    ],
)
def test_missing_required_field_is_named(fixture_name: str, mutate: Any, field: str) -> None:
    body = copy.deepcopy(fixture(fixture_name))
    mutate(body)
    with pytest.raises(MalformedWebhookError, match=re.escape(field)):
        parse_event(body)


def test_call_inbound_sent_to_the_events_url_is_rejected_with_the_right_url() -> None:
    with pytest.raises(MalformedWebhookError, match="/inbound"):
        parse_event(fixture("retell_call_inbound.json"))


def test_inbox_bytes_parse_through_parse_call_ended() -> None:
    event = parse_call_ended(parse_json_body(raw(fixture("retell_call_ended.json"))))
    assert event.call.call_id == "call_5e2d9b7a1c3f4e8d0a6b2c4d"
    assert len(event.turns) == 2


# -- inbound webhook ------------------------------------------------------------------------


def test_call_inbound_becomes_context_request_for_from_number() -> None:
    event = parse_inbound(fixture("retell_call_inbound.json"), id_key=ID_KEY)
    assert isinstance(event, ContextRequest)
    assert event.call.caller_number == DANA
    assert event.call.direction == "inbound"
    assert event.call.platform == "retell"


def test_synthetic_inbound_id_is_stable_keyed_and_never_contains_the_number() -> None:
    body = fixture("retell_call_inbound.json")
    now = 1772471052900
    first = parse_inbound(body, id_key=ID_KEY, now_ms=now).call.call_id
    retry = parse_inbound(body, id_key=ID_KEY, now_ms=now + 20_000).call.call_id
    later_call = parse_inbound(body, id_key=ID_KEY, now_ms=now + 86_400_000).call.call_id
    other_key = parse_inbound(body, id_key="other", now_ms=now).call.call_id
    assert first.startswith("inbound-")
    assert "4155550123" not in first and "4155550999" not in first
    assert first == retry
    assert first != later_call
    assert first != other_key


def test_inbound_event_timestamp_distinguishes_calls_and_call_id_is_used_when_sent() -> None:
    body = copy.deepcopy(fixture("retell_call_inbound.json"))
    body["event_timestamp"] = 1772471052900
    a = parse_inbound(body, id_key=ID_KEY, now_ms=0).call.call_id
    body["event_timestamp"] = 1772471052901
    b = parse_inbound(body, id_key=ID_KEY, now_ms=0).call.call_id
    assert a != b
    body["call_inbound"]["call_id"] = "call_from_retell_123"
    assert parse_inbound(body, id_key=ID_KEY).call.call_id == "call_from_retell_123"


def test_inbound_without_from_number_names_the_field() -> None:
    body = copy.deepcopy(fixture("retell_call_inbound.json"))
    del body["call_inbound"]["from_number"]
    with pytest.raises(MalformedWebhookError, match=r"'call_inbound\.from_number'"):
        parse_inbound(body, id_key=ID_KEY)


def test_call_event_sent_to_the_inbound_url_is_rejected_with_the_right_url() -> None:
    with pytest.raises(MalformedWebhookError, match="/events"):
        parse_inbound(fixture("retell_call_ended.json"), id_key=ID_KEY)


# -- custom functions -----------------------------------------------------------------------


def test_nested_custom_function_carries_call_caller_and_args() -> None:
    body = fixture("retell_custom_function.json")
    PhoneCallResponse.model_validate(body["call"])
    batch = parse_function_call(body, "memory_search")
    assert isinstance(batch, ToolCallBatch)
    assert batch.call is not None and batch.call.caller_number == DANA
    [tc] = batch.calls
    assert tc.name == "memory_search"  # the URL names the tool, not the body's 'name'
    assert tc.arguments == {"query": "last order status"}
    assert tc.call == batch.call


def test_args_at_root_custom_function_has_args_and_no_call() -> None:
    batch = parse_function_call(fixture("retell_custom_function__args_at_root.json"), "lookup")
    assert batch.call is None
    assert batch.calls[0].call is None
    assert batch.calls[0].arguments == {"query": "last order status"}


def test_nested_custom_function_without_call_id_names_the_field() -> None:
    body = copy.deepcopy(fixture("retell_custom_function.json"))
    del body["call"]["call_id"]
    with pytest.raises(MalformedWebhookError, match=r"'call\.call_id'"):
        parse_function_call(body, "memory_search")


def test_nested_custom_function_with_non_object_args_is_rejected() -> None:
    body = copy.deepcopy(fixture("retell_custom_function.json"))
    body["args"] = "query=last order"
    with pytest.raises(MalformedWebhookError, match="'args'"):
        parse_function_call(body, "memory_search")


# -- replies --------------------------------------------------------------------------------


def test_inbound_reply_has_retell_shape_with_string_variables() -> None:
    reply = mapping.inbound_reply(
        {"caller_name": "Dana", "memory_summary": "Prefers email; order 1042 delivered Feb 27."},
        metadata={"tenant_id": "acme", "caller_key": "e164:+14155550123"},
    )
    assert reply == fixture("retell_call_inbound_response.json")
    assert all(isinstance(v, str) for v in reply["call_inbound"]["dynamic_variables"].values())


def test_inbound_reply_with_override_names_the_agent_and_stringifies_values() -> None:
    reply = mapping.inbound_reply({"tier": "vip", "count": 2}, override_agent_id="agent_vip_22aa")  # type: ignore[dict-item]
    assert reply["call_inbound"]["override_agent_id"] == "agent_vip_22aa"
    assert reply["call_inbound"]["dynamic_variables"] == {"tier": "vip", "count": "2"}
    assert "override_agent_id" not in mapping.inbound_reply({})["call_inbound"]


def test_function_reply_answers_result_or_error() -> None:
    assert mapping.function_reply(ToolOutcome(result="Order 1042 was delivered.")) == {
        "result": "Order 1042 was delivered."
    }
    assert mapping.function_reply(ToolOutcome(error="no caller")) == {"error": "no caller"}


@pytest.mark.parametrize("unit", ["a", '"', "é", "\x01"])
def test_function_reply_body_is_capped_at_15000_characters(unit: str) -> None:
    reply = mapping.function_reply(ToolOutcome(result=unit * 40_000))
    body = json.dumps(reply, ensure_ascii=False, separators=(",", ":"))
    assert len(body) <= mapping.FUNCTION_RESULT_LIMIT
    assert len(body) > mapping.FUNCTION_RESULT_LIMIT - 100
    assert reply["result"].endswith("[truncated]")


# -- tool export ----------------------------------------------------------------------------


def test_tool_definitions_validate_against_retell_custom_tool_model() -> None:
    definitions = tool_definitions(BUILTIN_TOOLS, "https://backline.example.com/", "agent-1")
    assert [d["name"] for d in definitions] == list(BUILTIN_TOOLS)
    known = {f.alias or name for name, f in GeneralToolCustomTool.model_fields.items()}
    for definition in definitions:
        # The SDK model allows extra fields, so also check every key is one Retell defines.
        assert set(definition) <= known, set(definition) - known
        tool = GeneralToolCustomTool.model_validate(definition)
        assert tool.type == "custom"
        assert tool.args_at_root is False
        assert tool.parameters is not None and tool.parameters.required == ["query"]
    assert definitions[0]["url"] == (
        "https://backline.example.com/v1/webhooks/retell/agent-1/functions/memory_search"
    )
    assert definitions[0]["description"] == BUILTIN_TOOLS["memory_search"]["description"]


def test_tool_definitions_do_not_share_the_builtin_schema_objects() -> None:
    definition = tool_definitions(BUILTIN_TOOLS, "https://b.example", "a")[0]
    definition["parameters"]["properties"]["query"]["description"] = "changed"
    assert BUILTIN_TOOLS["memory_search"]["parameters"]["properties"]["query"]["description"] != (
        "changed"
    )


def test_tool_without_parameters_gets_an_empty_object_schema() -> None:
    [definition] = tool_definitions({"ping": {"description": "Ping."}}, "https://b.example", "a")
    GeneralToolCustomTool.model_validate(definition)
    assert definition["parameters"] == {"type": "object", "properties": {}}


@pytest.mark.parametrize("name", ["memory search", "x" * 65, "tool/evil", ""])
def test_tool_name_retell_would_refuse_is_rejected(name: str) -> None:
    with pytest.raises(InvalidInputError, match="not valid on Retell"):
        tool_definitions({name: {"description": "d"}}, "https://b.example", "a")
