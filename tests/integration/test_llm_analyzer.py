"""The OpenAI-compatible analyzer, through the real SDK, against a local fake over real HTTP."""

from __future__ import annotations

import json
import time

import pytest

from connectors.llm import ANALYSIS_SCHEMA, PLACEHOLDER_API_KEY, OpenAICompatibleAnalyzer
from core.calls.events import Turn
from core.memory.analysis import FACT_KEYS, ExtractedFact
from core.memory.ports import AnalyzerError, AnalyzerUnavailableError, CallAnalyzer
from tests.fakes.openai_server import fake_openai_server

MODEL = "test-model-mini"

TURNS = [
    Turn(role="agent", text="Thanks for calling Acme, how can I help?"),
    Turn(role="caller", text="Hi, this is Dana. Where is my order 1042? Please text me."),
    Turn(role="agent", text="Your order 1042 was delivered on February 27."),
]

GOOD_CONTENT = json.dumps(
    {
        "summary": "Caller asked where order 1042 is.  Agent said it was delivered on Feb 27.",
        "facts": [
            {"key": "name", "value": "Dana"},
            {"key": "order_id", "value": "1042"},
            {"key": "contact_preference", "value": "Text"},
        ],
    }
)


def analyzer(
    base_url: str, api_key: str | None = "sk-test", timeout_s: float = 5.0
) -> CallAnalyzer:
    return OpenAICompatibleAnalyzer(
        base_url=base_url, model=MODEL, api_key=api_key, timeout_s=timeout_s
    )


def test_ok_response_is_parsed_into_summary_and_normalized_facts() -> None:
    with fake_openai_server(mode="ok", content=GOOD_CONTENT) as server:
        analysis = analyzer(server.base_url).analyze(TURNS)

    assert analysis.method == "llm"
    assert (
        analysis.summary
        == "Caller asked where order 1042 is. Agent said it was delivered on Feb 27."
    )
    assert analysis.facts == [
        ExtractedFact(key="name", value="Dana"),
        ExtractedFact(key="contact_preference", value="text"),
        ExtractedFact(key="order_id", value="1042"),
    ]


def test_request_carries_model_transcript_fact_keys_and_json_schema() -> None:
    with fake_openai_server(mode="ok", content=GOOD_CONTENT) as server:
        analyzer(server.base_url).analyze(TURNS)

    assert len(server.requests) == 1
    request = server.requests[0]
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer sk-test"
    assert request.body["model"] == MODEL
    system, user = request.body["messages"]
    assert system["role"] == "system"
    assert all(key in system["content"] for key in FACT_KEYS)
    assert user["role"] == "user"
    assert "Caller: Hi, this is Dana. Where is my order 1042? Please text me." in user["content"]
    assert "Agent: Your order 1042 was delivered on February 27." in user["content"]
    response_format = request.body["response_format"]
    assert response_format["type"] == "json_schema"
    assert response_format["json_schema"]["schema"] == ANALYSIS_SCHEMA
    fact_key = response_format["json_schema"]["schema"]["properties"]["facts"]["items"]
    assert fact_key["properties"]["key"]["enum"] == list(FACT_KEYS)


def test_missing_api_key_sends_a_placeholder() -> None:
    with fake_openai_server(mode="ok", content=GOOD_CONTENT) as server:
        analyzer(server.base_url, api_key=None).analyze(TURNS)

    assert server.requests[0].headers["authorization"] == f"Bearer {PLACEHOLDER_API_KEY}"


def test_unknown_fact_keys_from_the_model_are_dropped() -> None:
    content = json.dumps(
        {
            "summary": "Caller asked about an order.",
            "facts": [
                {"key": "favorite_color", "value": "blue"},
                {"key": "city", "value": "austin"},
            ],
        }
    )
    with fake_openai_server(mode="ok", content=content) as server:
        analysis = analyzer(server.base_url).analyze(TURNS)

    assert analysis.facts == [ExtractedFact(key="city", value="Austin")]


def test_empty_transcript_makes_no_request() -> None:
    with fake_openai_server(mode="ok", content=GOOD_CONTENT) as server:
        analysis = analyzer(server.base_url).analyze([])

    assert (analysis.summary, analysis.facts, analysis.method) == ("", [], "llm")
    assert server.requests == []


def test_invalid_json_content_raises_analyzer_error() -> None:
    with fake_openai_server(mode="invalid_json") as server, pytest.raises(AnalyzerError):
        analyzer(server.base_url).analyze(TURNS)


def test_json_of_the_wrong_shape_raises_analyzer_error() -> None:
    content = json.dumps({"summary": "fine", "facts": [{"name": "Dana"}]})
    with fake_openai_server(mode="ok", content=content) as server, pytest.raises(AnalyzerError):
        analyzer(server.base_url).analyze(TURNS)


def test_slow_server_times_out_quickly_as_analyzer_error() -> None:
    with fake_openai_server(mode="slow", content=GOOD_CONTENT, slow_s=10.0) as server:
        started = time.monotonic()
        with pytest.raises(AnalyzerError, match="timed out"):
            analyzer(server.base_url, timeout_s=0.5).analyze(TURNS)
        elapsed = time.monotonic() - started

    assert elapsed < 2.0
    assert len(server.requests) == 1


def test_unauthorized_raises_analyzer_unavailable_error() -> None:
    with fake_openai_server(mode="unauthorized") as server, pytest.raises(AnalyzerUnavailableError):
        analyzer(server.base_url).analyze(TURNS)


def test_unknown_model_raises_analyzer_unavailable_error() -> None:
    with fake_openai_server(mode="not_found") as server, pytest.raises(AnalyzerUnavailableError):
        analyzer(server.base_url).analyze(TURNS)


def test_server_error_is_retryable_and_the_sdk_does_not_retry_it_itself() -> None:
    with (
        fake_openai_server(mode="server_error") as server,
        pytest.raises(AnalyzerError) as raised,
    ):
        analyzer(server.base_url).analyze(TURNS)

    assert not isinstance(raised.value, AnalyzerUnavailableError)
    assert len(server.requests) == 1


def test_unreachable_endpoint_raises_analyzer_error() -> None:
    with fake_openai_server() as server:
        base_url = server.base_url
    # The fake has stopped, so nothing listens on that port any more.
    with pytest.raises(AnalyzerError):
        analyzer(base_url, timeout_s=1.0).analyze(TURNS)
