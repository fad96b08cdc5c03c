"""The OTLP exporter's pieces without a network: derived ids, SDK spans with explicit times and
parents, one failing target not stopping the others, one set of SDK exporters per thread."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from connectors.otel import (
    OtlpTarget,
    OtlpTraceExporter,
    langfuse_target,
    readable_spans,
    trace_id_for,
    traces_url,
)
from core.monitoring.traces import CallTrace, TraceExportError, TraceSpan

T0 = datetime(2026, 3, 2, 9, 0, 0, tzinfo=UTC)
TRACE = CallTrace(
    org_id="org",
    agent_id="agent",
    platform="vapi",
    call_id="c1",
    spans=(
        TraceSpan("call", "call", T0, T0 + timedelta(seconds=60), None, {"backline.eval": False}),
        TraceSpan(
            "tool/0",
            "tool_call",
            T0 + timedelta(seconds=1),
            T0 + timedelta(seconds=2),
            "call",
            {"backline.retrieval.chunk_ids": ["a", "b"]},
            error=True,
        ),
    ),
)


class Recording(SpanExporter):
    def __init__(self, result: SpanExportResult = SpanExportResult.SUCCESS) -> None:
        self.result = result
        self.batches: list[Sequence[ReadableSpan]] = []
        self.threads: set[int] = set()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.batches.append(spans)
        self.threads.add(threading.get_ident())
        return self.result


def test_ids_are_derived_from_the_call() -> None:
    assert trace_id_for("agent", "vapi", "c1") == trace_id_for("agent", "vapi", "c1")
    assert trace_id_for("agent", "vapi", "c1") != trace_id_for("agent", "vapi", "c2")
    assert trace_id_for("agent", "vapi", "c1") != trace_id_for("agent", "retell", "c1")


def test_sdk_spans_keep_times_parents_and_status() -> None:
    root, tool = readable_spans(TRACE, Resource.create({"service.name": "backline"}))
    assert root.parent is None and tool.parent is not None
    assert root.context is not None and tool.context is not None
    assert tool.parent.span_id == root.context.span_id
    assert tool.context.trace_id == root.context.trace_id == trace_id_for("agent", "vapi", "c1")
    assert tool.start_time == root.start_time + 1_000_000_000
    assert root.end_time == root.start_time + 60_000_000_000
    assert tool.attributes is not None
    assert tuple(tool.attributes["backline.retrieval.chunk_ids"]) == ("a", "b")
    assert not tool.status.is_ok and root.status.is_unset
    assert root.resource.attributes["service.name"] == "backline"


def test_urls() -> None:
    assert traces_url("http://c:4318") == "http://c:4318/v1/traces"
    assert traces_url("http://c:4318/v1/traces/") == "http://c:4318/v1/traces"
    target = langfuse_target("https://lf.example/", "pk", "sk")
    assert target.endpoint == "https://lf.example/api/public/otel/v1/traces"
    assert target.headers["Authorization"] == "Basic cGs6c2s="


def test_a_failing_target_does_not_stop_the_others() -> None:
    made: dict[str, Recording] = {}

    def factory(target: OtlpTarget) -> SpanExporter:
        made[target.name] = Recording(
            SpanExportResult.FAILURE if target.name == "down" else SpanExportResult.SUCCESS
        )
        return made[target.name]

    exporter = OtlpTraceExporter(
        [OtlpTarget("down", "http://a/v1/traces", {}), OtlpTarget("up", "http://b/v1/traces", {})],
        exporter_factory=factory,
    )
    with pytest.raises(TraceExportError, match="down"):
        exporter.export(TRACE)
    assert len(made["up"].batches) == 1 and len(made["down"].batches) == 1


def test_each_thread_has_its_own_sdk_exporter() -> None:
    made: list[Recording] = []

    def factory(target: OtlpTarget) -> SpanExporter:
        made.append(Recording())
        return made[-1]

    exporter = OtlpTraceExporter(
        [OtlpTarget("otlp", "http://a/v1/traces", {})], exporter_factory=factory
    )
    exporter.export(TRACE)
    exporter.export(TRACE)
    thread = threading.Thread(target=exporter.export, args=(TRACE,))
    thread.start()
    thread.join()
    assert len(made) == 2
    assert [len(r.batches) for r in made] == [2, 1]
    exporter.shutdown()
