"""The custom platform: Backline's own versioned contract. Signature checks (tampering, stale
and future timestamps, rotated secrets), strict parsing that names the field and what it
accepts, reply shapes, and tool definitions."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from connectors.custom import mapping
from connectors.custom.platform import CUSTOM
from connectors.custom.tools import TOOL_TIMEOUT_S, tool_definitions
from connectors.custom.webhooks import (
    MAX_TOOL_CALLS,
    REPLAY_WINDOW_S,
    SIGNATURE_HEADER,
    TYPES,
    parse_call_ended,
    parse_event,
    parse_signature_header,
    sign,
    signature_header,
    verify_request,
)
from connectors.platform import ContextReply
from core.calls.events import (
    CallEnded,
    ContextRequest,
    KnowledgeRequest,
    ToolCall,
    ToolCallBatch,
    TranscriptUpdate,
)
from core.calls.ports import PlatformCredential
from core.errors import MalformedWebhookError, WebhookSignatureError
from core.knowledge.schemas import KnowledgeAnswer, KnowledgeHit, WithheldHit
from core.memory.schemas import CallerContext
from core.prompts.serving import ServedPrompt
from core.tools.builtins import BUILTIN_TOOLS, ToolOutcome
from fakes import custom
from fakes.common import raw

SECRET = "whsec-custom-test"
DANA = "+14155550123"
NOW = 1_790_000_000
TURNS = [("agent", "Hi, how can I help?"), ("caller", "My water heater is leaking.")]


def _verify(body: bytes, header: str | None, secrets: list[str] | None = None) -> None:
    verify_request(body, header, [SECRET] if secrets is None else secrets, agent_id="a1", now=NOW)


# -- signatures -----------------------------------------------------------------------------


def test_a_signed_body_verifies_and_the_digest_is_the_documented_construction() -> None:
    body = raw(custom.call_started(DANA, "c-1"))
    header = signature_header(body, [SECRET], NOW)
    expected = hmac.new(SECRET.encode(), f"{NOW}.".encode() + body, hashlib.sha256).hexdigest()
    assert header == f"t={NOW},v1={expected}"
    _verify(body, header)


def test_the_signature_is_checked_over_the_raw_bytes_not_reparsed_json() -> None:
    body = '{"version": "1", "type": "call.started", "call": {"id": "c-é"}}'.encode()
    _verify(body, signature_header(body, [SECRET], NOW))
    reencoded = raw(json.loads(body))
    with pytest.raises(WebhookSignatureError, match="sign the exact bytes"):
        _verify(reencoded, signature_header(body, [SECRET], NOW))


def test_a_tampered_body_or_another_secret_is_refused() -> None:
    body = raw(custom.call_started(DANA, "c-1"))
    header = signature_header(body, [SECRET], NOW)
    with pytest.raises(WebhookSignatureError, match="no Backline-Signature v1 value matches"):
        _verify(body.replace(b"c-1", b"c-2"), header)
    with pytest.raises(WebhookSignatureError, match="credentials/custom"):
        _verify(body, signature_header(body, ["another secret"], NOW))


@pytest.mark.parametrize("skew", [REPLAY_WINDOW_S + 1, 3600, NOW])
def test_a_stale_timestamp_is_refused_naming_the_reason(skew: int) -> None:
    body = raw(custom.call_started(DANA))
    with pytest.raises(WebhookSignatureError, match=r"too old: \d+ s .*allowed: 300 s"):
        _verify(body, signature_header(body, [SECRET], NOW - skew))


@pytest.mark.parametrize("skew", [REPLAY_WINDOW_S + 1, 86_400])
def test_a_future_timestamp_is_refused_naming_the_reason(skew: int) -> None:
    body = raw(custom.call_started(DANA))
    with pytest.raises(WebhookSignatureError, match=r"in the future: \d+ s .*allowed: 300 s"):
        _verify(body, signature_header(body, [SECRET], NOW + skew))


def test_timestamps_inside_the_window_either_side_verify() -> None:
    body = raw(custom.call_started(DANA))
    for t in (NOW - REPLAY_WINDOW_S, NOW + REPLAY_WINDOW_S):
        _verify(body, signature_header(body, [SECRET], t))


def test_a_rotated_secret_verifies_from_either_v1_value() -> None:
    body = raw(custom.call_started(DANA))
    both = signature_header(body, ["old secret", "new secret"], NOW)
    assert both.count("v1=") == 2
    # Before Backline holds the new secret, and after: the same header works both times.
    _verify(body, both, ["old secret"])
    _verify(body, both, ["new secret"])
    # Backline holding several secrets (any may match) works too.
    _verify(body, signature_header(body, ["new secret"], NOW), ["old secret", "new secret"])


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (None, "header is missing"),
        ("", "header is missing"),
        ("sha256=abc", "has no 't'"),
        (f"t={NOW}", "has no 'v1'"),
        ("v1=" + "a" * 64, "has no 't'"),
        (f"t=soon,v1={'a' * 64}", "whole unix seconds"),
        (f"t={NOW},v1=xyz", "64 hex characters"),
        (f"t={NOW}," + ",".join(["v1=" + "a" * 64] * 9), "at most 8 are checked"),
        ("t=1," + "x" * 2000, "at most 1024 are read"),
    ],
)
def test_a_malformed_header_is_refused_saying_what_is_wrong(
    header: str | None, message: str
) -> None:
    with pytest.raises(WebhookSignatureError, match=message):
        _verify(b"{}", header)


def test_unknown_header_parts_are_ignored_and_hex_case_does_not_matter() -> None:
    body = b'{"version":"1"}'
    digest = sign(SECRET, body, NOW)
    _verify(body, f"t={NOW}, v0=legacy, v1={digest.upper()}")
    assert parse_signature_header(f"t={NOW},v1={digest}") == (NOW, [digest])


def test_no_configured_secret_names_the_route_to_set_one() -> None:
    with pytest.raises(WebhookSignatureError, match=r"PUT /v1/agents/a1/credentials/custom"):
        _verify(b"{}", "t=1,v1=" + "a" * 64, [])


def test_the_platform_object_reads_the_header_in_any_case_and_only_signing_secrets() -> None:
    body = raw(custom.call_started(DANA))
    header = signature_header(body, [SECRET])
    creds = [PlatformCredential("signing_secret", SECRET)]
    CUSTOM.verify({SIGNATURE_HEADER.lower(): header}, body, creds, agent_id="a1")
    with pytest.raises(WebhookSignatureError, match="no custom signing secret"):
        CUSTOM.verify(
            {SIGNATURE_HEADER: header}, body, [PlatformCredential("bearer", SECRET)], agent_id="a1"
        )


# -- the envelope ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"version": None}, "required field 'version' is missing; accepted values: 1"),
        ({"version": "2"}, "field 'version' is '2'; accepted values: 1"),
        ({"version": 1}, "field 'version' must be a string, got number; accepted values: 1"),
        ({"type": None}, "required field 'type' is missing; accepted values: call.started"),
        ({"type": "call.ringing"}, "field 'type' is 'call.ringing'; accepted values: "),
        ({"type": ["call.started"]}, "field 'type' must be a string, got array"),
    ],
)
def test_unknown_version_or_type_is_a_4xx_naming_the_field_and_accepted_values(
    change: dict[str, Any], message: str
) -> None:
    body = custom.call_started(DANA)
    body.update(change)
    body = {k: v for k, v in body.items() if v is not None}
    with pytest.raises(MalformedWebhookError) as err:
        parse_event(body)
    assert message in err.value.detail
    assert 400 <= err.value.status_code < 500


def test_an_unknown_type_lists_every_accepted_type() -> None:
    body = custom.call_started(DANA)
    body["type"] = "nope"
    with pytest.raises(MalformedWebhookError) as err:
        parse_event(body)
    assert all(t in err.value.detail for t in TYPES)


def _with(body: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    body = copy.deepcopy(body)
    *parents, last = path.split(".")
    target = body
    for part in parents:
        target = target[int(part)] if isinstance(target, list) else target[part]
    if value is _DROP:
        del target[last]
    elif isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value
    return body


_DROP = object()
STARTED = custom.call_started(DANA, "c-1", variables={"plan": "gold"})
TOOLS = custom.tool_calls(DANA, [("t1", "memory_search", {"query": "order"})], "c-1")
KNOWLEDGE = custom.knowledge_request(DANA, query="what are your sunday hours", call_id="c-1")
TRANSCRIPT = custom.transcript_update("c-1", DANA, "caller", "Hello?")
ENDED = custom.call_ended("c-1", DANA, TURNS)


@pytest.mark.parametrize(
    ("body", "path", "value", "message"),
    [
        (STARTED, "call", _DROP, "required field 'call' is missing"),
        (STARTED, "call", "c-1", "field 'call' must be an object, got string"),
        (STARTED, "call.id", _DROP, "required field 'call.id' is missing"),
        (STARTED, "call.id", 42, "field 'call.id' must be a string, got number"),
        (STARTED, "call.id", "", "required field 'call.id' is empty"),
        (STARTED, "call.id", "c" * 257, "field 'call.id' is 257 characters long"),
        (STARTED, "call.id", "c-1\nforged", "field 'call.id' contains control characters"),
        (STARTED, "call.caller_number", 14155550123, "'call.caller_number' must be a string"),
        (STARTED, "call.caller_number", "+1" * 40, "'call.caller_number' is 80 characters"),
        (
            STARTED,
            "call.direction",
            "sideways",
            "field 'call.direction' is 'sideways'; accepted values: inbound, outbound, web",
        ),
        (STARTED, "call.variables", ["plan"], "field 'call.variables' must be an object"),
        (STARTED, "call.variables.plan", 3, "field 'call.variables.plan' must be a string"),
        (TOOLS, "tool_calls", _DROP, "required field 'tool_calls' is missing"),
        (TOOLS, "tool_calls", [], "field 'tool_calls' is empty"),
        (TOOLS, "tool_calls", {"id": "t1"}, "field 'tool_calls' must be an array, got object"),
        (TOOLS, "tool_calls.0", "memory_search", "field 'tool_calls[0]' must be an object"),
        (TOOLS, "tool_calls.0.id", _DROP, "required field 'tool_calls[0].id' is missing"),
        (TOOLS, "tool_calls.0.id", "t\x00", "'tool_calls[0].id' contains control characters"),
        (TOOLS, "tool_calls.0.id", "t" * 257, "'tool_calls[0].id' is 257 characters long"),
        (TOOLS, "tool_calls.0.name", _DROP, "required field 'tool_calls[0].name' is missing"),
        (TOOLS, "tool_calls.0.name", "rm -rf", "'tool_calls[0].name' must be 1-64 letters"),
        (TOOLS, "tool_calls.0.arguments", [1], "'tool_calls[0].arguments' must be an object"),
        (
            TOOLS,
            "tool_calls.0.arguments",
            "{oops",
            "'tool_calls[0].arguments' is a string that is not a JSON object",
        ),
        (KNOWLEDGE, "query", _DROP, "required field 'query' is missing; send 'query'"),
        (KNOWLEDGE, "query", "  ", "field 'query' is empty"),
        (KNOWLEDGE, "query", "q" * 2001, "field 'query' is 2001 characters long"),
        (TRANSCRIPT, "turn", _DROP, "required field 'turn' is missing"),
        (
            TRANSCRIPT,
            "turn.role",
            "user",
            "field 'turn.role' is 'user'; accepted values: caller, agent",
        ),
        (TRANSCRIPT, "turn.text", _DROP, "required field 'turn.text' is missing"),
        (TRANSCRIPT, "turn.final", "yes", "field 'turn.final' must be a boolean"),
        (ENDED, "transcript", _DROP, "required field 'transcript' is missing"),
        (ENDED, "transcript", "Agent: hi", "field 'transcript' must be an array, got string"),
        (ENDED, "transcript.1.role", "bot", "field 'transcript[1].role' is 'bot'"),
        (ENDED, "transcript.1.text", 7, "field 'transcript[1].text' must be a string"),
        (ENDED, "transcript.1.at", -1, "field 'transcript[1].at' is negative"),
        (ENDED, "transcript.1.at", "later", "field 'transcript[1].at' is not a time"),
        (ENDED, "transcript.1.at", True, "field 'transcript[1].at' must be seconds"),
        (ENDED, "call.started_at", "yesterday", "field 'call.started_at' is not a time"),
        (ENDED, "call.ended_at", {"s": 1}, "field 'call.ended_at' must be an ISO 8601 string"),
        (ENDED, "end_reason", 3, "field 'end_reason' must be a string"),
        (ENDED, "end_reason", "x" * 201, "field 'end_reason' is 201 characters long"),
        (ENDED, "success", "yes", "field 'success' must be a boolean"),
    ],
)
def test_bad_fields_are_a_422_naming_the_field(
    body: dict[str, Any], path: str, value: Any, message: str
) -> None:
    with pytest.raises(MalformedWebhookError) as err:
        parse_event(_with(body, path, value))
    assert message in err.value.detail
    assert err.value.status_code == 422


def test_a_batch_over_the_limit_or_with_a_repeated_id_is_refused() -> None:
    many = custom.tool_calls(DANA, [(f"t{i}", "x", {}) for i in range(MAX_TOOL_CALLS + 1)])
    with pytest.raises(MalformedWebhookError, match=f"at most {MAX_TOOL_CALLS} are accepted"):
        parse_event(many)
    twice = custom.tool_calls(DANA, [("t1", "a", {}), ("t1", "b", {})])
    with pytest.raises(MalformedWebhookError, match=r"'tool_calls\[1\].id' repeats 't1'"):
        parse_event(twice)


def test_a_time_of_day_at_needs_the_call_start() -> None:
    body = custom.call_ended("c-1", DANA, TURNS, started_at=None)
    body["transcript"][0]["at"] = "2026-03-02T17:04:12Z"
    with pytest.raises(MalformedWebhookError, match=r"needs 'call\.started_at'"):
        parse_event(body)


def test_unknown_extra_fields_are_ignored() -> None:
    body = copy.deepcopy(STARTED)
    body["trace_id"] = "abc"
    body["call"]["sip_headers"] = {"x": "y"}
    assert isinstance(parse_event(body), ContextRequest)


# -- parsing --------------------------------------------------------------------------------


def test_call_started_is_a_context_request_with_the_calls_own_variables() -> None:
    event = parse_event(STARTED)
    assert isinstance(event, ContextRequest)
    assert event.call.model_dump() == {
        "platform": "custom",
        "call_id": "c-1",
        "caller_number": DANA,
        "direction": "inbound",
    }
    assert event.variables == {"plan": "gold"}


def test_a_web_call_without_a_number_has_no_caller() -> None:
    event = parse_event(custom.call_started(None, "w-1", direction="web"))
    assert isinstance(event, ContextRequest)
    assert event.call.caller_number is None and event.call.direction == "web"


def test_tool_calls_are_one_batch_with_arguments_as_object_or_json_string() -> None:
    body = custom.tool_calls(
        DANA,
        [("t1", "memory_search", {"query": "order"}), ("t2", "knowledge_search", '{"query": "x"}')],
        "c-1",
    )
    event = parse_event(body)
    assert isinstance(event, ToolCallBatch)
    assert [(c.tool_call_id, c.name, c.arguments) for c in event.calls] == [
        ("t1", "memory_search", {"query": "order"}),
        ("t2", "knowledge_search", {"query": "x"}),
    ]
    assert all(c.call == event.call and event.call.caller_number == DANA for c in event.calls)


def test_a_knowledge_request_takes_a_query_or_recent_turns() -> None:
    by_query = parse_event(KNOWLEDGE)
    assert isinstance(by_query, KnowledgeRequest)
    assert [(t.role, t.text) for t in by_query.turns] == [("caller", "what are your sunday hours")]
    turns = [("agent", "How can I help?"), ("caller", "Are you open on Sundays?"), ("agent", " ")]
    by_turns = parse_event(custom.knowledge_request(DANA, turns=turns))
    assert isinstance(by_turns, KnowledgeRequest)
    assert [(t.role, t.text) for t in by_turns.turns] == turns[:2]


def test_a_transcript_update_is_recorded_with_its_role() -> None:
    event = parse_event(custom.transcript_update("c-1", DANA, "agent", "One moment.", final=False))
    assert isinstance(event, TranscriptUpdate)
    assert (event.role, event.text, event.final) == ("agent", "One moment.", False)


def test_call_ended_carries_turns_times_and_the_canonical_end_reason() -> None:
    body = custom.call_ended("c-1", DANA, TURNS)
    body["transcript"].insert(1, {"role": "caller", "text": "   "})  # silence is no turn
    body["summary"] = "Leaking heater."
    body["success"] = True
    event = parse_event(body)
    assert isinstance(event, CallEnded)
    assert event == parse_call_ended(body) == CUSTOM.parse_call_ended(body)
    assert event.started_at == datetime(2026, 3, 2, 17, 4, 10, tzinfo=UTC)
    assert event.ended_at == datetime(2026, 3, 2, 17, 7, 10, tzinfo=UTC)
    assert [(t.role, t.text, t.seconds_from_start) for t in event.turns] == [
        ("agent", "Hi, how can I help?", 0.0),
        ("caller", "My water heater is leaking.", 5.0),
    ]
    assert (event.ended_reason, event.platform_ended_reason) == ("caller_hangup", "caller_hangup")
    assert (event.platform_summary, event.platform_success) == ("Leaking heater.", True)
    assert not event.transferred


@pytest.mark.parametrize(
    ("reason", "canonical"),
    [
        ("caller_hangup", "caller_hangup"),
        ("agent_hangup", "agent_hangup"),
        ("transferred", "transferred"),
        ("voicemail", "voicemail"),
        ("no_answer", "no_answer"),
        ("silence_timeout", "silence_timeout"),
        ("max_duration", "max_duration"),
        ("error", "error"),
        ("completed", "completed"),
        ("other", "other"),
        ("participant_disconnected", "other"),
        (None, None),
    ],
)
def test_end_reasons_map_to_the_canonical_vocabulary(reason: str | None, canonical: str) -> None:
    event = parse_call_ended(custom.call_ended("c-1", DANA, TURNS, end_reason=reason))
    assert event.ended_reason == canonical
    assert event.transferred == (canonical == "transferred")


def test_at_as_a_time_of_day_counts_from_the_call_start_and_epoch_times_parse() -> None:
    body = custom.call_ended("c-1", DANA, TURNS, started_at=1_772_471_050, ended_at=1_772_471_230)
    body["transcript"][1]["at"] = "2026-03-02T17:04:17.5Z"
    event = parse_call_ended(body)
    assert event.started_at == datetime(2026, 3, 2, 17, 4, 10, tzinfo=UTC)
    assert event.turns[1].seconds_from_start == 7.5


def test_the_inbox_parser_refuses_a_message_that_is_not_call_ended() -> None:
    with pytest.raises(MalformedWebhookError, match=r"expected 'call\.ended'"):
        parse_call_ended(STARTED)


# -- replies --------------------------------------------------------------------------------


def _prompt(tools: tuple[dict[str, Any], ...] = ()) -> ServedPrompt:
    return ServedPrompt(
        version=3,
        ref="v3",
        source="label:production",
        experiment_id=None,
        system_prompt="You are Acme's phone agent. Dana prefers email.",
        first_message="Hi Dana!",
        model={"model": "gpt-4o-mini", "temperature": 0.2},
        tools=tools,
    )


def test_the_context_reply_carries_memory_variables_and_the_served_prompt() -> None:
    ctx = CallerContext(
        known=True, summary="Leaking heater.", facts={"contact_preference": "email"}, call_count=1
    )
    reply = CUSTOM.context_reply(
        ContextReply(
            agent_id="a1",
            call_id="c-1",
            variables={"backline_caller_known": "yes", "plan": "gold"},
            prompt=_prompt(({"name": "memory_search", **BUILTIN_TOOLS["memory_search"]},)),
            public_url="https://backline.example",
            context=ctx,
        )
    )
    assert reply["version"] == "1" and reply["call_id"] == "c-1"
    assert reply["context"] == {
        "caller_known": True,
        "memory_summary": "Leaking heater.",
        "facts": {"contact_preference": "email"},
        "call_count": 1,
        "last_call_at": None,
    }
    assert reply["variables"] == {"backline_caller_known": "yes", "plan": "gold"}
    prompt = reply["prompt"]
    assert (prompt["version"], prompt["system_prompt"], prompt["first_message"]) == (
        "v3",
        "You are Acme's phone agent. Dana prefers email.",
        "Hi Dana!",
    )
    assert prompt["model"] == {"model": "gpt-4o-mini", "temperature": 0.2}
    assert prompt["tools"][0]["url"] == "https://backline.example/v1/webhooks/custom/a1"
    json.dumps(reply)  # JSON all the way down


def test_without_a_served_prompt_or_memory_the_context_is_the_new_caller() -> None:
    reply = CUSTOM.context_reply(ContextReply(agent_id="a1", call_id="c-1", variables={}))
    assert reply["prompt"] is None
    assert reply["context"]["caller_known"] is False and reply["context"]["facts"] == {}


def test_tool_results_answer_every_call_by_id_in_order() -> None:
    batch = parse_event(
        custom.tool_calls(DANA, [("t1", "memory_search", {}), ("t2", "nope", {}), ("t3", "x", {})])
    )
    assert isinstance(batch, ToolCallBatch)
    results: list[tuple[ToolCall, ToolOutcome]] = [
        (batch.calls[0], ToolOutcome(result="line one\nline two")),
        (batch.calls[1], ToolOutcome(error="Unknown tool 'nope'")),
    ]
    assert CUSTOM.tool_reply(batch, results) == {
        "version": "1",
        "results": [
            {"id": "t1", "result": "line one\nline two"},
            {"id": "t2", "error": "Unknown tool 'nope'"},
            {"id": "t3", "error": "tool 'x' produced no answer"},
        ],
    }


def _hit(chunk: str, freshness: str = "fresh") -> KnowledgeHit:
    at = datetime(2026, 3, 1, tzinfo=UTC)
    return KnowledgeHit(
        chunk_id=chunk,
        text="Open 9-5 on Sundays.",
        title="Hours",
        section="Weekend",
        score=0.03,
        similarity=0.81234,
        dense_rank=1,
        keyword_rank=1,
        source_id="s1",
        source_name="hours.md",
        kb_id="kb1",
        position=0,
        fetched_at=at,
        verified_at=at,
        age_s=60.0,
        freshness=freshness,  # type: ignore[arg-type]
    )


def _withheld() -> WithheldHit:
    return WithheldHit(
        chunk_id="old",
        source_id="s2",
        source_name="prices.md",
        section="Rates",
        freshness="stale",
        verified_at=None,
        reason="past its freshness limit",
    )


def test_the_knowledge_reply_carries_freshness_and_outdated_flags() -> None:
    ok = mapping.knowledge_reply(
        KnowledgeAnswer(
            query="sunday hours", normalized_query="sunday hours", status="ok", hits=[_hit("c1")]
        )
    )
    assert ok["answer_status"] == "ok" and ok["outdated"] is False
    assert ok["documents"] == [
        {
            "id": "c1",
            "content": "Hours > Weekend: Open 9-5 on Sundays.",
            "title": "Hours",
            "section": "Weekend",
            "source": "hours.md",
            "similarity": 0.8123,
            "freshness": "fresh",
            "outdated": False,
            "verified_at": "2026-03-01T00:00:00Z",
            "fetched_at": "2026-03-01T00:00:00Z",
            "age_s": 60.0,
        }
    ]
    partial = mapping.knowledge_reply(
        KnowledgeAnswer(
            query="q",
            normalized_query="q",
            status="partial",
            hits=[_hit("c1")],
            withheld=[_withheld()],
        )
    )
    assert partial["note"] and partial["withheld"][0]["outdated"] is True
    assert "text" not in partial["withheld"][0] and "content" not in partial["withheld"][0]
    outdated = mapping.knowledge_reply(
        KnowledgeAnswer(
            query="q",
            normalized_query="q",
            status="outdated",
            withheld=[_withheld()],
            spoken_fallback="Let me check on that.",
        )
    )
    assert outdated["outdated"] is True and outdated["documents"] == []
    assert outdated["spoken_fallback"] == "Let me check on that."
    assert mapping.knowledge_reply(None)["answer_status"] == "empty"


# -- tool export ----------------------------------------------------------------------------


def test_exported_tools_are_json_schema_functions_pointing_at_the_custom_url() -> None:
    definitions = CUSTOM.export_tools(BUILTIN_TOOLS, "https://backline.example/", "a1")
    assert [d["function"]["name"] for d in definitions] == list(BUILTIN_TOOLS)
    for d in definitions:
        assert d["type"] == "function"
        assert d["url"] == "https://backline.example/v1/webhooks/custom/a1"
        assert d["timeout_seconds"] == TOOL_TIMEOUT_S == CUSTOM.tool_deadline_s
        assert d["message_type"] == "tool.calls" and d["contract_version"] == "1"
        assert d["function"]["parameters"]["type"] == "object"
    assert tool_definitions({"noargs": {"description": "d"}}, "http://x", "a")[0]["function"][
        "parameters"
    ] == {"type": "object", "properties": {}}
