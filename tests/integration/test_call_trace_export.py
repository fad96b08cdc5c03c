"""After the post-call score step, a call's trace reaches an OTLP/HTTP receiver (a collector, or
Langfuse's OTLP endpoint with Basic auth): the spans, their tree and attributes as decoded from
the protobuf body, and no caller number anywhere in the bytes sent."""

from __future__ import annotations

import base64
import socket
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from activities.post_call import PostCallActivities
from connectors.otel import build_trace_exporter, trace_id_for
from core.calls.events import CallEnded, CallRef, Turn
from core.calls.models import Call
from core.calls.service import CallsService
from core.db import utcnow
from core.monitoring.traces import TraceExporter
from core.ports import Embedder, VectorStore
from core.settings import Settings
from core.tenancy.models import Agent, Organization
from orchestration.post_call_types import CallInput
from tests.conftest import SECRET_KEY, make_settings
from tests.otlp_receiver import Receiver, otlp_receiver

PHONE = "+14155550123"
NUMBER_FORMS = (b"4155550123", b"555 0123", b"555-0123", b"5550123", b"415 555")


def _seed(engine: Engine, platform: str = "vapi") -> tuple[int, str, str]:
    agent = f"agent-{uuid.uuid4().hex[:8]}"
    org = f"org-{agent}"
    call_id = f"call-{uuid.uuid4().hex[:8]}"
    started = utcnow() - timedelta(minutes=2)
    with Session(engine) as session:
        session.add(Organization(id=org, name=org))
        session.flush()
        session.add(Agent(id=agent, org_id=org, name=agent))
        session.flush()
        calls = CallsService(session, SECRET_KEY)

        def event(type_: str, data: dict[str, Any]) -> None:
            calls.record_event(
                org_id=org,
                agent_id=agent,
                platform=platform,
                call_id=call_id,
                caller_number=PHONE,
                type=type_,
                platform_type=type_,
                data=data,
            )

        calls.touch_call(
            org_id=org,
            agent_id=agent,
            platform=platform,
            call_id=call_id,
            caller_number=PHONE,
            direction="inbound",
            prompt_version="v2",
        )
        event("context_request", {"caller_known": False, "latency_ms": 120.0})
        event(
            "knowledge_retrieval",
            {
                "status": "ok",
                "query": f"my number is {PHONE}, when are you open",
                "chunk_ids": ["chunk-a", "chunk-b"],
                "freshness": ["fresh", "outdated"],
                "withheld": [],
                "latency_ms": 35.0,
            },
        )
        event(
            "tool_call",
            {
                "tool": "book_appointment",
                "server": "calendar",
                "arguments": {"phone": PHONE, "day": "Monday"},
                "status": "ok",
                "ok": True,
                "outcome": f"booked for {PHONE}",
                "latency_ms": 210.0,
                "breaker": "closed",
                "attempts": 1,
            },
        )
        event(
            "tool_call",
            {
                "tool": "crm_lookup",
                "server": "crm",
                "status": "unavailable",
                "ok": False,
                "latency_ms": 5.0,
                "breaker": "open",
            },
        )
        ended = CallEnded(
            call=CallRef(platform=platform, call_id=call_id, caller_number=PHONE),
            started_at=started,
            ended_at=started + timedelta(seconds=90),
            ended_reason="caller_hangup",
            turns=[
                Turn(role="agent", text="Acme Dental, how can I help?", seconds_from_start=1.0),
                Turn(
                    role="caller",
                    text="Book me for Monday, my number is 415 555 0123.",
                    seconds_from_start=4.0,
                ),
                Turn(role="agent", text="Booked for Monday. Goodbye!", seconds_from_start=30.0),
            ],
        )
        call = calls.store_ended_call(org_id=org, agent_id=agent, ended=ended, revision=1)
        assert call is not None and call.id is not None
        session.commit()
        return call.id, agent, call_id


