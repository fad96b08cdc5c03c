"""Exports a call's trace (``core.monitoring.traces``) over OTLP/HTTP (protobuf) with the
OpenTelemetry SDK: to any collector (``BACKLINE_OTLP_ENDPOINT``), to Langfuse (its OTLP
endpoint, ``{BACKLINE_LANGFUSE_HOST}/api/public/otel/v1/traces``, Basic auth with the project's
keys), or both.

The spans are not recorded live: they are made from the stored rows after the call was scored,
each with its own start and end time. Ids are derived, not random: the trace id from
(agent, platform, call id) and each span id from its key in the trace, so exporting the same
call again sends the same trace.

The endpoints are the operator's (settings), never a tenant's: this connector does not go
through the egress policy that guards tenant-aimed URLs (docs/monitoring.md#traces).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.util.types import AttributeValue

from core.monitoring.traces import CallTrace, TraceExportError, TraceSpan
from core.settings import Settings

log = logging.getLogger(__name__)

SERVICE_NAME = "backline"
SCOPE = InstrumentationScope("backline.call_traces")
TRACES_PATH = "/v1/traces"
LANGFUSE_TRACES_PATH = "/api/public/otel/v1/traces"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def trace_id_for(agent_id: str, platform: str, call_id: str) -> int:
    """The 128-bit trace id of a call: the same call always gets the same id."""
    digest = hashlib.sha256(f"backline-trace\0{agent_id}\0{platform}\0{call_id}".encode()).digest()
    return int.from_bytes(digest[:16], "big") or 1


def span_id_for(trace_id: int, key: str) -> int:
    digest = hashlib.sha256(f"{trace_id:032x}\0{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") or 1


def _nanos(value: datetime) -> int:
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return (aware - _EPOCH) // timedelta(microseconds=1) * 1000


def _attributes(span: TraceSpan) -> dict[str, AttributeValue]:
    out: dict[str, AttributeValue] = {}
    for name, value in span.attributes.items():
        out[name] = tuple(value) if isinstance(value, list | tuple) else value
    return out


def readable_spans(trace: CallTrace, resource: Resource) -> list[ReadableSpan]:
    """The trace as SDK spans with explicit ids, parents and timestamps."""
    trace_id = trace_id_for(trace.agent_id, trace.platform, trace.call_id)
    flags = TraceFlags(TraceFlags.SAMPLED)

    def context(key: str) -> SpanContext:
        return SpanContext(trace_id, span_id_for(trace_id, key), is_remote=False, trace_flags=flags)

    return [
        ReadableSpan(
            name=span.name,
            context=context(span.key),
            parent=context(span.parent) if span.parent is not None else None,
            resource=resource,
            attributes=_attributes(span),
            kind=SpanKind.SERVER if span.parent is None else SpanKind.INTERNAL,
            status=Status(StatusCode.ERROR) if span.error else Status(StatusCode.UNSET),
            start_time=_nanos(span.start),
            end_time=_nanos(span.end),
            instrumentation_scope=SCOPE,
        )
        for span in trace.spans
    ]


@dataclass(frozen=True)
class OtlpTarget:
    """One place traces go: its name (for logs), the full traces URL and the headers."""

    name: str
    endpoint: str
    headers: Mapping[str, str]


def traces_url(endpoint: str) -> str:
    """A collector's base URL (``http://collector:4318``) gets the OTLP traces path; a URL that
    already ends with it is kept."""
    trimmed = endpoint.rstrip("/")
    return trimmed if trimmed.endswith(TRACES_PATH) else trimmed + TRACES_PATH


def langfuse_target(host: str, public_key: str, secret_key: str) -> OtlpTarget:
    token = base64.b64encode(f"{public_key}:{secret_key}".encode()).decode()
    return OtlpTarget(
        name="langfuse",
        endpoint=host.rstrip("/") + LANGFUSE_TRACES_PATH,
        headers={"Authorization": f"Basic {token}", "x-langfuse-ingestion-version": "4"},
    )


def targets_from_settings(settings: Settings) -> list[OtlpTarget]:
    targets: list[OtlpTarget] = []
    if settings.otlp_endpoint:
        endpoint = traces_url(settings.otlp_endpoint)
        targets.append(OtlpTarget("otlp", endpoint, settings.otlp_header_map()))
    if settings.langfuse_configured:
        assert settings.langfuse_host and settings.langfuse_public_key
        assert settings.langfuse_secret_key is not None
        targets.append(
            langfuse_target(
                settings.langfuse_host,
                settings.langfuse_public_key,
                settings.langfuse_secret_key.get_secret_value(),
            )
        )
    return targets


class OtlpTraceExporter:
    """``TraceExporter`` over OTLP/HTTP protobuf, to one or more targets. The worker scores
    calls in a thread pool: each thread gets its own SDK exporters (an SDK exporter expects one
    caller at a time), so a slow collector delays only the export it is answering. A target that
    fails does not stop the others; one error naming the failed targets is raised after all
    were tried."""

    def __init__(
        self,
        targets: Sequence[OtlpTarget],
        timeout_s: float = 3.0,
        exporter_factory: Callable[[OtlpTarget], SpanExporter] | None = None,
    ) -> None:
        if not targets:
            raise ValueError("OtlpTraceExporter needs at least one target")
        self._targets = list(targets)
        self._timeout_s = timeout_s
        self._factory = exporter_factory or self._otlp_exporter
        self._resource = Resource.create({"service.name": SERVICE_NAME})
        self._local = threading.local()
        self._all: list[SpanExporter] = []
        self._all_lock = threading.Lock()

    @property
    def targets(self) -> list[OtlpTarget]:
        return list(self._targets)

    def _otlp_exporter(self, target: OtlpTarget) -> SpanExporter:
        return OTLPSpanExporter(
            endpoint=target.endpoint, headers=dict(target.headers), timeout=self._timeout_s
        )

    def _exporters(self) -> list[SpanExporter]:
        mine: list[SpanExporter] | None = getattr(self._local, "exporters", None)
        if mine is None:
            mine = [self._factory(t) for t in self._targets]
            self._local.exporters = mine
            with self._all_lock:
                self._all.extend(mine)
        return mine

    def export(self, trace: CallTrace) -> None:
        spans = readable_spans(trace, self._resource)
        failed: list[str] = []
        for target, exporter in zip(self._targets, self._exporters(), strict=True):
            try:
                result = exporter.export(spans)
            except Exception as exc:  # an exporter bug must not fail the call's scoring
                log.warning("trace export to %s raised: %s", target.name, exc)
                result = SpanExportResult.FAILURE
            if result is not SpanExportResult.SUCCESS:
                failed.append(target.name)
        if failed:
            raise TraceExportError(
                f"trace of call {trace.platform}/{trace.call_id} not accepted by "
                f"{', '.join(failed)}"
            )

    def shutdown(self) -> None:
        with self._all_lock:
            exporters, self._all = self._all, []
        for exporter in exporters:
            exporter.shutdown()


def build_trace_exporter(settings: Settings) -> OtlpTraceExporter | None:
    """The exporter the settings describe, or None when no endpoint is configured (then
    nothing is exported)."""
    targets = targets_from_settings(settings)
    if not targets:
        return None
    return OtlpTraceExporter(targets, timeout_s=settings.trace_export_timeout_s)
