"""VAPI connector: credential checks, parsing into canonical events, reply shapes, checked
against the official vapi-server-sdk models."""

from __future__ import annotations

import json
import time

import pytest
from vapi.core.unchecked_base_model import construct_type
from vapi.types import (
    ServerMessageAssistantRequest,
    ServerMessageEndOfCallReport,
    ServerMessageResponseToolCalls,
    ServerMessageToolCalls,
)

from connectors.vapi import mapping
from connectors.vapi.webhooks import parse_event, sign_hmac, verify_request
from core.calls.events import CallEnded, CallStarted, ContextRequest, Informational, ToolCallBatch
from core.calls.ports import PlatformCredential
from core.errors import MalformedWebhookError, WebhookSignatureError
from tests.helpers import fixture, raw

BEARER = PlatformCredential(kind="bearer", secret="s3cret-token")
HMAC = PlatformCredential(kind="hmac", secret="hmac-secret")


def test_bearer_token_in_authorization_header_is_accepted() -> None:
    verify_request({"Authorization": "Bearer s3cret-token"}, b"{}", [BEARER])


def test_legacy_x_vapi_secret_header_is_accepted() -> None:
    verify_request({"X-Vapi-Secret": "s3cret-token"}, b"{}", [BEARER])


def test_custom_bearer_header_name_is_honoured() -> None:
    cred = PlatformCredential(kind="bearer", secret="s3cret-token", header_name="X-Backline-Token")
    verify_request({"x-backline-token": "s3cret-token"}, b"{}", [cred])
    with pytest.raises(WebhookSignatureError):
        verify_request({"x-other": "s3cret-token"}, b"{}", [cred])


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer wrong"}, {"X-Vapi-Secret": "s3cret-token-x"}]
)
def test_missing_or_wrong_token_is_rejected(headers: dict[str, str]) -> None:
    with pytest.raises(WebhookSignatureError):
        verify_request(headers, b"{}", [BEARER])


def test_hmac_over_timestamp_and_raw_body_verifies_and_tampering_fails() -> None:
    body = raw(fixture("vapi_end_of_call_report.json")).replace(b"Dana", "Dána".encode())
    ts = str(int(time.time() * 1000))
    headers = {"x-timestamp": ts, "x-signature": sign_hmac(HMAC.secret, body, ts)}
    verify_request(headers, body, [HMAC])
    with pytest.raises(WebhookSignatureError):
        verify_request(headers, body + b" ", [HMAC])


def test_hmac_with_stale_timestamp_is_rejected() -> None:
    ts = str(int(time.time()) - 3600)
    headers = {"x-timestamp": ts, "x-signature": sign_hmac(HMAC.secret, b"{}", ts)}
    with pytest.raises(WebhookSignatureError):
        verify_request(headers, b"{}", [HMAC])


def test_agent_without_credentials_rejects_everything() -> None:
    with pytest.raises(WebhookSignatureError, match="no VAPI credential"):
        verify_request({"Authorization": "Bearer x"}, b"{}", [])


def test_assistant_request_becomes_context_request_with_caller() -> None:
    body = fixture("vapi_assistant_request.json")
    construct_type(type_=ServerMessageAssistantRequest, object_=body["message"])
    event = parse_event(body)
    assert isinstance(event, ContextRequest)
    assert event.call.caller_number == "+14155550123"
    assert event.call.direction == "inbound"


@pytest.mark.parametrize("arguments", [{"query": "last order"}, '{"query": "last order"}'])
def test_tool_call_arguments_as_object_or_json_string(arguments: object) -> None:
    body = fixture("vapi_tool_calls.json")
    body["message"]["toolCallList"][0]["function"]["arguments"] = arguments
    event = parse_event(body)
    assert isinstance(event, ToolCallBatch)
    assert event.calls[0].arguments == {"query": "last order"}
    assert event.calls[0].tool_call_id == "call_Zs9Qm2P1aB7c"


def test_tool_calls_fixture_validates_against_the_sdk_model() -> None:
    msg = construct_type(
        type_=ServerMessageToolCalls, object_=fixture("vapi_tool_calls.json")["message"]
    )
    assert msg.tool_call_list[0].id == "call_Zs9Qm2P1aB7c"