def _activities(engine: Engine, exporter: TraceExporter | None) -> PostCallActivities:
    return PostCallActivities(
        engine,
        SECRET_KEY,
        cast(Embedder, None),
        cast(VectorStore, None),
        analyzer=None,
        trace_exporter=exporter,
    )


def _settings(tmp_path: Path, **overrides: Any) -> Settings:
    return make_settings("sqlite://", tmp_path, **overrides)


def _assert_no_number(receiver: Receiver) -> None:
    assert receiver.bodies
    for body in receiver.bodies:
        for form in NUMBER_FORMS:
            assert form not in body, form


def test_a_scored_call_reaches_the_collector_as_a_trace(any_engine: Engine, tmp_path: Path) -> None:
    pk, agent, call_id = _seed(any_engine)
    with otlp_receiver() as receiver:
        settings = _settings(tmp_path, otlp_endpoint=receiver.base_url)
        exporter = build_trace_exporter(settings)
        assert exporter is not None
        score = _activities(any_engine, exporter).score_call(CallInput(pk)).score

        spans = receiver.spans
        roots = [s for s in spans if not s.parent_span_id]
        assert len(roots) == 1
        root = roots[0]
        assert root.name == "call"
        assert root.resource["service.name"] == "backline"
        assert root.trace_id == f"{trace_id_for(agent, 'vapi', call_id):032x}"
        assert {s.trace_id for s in spans} == {root.trace_id}
        assert root.attributes["backline.agent_id"] == agent
        assert root.attributes["backline.platform"] == "vapi"
        assert root.attributes["backline.call_id"] == call_id
        assert root.attributes["backline.prompt.version"] == "v2"
        assert root.attributes["backline.eval"] is False
        assert root.attributes["backline.score"] == pytest.approx(score)
        assert "backline.score.execution" in root.attributes

        children = [s for s in spans if s.parent_span_id == root.span_id]
        assert len(children) == len(spans) - 1
        assert sorted(s.name for s in children) == sorted(
            ["context_fetch", "retrieval", "tool_call", "tool_call", "turn", "turn", "turn"]
        )
        for child in children:
            assert root.start_ns <= child.start_ns <= child.end_ns <= root.end_ns
        context = next(s for s in children if s.name == "context_fetch")
        assert context.end_ns - context.start_ns == 120_000_000
        retrieval = next(s for s in children if s.name == "retrieval")
        assert retrieval.attributes["backline.retrieval.chunk_ids"] == ["chunk-a", "chunk-b"]
        assert retrieval.attributes["backline.retrieval.outdated_chunk_ids"] == ["chunk-b"]
        tools = {s.attributes["backline.tool.name"]: s for s in children if s.name == "tool_call"}
        assert tools["book_appointment"].attributes["backline.tool.status"] == "ok"
        assert tools["book_appointment"].attributes["backline.tool.server"] == "calendar"
        assert tools["book_appointment"].attributes["backline.latency_ms"] == 210.0
        assert tools["crm_lookup"].attributes["backline.tool.status"] == "unavailable"
        assert tools["crm_lookup"].attributes["backline.tool.breaker"] == "open"
        assert tools["crm_lookup"].status_code == 2  # STATUS_CODE_ERROR
        caller_turn = next(
            s for s in children if s.attributes.get("backline.turn.role") == "caller"
        )
        assert "Monday" in caller_turn.attributes["backline.turn.text"]
        _assert_no_number(receiver)

        # Exporting again (a retried score step) sends the same trace, span for span.
        first = sorted((s.span_id, s.parent_span_id, s.start_ns, s.end_ns) for s in spans)
        receiver.spans.clear()
        _activities(any_engine, exporter).score_call(CallInput(pk))
        again = sorted((s.span_id, s.parent_span_id, s.start_ns, s.end_ns) for s in receiver.spans)
        assert again == first


