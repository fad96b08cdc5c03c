"""A call's trace is built from its stored rows: the root carries the call and its score, each
context fetch, retrieval, tool call and turn is a child timed from the rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from core.calls.models import Call, CallEvent
from core.monitoring.models import CallScore
from core.monitoring.traces import build_call_trace
from core.tools.models import ToolInvocation

T0 = datetime(2026, 3, 2, 9, 0, 0, tzinfo=UTC)


def _call(**overrides: Any) -> Call:
    values: dict[str, Any] = {
        "org_id": "org",
        "agent_id": "agent",
        "platform": "vapi",
        "platform_call_id": "call-1",
        "caller_hash": "hash-of-the-number",
        "caller_display": "***-***-0123",
        "status": "ended",
        "started_at": T0,
        "ended_at": T0 + timedelta(seconds=60),
        "ended_reason": "caller_hangup",
        "prompt_version": "v3",
        "transcript": [
            {"role": "agent", "text": "Acme Dental, how can I help?", "seconds_from_start": 1.0},
            {"role": "caller", "text": "Call me back at [phone]", "seconds_from_start": 5.0},
            {"role": "agent", "text": "Will do, goodbye.", "seconds_from_start": 20.0},
        ],
        "analysis": {"transferred": False},
    }
    values.update(overrides)
    return Call(**values)


def _event(type_: str, at: datetime, data: dict[str, Any], eid: int) -> CallEvent:
    return CallEvent(
        id=eid,
        org_id="org",
        agent_id="agent",
        platform="vapi",
        platform_call_id="call-1",
        type=type_,
        platform_type=type_,
        data=data,
        at=at,
    )


EVENTS = [
    _event(
        "context_request",
        T0 + timedelta(milliseconds=200),
        {"caller_known": True, "latency_ms": 150.0, "prompt_version": "v3"},
        1,
    ),
    _event(
        "knowledge_retrieval",
        T0 + timedelta(seconds=8),
        {
            "status": "partial",
            "chunk_ids": ["k1", "k2"],
            "freshness": ["fresh", "outdated"],
            "withheld": ["k9"],
            "query": "what does a cleaning cost",
            "latency_ms": 40.0,
        },
        2,
    ),
    _event(
        "tool_call",
        T0 + timedelta(seconds=10),
        {
            "tool": "book",
            "server": "calendar",
            "status": "ok",
            "ok": True,
            "arguments": {"phone": "[phone]"},
            "outcome": "booked",
            "latency_ms": 320.0,
            "breaker": "closed",
            "attempts": 1,
        },
        3,
    ),
    _event(
        "tool_call",
        T0 + timedelta(seconds=12),
        {"tool": "crm", "status": "timeout", "ok": False, "latency_ms": 3000, "breaker": "open"},
        4,
    ),
    _event("call_started", T0, {}, 5),
]

SCORE = CallScore(
    org_id="org",
    agent_id="agent",
    platform="vapi",
    platform_call_id="call-1",
    score=0.82,
    prompt_version="v3",
    layers={
        "infrastructure": {"score": 0.9},
        "execution": {"score": 0.8},
        "reaction": {"score": 0.7},
        "outcome": {"score": 1.0},
    },
    metrics={"tool_calls": 2, "tool_failures": 1, "all_grounded": True, "stale_hits": 2},
)

INVOCATION = ToolInvocation(
    id=1,
    idempotency_key="k",
    org_id="org",
    agent_id="agent",
    platform="vapi",
    call_id="call-1",
    tool_call_id="tc-1",
    tool="book",
    status="done",
    outcome_status="ok",
    result="booked for +1 415 555 0123",
    created_at=T0 + timedelta(seconds=9),
)


def test_the_tree_has_the_root_and_one_child_per_recorded_step() -> None:
    trace = build_call_trace(_call(), EVENTS, [INVOCATION], SCORE)
    root = trace.root
    assert root.name == "call" and root.parent is None
    names = [s.name for s in trace.children("call")]
    assert names.count("context_fetch") == 1
    assert names.count("retrieval") == 1
    assert names.count("tool_call") == 2
    assert names.count("turn") == 3
    assert len(trace.spans) == 1 + 7  # the call_started event makes no span
    assert len({s.key for s in trace.spans}) == len(trace.spans)


def test_the_root_carries_the_call_and_its_score() -> None:
    attrs = build_call_trace(_call(), EVENTS, [], SCORE).root.attributes
    assert attrs["backline.agent_id"] == "agent"
    assert attrs["backline.platform"] == "vapi"
    assert attrs["backline.call_id"] == "call-1"
    assert attrs["backline.prompt.version"] == "v3"
    assert attrs["backline.eval"] is False
    assert attrs["backline.score"] == 0.82
    assert attrs["backline.score.execution"] == 0.8
    assert attrs["backline.score.outcome"] == 1.0
    assert attrs["backline.metrics.tool_failures"] == 1
    assert attrs["backline.metrics.all_grounded"] is True


def test_spans_are_timed_from_the_rows() -> None:
    trace = build_call_trace(_call(), EVENTS, [], SCORE)
    by_name = {s.name: s for s in trace.spans if s.name != "turn"}
    context = by_name["context_fetch"]
    assert context.end == T0 + timedelta(milliseconds=200)
    assert context.end - context.start == timedelta(milliseconds=150)
    turns = [s for s in trace.spans if s.name == "turn"]
    assert [t.start for t in turns] == [T0 + timedelta(seconds=s) for s in (1, 5, 20)]
    assert turns[0].end == turns[1].start and turns[-1].end == T0 + timedelta(seconds=60)
    assert trace.root.start == T0 and trace.root.end == T0 + timedelta(seconds=60)
    for span in trace.spans[1:]:
        assert trace.root.start <= span.start <= span.end <= trace.root.end


def test_retrieval_and_tool_spans_carry_what_monitoring_needs() -> None:
    trace = build_call_trace(_call(), EVENTS, [INVOCATION], SCORE)
    retrieval = next(s for s in trace.spans if s.name == "retrieval").attributes
    assert retrieval["backline.retrieval.chunk_ids"] == ["k1", "k2"]
    assert retrieval["backline.retrieval.freshness"] == ["fresh", "outdated"]
    assert retrieval["backline.retrieval.outdated_chunk_ids"] == ["k2"]
    assert retrieval["backline.retrieval.withheld_chunk_ids"] == ["k9"]
    assert retrieval["backline.retrieval.stale"] is True
    book, crm = [s for s in trace.spans if s.name == "tool_call"]
    assert book.attributes["backline.tool.name"] == "book"
    assert book.attributes["backline.tool.server"] == "calendar"
    assert book.attributes["backline.tool.status"] == "ok"
    assert book.attributes["backline.tool.breaker"] == "closed"
    assert book.attributes["backline.latency_ms"] == 320.0
    assert book.attributes["backline.tool.invocation_status"] == "done"
    assert book.attributes["backline.tool.tool_call_id"] == "tc-1"
    assert not book.error
    assert crm.error and crm.attributes["backline.tool.status"] == "timeout"
    assert crm.attributes["backline.tool.breaker"] == "open"
    assert "backline.tool.invocation_status" not in crm.attributes
    assert not trace.root.error  # a failed tool does not make the call an error


def test_no_number_hash_arguments_results_or_queries_are_carried() -> None:
    trace = build_call_trace(_call(), EVENTS, [INVOCATION], SCORE)
    text = repr([dict(s.attributes) for s in trace.spans])
    for leaked in ("hash-of-the-number", "0123", "555", "cleaning cost", "arguments", "booked"):
        assert leaked not in text
    turn = next(s for s in trace.spans if s.attributes.get("backline.turn.role") == "caller")
    assert turn.attributes["backline.turn.text"] == "Call me back at [phone]"


def test_eval_traffic_is_marked_and_a_call_without_times_still_has_a_trace() -> None:
    call = _call(platform="eval", started_at=None, ended_at=None, transcript=[], created_at=T0)
    trace = build_call_trace(call, EVENTS[:1], [], None)
    assert trace.root.attributes["backline.eval"] is True
    assert "backline.score" not in trace.root.attributes
    assert trace.root.start <= trace.spans[1].start <= trace.spans[1].end <= trace.root.end