def test_end_of_call_report_becomes_call_ended_with_turns() -> None:
    body = fixture("vapi_end_of_call_report.json")
    construct_type(type_=ServerMessageEndOfCallReport, object_=body["message"])
    event = parse_event(body)
    assert isinstance(event, CallEnded)
    assert event.platform_ended_reason == "customer-ended-call"
    assert event.ended_reason == "caller_hangup"
    assert [t.role for t in event.turns][:2] == ["agent", "caller"]
    assert event.turns[1].text == "Where is my last order?"
    assert event.platform_success is True
    assert event.ended_at is not None and event.ended_at.tzinfo is not None


def test_transcript_string_is_used_when_messages_are_absent() -> None:
    body = fixture("vapi_end_of_call_report.json")
    del body["message"]["artifact"]["messages"]
    event = parse_event(body)
    assert isinstance(event, CallEnded)
    assert event.turns[0].role == "agent" and event.turns[1].text == "Where is my last order?"


def test_status_in_progress_is_call_started_and_speech_update_is_informational() -> None:
    assert isinstance(parse_event(fixture("vapi_status_update__in_progress.json")), CallStarted)
    event = parse_event(fixture("vapi_speech_update.json"))
    assert isinstance(event, Informational) and event.platform_type == "speech-update"


def test_unknown_extra_fields_are_tolerated() -> None:
    body = fixture("vapi_assistant_request.json")
    body["message"]["brandNewField"] = {"x": 1}
    assert isinstance(parse_event(body), ContextRequest)


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda b: b["message"].pop("type"), "message.type"),
        (lambda b: b["message"]["call"].pop("id"), "message.call.id"),
    ],
)
def test_missing_required_field_is_named(mutate, field) -> None:  # type: ignore[no-untyped-def]
    body = fixture("vapi_assistant_request.json")
    mutate(body)
    with pytest.raises(MalformedWebhookError, match=field.replace(".", r"\.")):
        parse_event(body)


def test_tool_call_without_id_is_named() -> None:
    body = fixture("vapi_tool_calls.json")
    del body["message"]["toolCallList"][0]["id"]
    with pytest.raises(MalformedWebhookError, match=r"toolCallList\[0\]\.id"):
        parse_event(body)


def test_tool_reply_is_single_line_and_validates_against_the_sdk() -> None:
    reply = mapping.tool_calls_reply(
        [
            mapping.ToolResult("a", "memory_search", result="line one\nline two"),
            mapping.ToolResult("b", "nope", error="Unknown tool"),
        ]
    )
    assert reply["results"][0]["result"] == "line one line two"
    assert reply["results"][1] == {"name": "nope", "toolCallId": "b", "error": "Unknown tool"}
    parsed = ServerMessageResponseToolCalls.model_validate(reply)
    assert parsed.results is not None and parsed.results[0].tool_call_id == "a"


def test_assistant_reply_prefers_inline_assistant_over_id() -> None:
    reply = mapping.assistant_request_reply(
        assistant_id="asst", assistant={"name": "x"}, variables={"backline_caller_known": "no"}
    )
    assert "assistantId" not in reply and reply["assistant"] == {"name": "x"}
    assert json.loads(json.dumps(reply))["assistantOverrides"]["variableValues"] == {
        "backline_caller_known": "no"
    }


def test_exported_tools_validate_against_the_sdk_tool_model() -> None:
    from vapi.types import CreateFunctionToolDto

    from connectors.vapi.tools import tool_definitions
    from core.tools.builtins import BUILTIN_TOOLS

    defs = tool_definitions(BUILTIN_TOOLS, "https://backline.example.com/", "demo")
    assert [d["function"]["name"] for d in defs] == ["memory_search", "knowledge_search"]
    tool = CreateFunctionToolDto.model_validate(defs[0])
    assert tool.server is not None
    assert tool.server.url == "https://backline.example.com/v1/webhooks/vapi/demo"
    assert tool.function is not None and tool.function.parameters is not None