def test_eval_traffic_is_marked(sqlite_url: str, tmp_path: Path) -> None:
    from core.db import make_engine

    engine = make_engine(sqlite_url)
    pk, _, _ = _seed(engine, platform="eval")
    with otlp_receiver() as receiver:
        exporter = build_trace_exporter(_settings(tmp_path, otlp_endpoint=receiver.base_url))
        _activities(engine, exporter).score_call(CallInput(pk))
    root = next(s for s in receiver.spans if not s.parent_span_id)
    assert root.attributes["backline.eval"] is True
    engine.dispose()


def test_langfuse_gets_the_trace_with_basic_auth(sqlite_url: str, tmp_path: Path) -> None:
    from core.db import make_engine

    engine = make_engine(sqlite_url)
    pk, _, call_id = _seed(engine)
    token = base64.b64encode(b"pk-lf-test:sk-lf-test").decode()
    with otlp_receiver("/api/public/otel/v1/traces", authorization=f"Basic {token}") as receiver:
        settings = _settings(
            tmp_path,
            langfuse_host=receiver.base_url + "/",
            langfuse_public_key="pk-lf-test",
            langfuse_secret_key="sk-lf-test",
        )
        exporter = build_trace_exporter(settings)
        assert exporter is not None and [t.name for t in exporter.targets] == ["langfuse"]
        _activities(engine, exporter).score_call(CallInput(pk))
        assert receiver.refused == 0
        assert receiver.headers[0]["content-type"] == "application/x-protobuf"
        assert receiver.headers[0]["x-langfuse-ingestion-version"] == "4"
        root = next(s for s in receiver.spans if not s.parent_span_id)
        assert root.attributes["backline.call_id"] == call_id
        _assert_no_number(receiver)

        # Wrong keys: Langfuse refuses, the score step still succeeds.
        wrong = build_trace_exporter(
            _settings(
                tmp_path,
                langfuse_host=receiver.base_url,
                langfuse_public_key="pk-lf-test",
                langfuse_secret_key="wrong",
            )
        )
        result = _activities(engine, wrong).score_call(CallInput(pk))
        assert result.score > 0 and receiver.refused >= 1
    engine.dispose()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_collector_that_is_down_costs_the_trace_not_the_call(
    sqlite_url: str, tmp_path: Path
) -> None:
    from core.db import make_engine

    engine = make_engine(sqlite_url)
    pk, _, call_id = _seed(engine)
    settings = _settings(
        tmp_path,
        otlp_endpoint=f"http://127.0.0.1:{_closed_port()}",
        trace_export_timeout_s=1.0,
    )
    result = _activities(engine, build_trace_exporter(settings)).score_call(CallInput(pk))
    assert result.score > 0
    with Session(engine) as session:
        call = session.get(Call, pk)
        assert call is not None and call.platform_call_id == call_id
    engine.dispose()


def test_nothing_is_exported_without_an_endpoint(tmp_path: Path) -> None:
    assert build_trace_exporter(_settings(tmp_path)) is None


def test_collector_settings(tmp_path: Path) -> None:
    exporter = build_trace_exporter(
        _settings(
            tmp_path,
            otlp_endpoint="https://collector.example:4318/",
            otlp_headers="x-api-key=abc, x-team = voice",
        )
    )
    assert exporter is not None
    (target,) = exporter.targets
    assert target.endpoint == "https://collector.example:4318/v1/traces"
    assert target.headers == {"x-api-key": "abc", "x-team": "voice"}
    with pytest.raises(ValueError, match="LANGFUSE"):
        _settings(tmp_path, langfuse_host="https://cloud.langfuse.com")
    with pytest.raises(ValueError, match="OTLP_HEADERS"):
        _settings(tmp_path, otlp_endpoint="http://127.0.0.1:4318", otlp_headers="no-equals")
    with pytest.raises(ValueError, match="http"):
        _settings(tmp_path, otlp_endpoint="collector:4318")
