"""Bland connector: X-Webhook-Signature over the raw body (with the documented JSON.stringify
fallback), the tool token, parsing the example payloads into canonical events, merging the
delayed corrected-transcript POST, reply shapes and custom-tool definitions."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from connectors.bland import mapping
from connectors.bland.tools import tool_definitions
from connectors.bland.webhooks import (
    encode_payload,
    is_correction_only,
    merge_correction,
    parse_dynamic_data,
    parse_post_call,
    parse_tool_call,
    sign,
    verify_post_call,
    verify_post_call_request,
    verify_tool_request,
    verify_tool_token,
)
from core.calls.events import CallEnded
from core.errors import (
    ConflictError,
    InvalidInputError,
    MalformedWebhookError,
    WebhookSignatureError,
)
from core.tools.builtins import BUILTIN_TOOLS, ToolOutcome
from tests.helpers import fixture, raw

SECRET = "bland-signing-secret"
TOKEN = "tool-token-7f3c"
DANA = "+14155550123"
OUR_NUMBER = "+14155550999"
CALL_ID = "d2b1c0a9-8f7e-4d6c-5b4a-39281706f5e4"


def _post_call() -> dict[str, Any]:
    return copy.deepcopy(fixture("bland_post_call_webhook.json"))


def _correction(segments: Any = None) -> dict[str, Any]:
    return {
        "call_id": CALL_ID,
        "corrected_transcript": {
            "segments": segments
            if segments is not None
            else [
                {"speaker": "assistant", "text": "Hi, thanks for calling.", "confidence": 0.98},
                {"speaker": "user", "text": "Where is my latest order?", "confidence": 0.91},
            ]
        },
        "citations": [{"field": "order", "value": "1042", "speaker": "user"}],
    }


# -- post-call signature ----------------------------------------------------------------------


def test_signature_as_documented_verifies_over_the_raw_bytes() -> None:
    body = raw(_post_call())
    header = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()  # the reference recipe
    verify_post_call(body, header, SECRET)
    verify_post_call(body, header.upper(), SECRET)  # hex case is not significant


def test_non_ascii_body_verifies_over_its_exact_bytes() -> None:
    body = _post_call()
    body["concatenated_transcript"] = "assistant: ¿Cómo está, Dána? 你好 \n user: Très bien 👍"
    data = json.dumps(body, ensure_ascii=False, indent=2).encode("utf-8")
    verify_post_call(data, sign(data, SECRET), SECRET)


def test_body_signed_as_json_stringify_verifies_when_sent_with_other_spacing() -> None:
    body = _post_call()
    body["summary"] = "Dána asked about order 1042."
    stringified = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    pretty = json.dumps(body, indent=2, ensure_ascii=True).encode()
    verify_post_call(pretty, sign(stringified, SECRET), SECRET)


def test_tampered_body_is_rejected_with_how_to_fix() -> None:
    data = raw(_post_call())
    header = sign(data, SECRET)
    tampered = data.replace(b"+14155550123", b"+14155550188")
    with pytest.raises(WebhookSignatureError) as err:
        verify_post_call(tampered, header, SECRET)
    assert "does not match" in err.value.detail
    assert "credentials/bland" in err.value.detail


def test_signature_over_a_different_serialization_of_non_ascii_text_is_rejected() -> None:
    body = {"call_id": "c1", "summary": "Dána"}
    sent = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    other = json.dumps(body).encode()  # Python's default: ASCII escapes and ", " spacing
    with pytest.raises(WebhookSignatureError):
        verify_post_call(sent, sign(other, SECRET), SECRET)


def test_wrong_secret_and_missing_header_are_rejected() -> None:
    data = raw(_post_call())
    with pytest.raises(WebhookSignatureError):
        verify_post_call(data, sign(data, "another-secret"), SECRET)
    with pytest.raises(WebhookSignatureError) as err:
        verify_post_call(data, None, SECRET)
    assert "X-Webhook-Signature header is missing" in err.value.detail


def test_any_configured_secret_verifies_and_none_configured_names_the_fix() -> None:
    data = raw(_post_call())
    verify_post_call_request(data, sign(data, SECRET), ["old-secret", SECRET], agent_id="a1")
    with pytest.raises(WebhookSignatureError) as err:
        verify_post_call_request(data, sign(data, SECRET), ["old-secret"], agent_id="a1")
    assert "PUT /v1/agents/a1/credentials/bland" in err.value.detail
    with pytest.raises(WebhookSignatureError) as err:
        verify_post_call_request(data, sign(data, SECRET), [], agent_id="a1")
    assert "no Bland signing secret" in err.value.detail
    assert "PUT /v1/agents/a1/credentials/bland" in err.value.detail


# -- tool token -------------------------------------------------------------------------------


def test_bearer_tool_token_is_accepted() -> None:
    verify_tool_token(f"Bearer {TOKEN}", TOKEN)
    verify_tool_token(f"bearer  {TOKEN} ", TOKEN)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, "Authorization header is missing"),
        ("", "Authorization header is missing"),
        (TOKEN, "must be 'Bearer <tool token>'"),
        (f"Basic {TOKEN}", "must be 'Bearer <tool token>'"),
        ("Bearer not-the-token", "does not match"),
    ],
)
def test_tool_token_missing_malformed_or_wrong_is_rejected(
    header: str | None, expected: str
) -> None:
    with pytest.raises(WebhookSignatureError) as err:
        verify_tool_token(header, TOKEN)
    assert expected in err.value.detail


def test_no_tool_token_configured_names_the_credential_route() -> None:
    with pytest.raises(WebhookSignatureError) as err:
        verify_tool_request(f"Bearer {TOKEN}", [], agent_id="agent-9")
    assert "PUT /v1/agents/agent-9/credentials/bland" in err.value.detail
    assert "tool_token" in err.value.detail


# -- post-call parsing ------------------------------------------------------------------------


def test_post_call_fixture_parses_to_call_ended() -> None:
    ended = parse_post_call(_post_call())
    assert isinstance(ended, CallEnded)
    assert ended.call.platform == "bland"
    assert ended.call.call_id == CALL_ID
    assert ended.call.caller_number == DANA
    assert ended.call.direction == "inbound"
    assert ended.started_at == datetime(2026, 3, 2, 17, 4, 12, tzinfo=UTC)
    assert ended.ended_at == datetime(2026, 3, 2, 17, 34, 12, tzinfo=UTC)
    assert [(t.role, t.text) for t in ended.turns] == [
        ("agent", "Hi, thanks for calling."),
        ("caller", "Where is my last order?"),
    ]
    assert ended.turns[0].seconds_from_start == 2.0  # created_at relative to started_at
    assert ended.platform_summary is not None and "order 1042" in ended.platform_summary
    assert ended.platform_ended_reason == "user-ended-call"
    assert ended.ended_reason == "caller_hangup"
    assert ended.transferred is False


def test_outbound_call_caller_is_the_to_number() -> None:
    body = _post_call()
    body.update({"inbound": False, "from": OUR_NUMBER, "to": DANA})
    ended = parse_post_call(body)
    assert ended.call.caller_number == DANA
    assert ended.call.direction == "outbound"


def test_variables_phone_number_is_the_caller_when_numbers_are_missing() -> None:
    body = _post_call()
    del body["from"], body["to"], body["inbound"]
    ended = parse_post_call(body)
    assert ended.call.caller_number == DANA
    assert ended.call.direction is None


def test_call_without_any_number_has_no_caller() -> None:
    body = _post_call()
    for key in ("from", "to", "inbound", "variables"):
        del body[key]
    body["transcripts"] = []
    assert parse_post_call(body).call.caller_number is None


def test_concatenated_transcript_is_used_without_transcripts_and_other_speakers_skipped() -> None:
    body = _post_call()
    del body["transcripts"]
    assert [(t.role, t.text) for t in parse_post_call(body).turns] == [
        ("agent", "Hi, thanks for calling."),
        ("caller", "Where is my last order?"),
        ("agent", "It was delivered on February 27."),
    ]
    body = _post_call()
    body["transcripts"].insert(
        1, {"id": 1, "text": "Calling lookup_order", "user": "agent-action", "c_id": CALL_ID}
    )
    body["transcripts"].append({"id": 2, "text": "Beep.", "user": "robot", "c_id": CALL_ID})
    assert [t.role for t in parse_post_call(body).turns] == ["agent", "caller"]


def test_ended_reason_from_error_voicemail_and_status_and_transfer_flag() -> None:
    body = _post_call()
    body.update({"error_message": "Carrier rejected the call", "transferred_to": "+14155550777"})
    ended = parse_post_call(body)
    assert ended.platform_ended_reason == "error: Carrier rejected the call"
    assert ended.ended_reason == "error"
    assert ended.transferred is True
    body = _post_call()
    body["answered_by"] = "voicemail"
    assert parse_post_call(body).ended_reason == "voicemail"
    body = _post_call()
    body["call_ended_by"] = None
    assert parse_post_call(body).platform_ended_reason == "completed"
    assert parse_post_call(body).ended_reason == "completed"


@pytest.mark.parametrize("value", [None, "", "{{call_id}}"])
def test_post_call_without_call_id_names_the_field(value: Any) -> None:
    body = _post_call()
    body["call_id"] = value
    with pytest.raises(MalformedWebhookError) as err:
        parse_post_call(body)
    assert "'call_id'" in err.value.detail


def test_unknown_extra_fields_are_tolerated() -> None:
    body = _post_call()
    body["brand_new_field"] = {"nested": [1, 2, 3]}
    assert parse_post_call(body).call.call_id == CALL_ID


# -- the delayed corrected-transcript POST ----------------------------------------------------


def test_full_call_object_with_corrected_transcript_uses_the_corrected_turns() -> None:
    body = {**_post_call(), **_correction()}
    assert not is_correction_only(body)
    ended = parse_post_call(body)
    assert ended.call.caller_number == DANA
    assert [t.text for t in ended.turns] == ["Hi, thanks for calling.", "Where is my latest order?"]


def test_corrected_transcript_as_a_string_or_a_list_is_read() -> None:
    body = {**_post_call(), "corrected_transcript": "assistant: Hello.\nuser: Order 1042?"}
    assert [(t.role, t.text) for t in parse_post_call(body).turns] == [
        ("agent", "Hello."),
        ("caller", "Order 1042?"),
    ]
    body["corrected_transcript"] = [{"speaker": "user", "text": "Hi", "start": 1.5}]
    turns = parse_post_call(body).turns
    assert [(t.role, t.text, t.seconds_from_start) for t in turns] == [("caller", "Hi", 1.5)]


def test_unreadable_corrected_transcript_keeps_the_original_turns() -> None:
    body = {**_post_call(), **_correction(segments=[{"speaker": "A", "text": "Hi"}])}
    assert [t.text for t in parse_post_call(body).turns] == [
        "Hi, thanks for calling.",
        "Where is my last order?",
    ]


def test_bare_correction_cannot_be_parsed_alone_and_says_to_merge() -> None:
    correction = _correction()
    assert is_correction_only(correction)
    with pytest.raises(MalformedWebhookError) as err:
        parse_post_call(correction)
    assert "merge" in err.value.detail


def test_bare_correction_merges_into_the_call_object_received_first() -> None:
    merged = merge_correction([_post_call()], _correction())
    ended = parse_post_call(merged)
    assert ended.call.call_id == CALL_ID
    assert ended.call.caller_number == DANA
    assert ended.started_at == datetime(2026, 3, 2, 17, 4, 12, tzinfo=UTC)
    assert ended.turns[1].text == "Where is my latest order?"
    assert merged["citations"] == _correction()["citations"]
    assert merged["summary"] == _post_call()["summary"]


def test_redelivered_correction_merges_to_identical_bytes() -> None:
    first = merge_correction([_post_call()], _correction())
    # The inbox now also holds the merged document; the base stays the original call object.
    again = merge_correction([_post_call(), first], _correction())
    assert encode_payload(again) == encode_payload(first)


def test_correction_before_the_call_object_is_a_conflict() -> None:
    other_call = {**_post_call(), "call_id": "another-call"}
    with pytest.raises(ConflictError) as err:
        merge_correction([other_call], _correction())
    assert CALL_ID in err.value.detail
    with pytest.raises(ConflictError):
        merge_correction([], _correction())


# -- dynamic data -----------------------------------------------------------------------------


def test_dynamic_data_fixture_parses_to_context_request() -> None:
    request = parse_dynamic_data(fixture("bland_dynamic_data_request_received.json"))
    assert request.call.platform == "bland"
    assert request.call.call_id == CALL_ID
    assert request.call.caller_number == DANA


@pytest.mark.parametrize("key", ["phone_number", "from"])
def test_dynamic_data_accepts_phone_number_or_from(key: str) -> None:
    request = parse_dynamic_data({key: DANA, "call_id": "c1"})
    assert request.call.caller_number == DANA


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"call_id": "c1", "to": OUR_NUMBER}, "'caller'"),
        ({"caller": "{{phone_number}}", "call_id": "c1"}, "'caller'"),
        ({"caller": DANA, "to": OUR_NUMBER}, "'call_id'"),
    ],
)
def test_dynamic_data_missing_field_is_named(body: dict[str, Any], field: str) -> None:
    with pytest.raises(MalformedWebhookError) as err:
        parse_dynamic_data(body)
    assert field in err.value.detail
    assert "{{" in err.value.detail  # says how to template it


# -- tools ------------------------------------------------------------------------------------


def test_tool_request_fixture_parses_to_a_one_call_batch() -> None:
    batch = parse_tool_call(fixture("bland_custom_tool_request_received.json"), "memory_search")
    assert batch.call is not None and batch.call.caller_number == DANA
    [call] = batch.calls
    assert call.name == "memory_search"
    assert call.arguments == {"query": "last order status"}
    assert call.tool_call_id.startswith(f"{CALL_ID}:memory_search:")


def test_tool_call_id_is_stable_per_arguments() -> None:
    body = fixture("bland_custom_tool_request_received.json")
    first = parse_tool_call(body, "memory_search").calls[0].tool_call_id
    reordered = dict(reversed(list(body.items())))
    assert parse_tool_call(reordered, "memory_search").calls[0].tool_call_id == first
    changed = {**body, "query": "something else"}
    assert parse_tool_call(changed, "memory_search").calls[0].tool_call_id != first
    assert parse_tool_call(body, "other_tool").calls[0].tool_call_id != first


def test_unfilled_tool_arguments_are_dropped_so_defaults_apply() -> None:
    body = {"call_id": "c1", "caller": DANA, "query": "order", "limit": "{{input.limit}}", "x": ""}
    assert parse_tool_call(body, "memory_search").calls[0].arguments == {"query": "order"}


def test_tool_request_without_caller_has_no_caller_and_without_call_id_is_named() -> None:
    batch = parse_tool_call({"call_id": "c1", "query": "q"}, "memory_search")
    assert batch.call is not None and batch.call.caller_number is None
    with pytest.raises(MalformedWebhookError) as err:
        parse_tool_call({"caller": DANA, "query": "q"}, "memory_search")
    assert "'call_id'" in err.value.detail


# -- replies ----------------------------------------------------------------------------------


def test_dynamic_data_reply_is_flat_strings_for_jsonpath() -> None:
    reply = mapping.dynamic_data_reply(
        {"backline_memory_summary": "Prefers email.", "backline_call_count": "2"}
    )
    assert reply == {"backline_memory_summary": "Prefers email.", "backline_call_count": "2"}
    assert json.loads(json.dumps(reply)) == reply


def test_tool_reply_answer_or_error() -> None:
    answer = mapping.tool_reply(ToolOutcome(result="Order 1042 was delivered on Feb 27."))
    assert set(answer) == set(fixture("bland_custom_tool_response.json")) == {"answer"}
    assert answer["answer"] == "Order 1042 was delivered on Feb 27."
    assert mapping.tool_reply(ToolOutcome(error="no caller")) == {"error": "no caller"}


# -- tool definitions -------------------------------------------------------------------------


def test_tool_definitions_have_the_documented_shape() -> None:
    documented = fixture("bland_custom_tool_definition.json")
    tool = tool_definitions(BUILTIN_TOOLS, "https://backline.example.com/", "agent-1")[0]
    assert set(documented) <= set(tool)
    assert tool["name"] == "memory_search"
    assert tool["url"] == (
        "https://backline.example.com/v1/webhooks/bland/agent-1/tools/memory_search"
    )
    assert tool["method"] == "POST"
    assert tool["headers"]["Authorization"] == "Bearer <BLAND_TOOL_TOKEN>"
    assert tool["body"] == {
        "call_id": "{{call_id}}",
        "caller": "{{phone_number}}",
        "query": "{{input.query}}",
        "limit": "{{input.limit}}",
    }
    schema = tool["input_schema"]
    assert schema["type"] == "object"
    assert schema["properties"] == BUILTIN_TOOLS["memory_search"]["parameters"]["properties"]
    assert schema["required"] == ["query"]
    assert set(schema["example"]) == {"speech", "query", "limit"}
    assert schema["example"]["limit"] == 3  # the schema's default
    assert tool["response"]["memory_search_answer"] == "$.answer"
    assert isinstance(tool["speech"], str) and tool["speech"]


def test_tool_definition_body_round_trips_through_the_parser() -> None:
    tool = tool_definitions(BUILTIN_TOOLS, "https://b.example", "a1", "tok")[0]
    assert tool["headers"]["Authorization"] == "Bearer tok"
    # What Bland would send once it fills the templates.
    filled = {
        k: v.replace("{{call_id}}", "c9")
        .replace("{{phone_number}}", DANA)
        .replace("{{input.query}}", "water heater")
        for k, v in tool["body"].items()
    }
    [call] = parse_tool_call(filled, tool["name"]).calls
    assert call.arguments == {"query": "water heater"}  # limit left unfilled: default applies
    assert call.call is not None and call.call.caller_number == DANA


@pytest.mark.parametrize(
    "tools",
    [
        {"transfer": {"description": "x", "parameters": {"type": "object", "properties": {}}}},
        {"t": {"description": "x", "parameters": {"type": "object", "properties": {"caller": {}}}}},
        {"t": {"description": "x", "parameters": {"type": "string"}}},
    ],
)
def test_tool_definitions_refuse_reserved_names_and_clashing_or_bad_parameters(
    tools: dict[str, dict[str, Any]],
) -> None:
    with pytest.raises(InvalidInputError):
        tool_definitions(tools, "https://b.example", "a1")
