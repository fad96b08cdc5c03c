"""A call as a trace: a tree of timed spans built from what the call stored, and the port an
exporter (OpenTelemetry, Langfuse) implements.

Pure: the builder reads rows already loaded (the call, its events, its tool invocations, its
score) and returns values; it opens nothing and sends nothing. Every text it carries was stored
redacted (transcripts, event data); the caller's number is never stored, and the builder does
not carry the masked display or the caller hash either. Tool arguments, tool results and
retrieval queries stay out: a trace names what happened, the call's pages show the words.

Shape (``docs/monitoring.md#traces``)::

    call                        agent, platform, call id, prompt version, score and layers
    ├── context_fetch           latency, caller known, prompt version served
    ├── retrieval               chunk ids, freshness, outdated / withheld chunks, status
    ├── tool_call               tool, server, status, latency, breaker state, attempts
    └── turn                    role, the stored (redacted) text

Start and end times come from the rows: an event is stored when its work finished, so its span
ends at the event's time and starts ``latency_ms`` before; a turn starts at its offset from the
call's start and ends where the next turn starts (the last one at the call's end).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from core.calls.models import Call, CallEvent
from core.monitoring.models import CallScore
from core.tools.models import ToolInvocation

# One attribute value as OpenTelemetry takes it: a scalar or a homogeneous list of scalars.
AttributeValue = str | bool | int | float | Sequence[str] | Sequence[int] | Sequence[float]

CONTEXT_EVENT = "context_request"
RETRIEVAL_EVENTS = ("knowledge_retrieval", "knowledge_request")
TOOL_EVENT = "tool_call"
EVAL_PLATFORM = "eval"
LAYERS = ("infrastructure", "execution", "reaction", "outcome")
# Score metrics copied onto the root span (numbers and flags only).
_ROOT_METRICS = (
    "tool_calls",
    "tool_failures",
    "context_fetch_ms",
    "stale_hits",
    "grounded_ratio",
    "all_grounded",
    "turn_latency_ms",
)
_TURN_TEXT_LIMIT = 2000


class TraceExportError(Exception):
    """The trace could not be delivered (collector down, refused, timed out)."""


@dataclass(frozen=True)
class TraceSpan:
    """One span: ``key`` is unique within its trace (an exporter derives span ids from it),
    ``parent`` is the parent's key (None for the root)."""

    key: str
    name: str
    start: datetime
    end: datetime
    parent: str | None = None
    attributes: Mapping[str, AttributeValue] = field(default_factory=dict)
    error: bool = False


@dataclass(frozen=True)
class CallTrace:
    """One call's spans, the root first. ``agent_id``, ``platform`` and ``call_id`` identify
    the call, so the same call always makes the same trace (an exporter derives the trace id
    from them: exporting again replaces nothing and duplicates nothing in a store that
    deduplicates by id)."""

    org_id: str
    agent_id: str
    platform: str
    call_id: str
    spans: tuple[TraceSpan, ...]

    @property
    def root(self) -> TraceSpan:
        return self.spans[0]

    def children(self, key: str) -> list[TraceSpan]:
        return [s for s in self.spans if s.parent == key]


class TraceExporter(Protocol):
    """Delivers a call's trace somewhere (an OTLP collector, Langfuse). Raises
    ``TraceExportError`` when it could not; the caller decides what that costs (the post-call
    step logs it and goes on)."""

    def export(self, trace: CallTrace) -> None: ...


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _strings(values: Any) -> list[str]:
    if not isinstance(values, list):
        return []
    return [str(v) for v in values if v is not None]


def _put(attrs: dict[str, AttributeValue], name: str, value: Any) -> None:
    """Keep a scalar (or a list of strings); drop None, containers and anything else."""
    if value is None:
        return
    if isinstance(value, bool | int | float | str):
        attrs[name] = value
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        attrs[name] = list(value)


def _timed(at: datetime, latency_ms: float | None) -> tuple[datetime, datetime]:
    end = _aware(at)
    return end - timedelta(milliseconds=max(latency_ms or 0.0, 0.0)), end


def _context_span(key: str, event: CallEvent) -> TraceSpan:
    data = dict(event.data or {})
    latency = _number(data.get("latency_ms"))
    start, end = _timed(event.at, latency)
    attrs: dict[str, AttributeValue] = {"backline.event": event.type}
    _put(attrs, "backline.latency_ms", latency)
    _put(attrs, "backline.caller_known", data.get("caller_known"))
    _put(attrs, "backline.prompt.version", data.get("prompt_version"))
    _put(attrs, "backline.prompt.source", data.get("prompt_source"))
    _put(attrs, "backline.no_memory", data.get("no_memory"))
    return TraceSpan(key, "context_fetch", start, end, "call", attrs)


def _retrieval_span(key: str, event: CallEvent) -> TraceSpan:
    data = dict(event.data or {})
    latency = _number(data.get("latency_ms"))
    start, end = _timed(event.at, latency)
    chunk_ids = _strings(data.get("chunk_ids"))
    freshness = [str(f) if f is not None else "unknown" for f in data.get("freshness") or []]
    withheld = _strings(data.get("withheld"))
    outdated = [
        cid for cid, fresh in zip(chunk_ids, freshness, strict=False) if fresh not in ("fresh",)
    ]
    attrs: dict[str, AttributeValue] = {
        "backline.event": event.type,
        "backline.retrieval.chunk_ids": chunk_ids,
        "backline.retrieval.freshness": freshness,
        "backline.retrieval.outdated_chunk_ids": outdated,
        "backline.retrieval.withheld_chunk_ids": withheld,
        "backline.retrieval.stale": bool(outdated or withheld),
    }
    _put(attrs, "backline.retrieval.status", data.get("status"))
    _put(attrs, "backline.retrieval.via", data.get("via") or event.platform_type)
    _put(attrs, "backline.retrieval.sources", _strings(data.get("sources")))
    _put(attrs, "backline.latency_ms", latency)
    return TraceSpan(key, "retrieval", start, end, "call", attrs)


def _tool_span(key: str, event: CallEvent, invocation: ToolInvocation | None) -> TraceSpan:
    data = dict(event.data or {})
    latency = _number(data.get("latency_ms"))
    start, end = _timed(event.at, latency)
    ok = bool(data.get("ok", data.get("status") == "ok"))
    attrs: dict[str, AttributeValue] = {"backline.event": event.type, "backline.tool.ok": ok}
    _put(attrs, "backline.tool.name", data.get("tool"))
    _put(attrs, "backline.tool.server", data.get("server"))
    _put(attrs, "backline.tool.server_tool", data.get("server_tool"))
    _put(attrs, "backline.tool.status", data.get("status") or ("ok" if ok else "tool_error"))
    _put(attrs, "backline.tool.breaker", data.get("breaker"))
    _put(attrs, "backline.tool.attempts", data.get("attempts"))
    _put(attrs, "backline.tool.duplicate", data.get("duplicate"))
    _put(attrs, "backline.latency_ms", latency)
    if invocation is not None:
        # The idempotency ledger's row of a side-effecting call: how its first run ended.
        _put(attrs, "backline.tool.invocation_status", invocation.status)
        _put(attrs, "backline.tool.outcome_status", invocation.outcome_status)
        _put(attrs, "backline.tool.tool_call_id", invocation.tool_call_id)
    return TraceSpan(key, "tool_call", start, end, "call", attrs, error=not ok)


def _turn_spans(call: Call, call_start: datetime, call_end: datetime) -> list[TraceSpan]:
    turns = [t for t in call.transcript or [] if isinstance(t, dict)]
    offsets = [_number(t.get("seconds_from_start")) for t in turns]
    spans: list[TraceSpan] = []
    for i, turn in enumerate(turns):
        offset = offsets[i]
        start = call_start + timedelta(seconds=offset) if offset is not None else call_start
        later = next((o for o in offsets[i + 1 :] if o is not None), None)
        end = call_start + timedelta(seconds=later) if later is not None else call_end
        end = max(min(end, call_end), start)
        text = str(turn.get("text") or "")
        attrs: dict[str, AttributeValue] = {
            "backline.turn.index": i,
            "backline.turn.role": str(turn.get("role") or "?"),
            "backline.turn.text": text[:_TURN_TEXT_LIMIT],
        }
        if offset is not None:
            attrs["backline.turn.seconds_from_start"] = offset
        spans.append(TraceSpan(f"turn/{i}", "turn", start, end, "call", attrs))
    return spans


def _match_invocations(
    events: Sequence[CallEvent], invocations: Iterable[ToolInvocation]
) -> dict[int, ToolInvocation]:
    """Pairs each ledger row with a tool_call event of the same tool, in order."""
    pending: dict[str, list[ToolInvocation]] = {}
    for row in sorted(invocations, key=lambda r: (_aware(r.created_at), r.id or 0)):
        pending.setdefault(row.tool, []).append(row)
    matched: dict[int, ToolInvocation] = {}
    for i, event in enumerate(events):
        rows = pending.get(str((event.data or {}).get("tool")))
        if rows:
            matched[i] = rows.pop(0)
    return matched


def build_call_trace(
    call: Call,
    events: Sequence[CallEvent],
    invocations: Iterable[ToolInvocation] = (),
    score: CallScore | None = None,
) -> CallTrace:
    """The call's trace from its stored rows (see the module docstring for the shape)."""
    ordered = sorted(events, key=lambda e: (_aware(e.at), e.id or 0))
    children: list[TraceSpan] = []
    counts: dict[str, int] = {}

    def key(kind: str) -> str:
        counts[kind] = counts.get(kind, 0) + 1
        return f"{kind}/{counts[kind] - 1}"

    tool_events = [e for e in ordered if e.type == TOOL_EVENT]
    matched = _match_invocations(tool_events, invocations)
    tool_index = 0
    for event in ordered:
        if event.type == CONTEXT_EVENT:
            children.append(_context_span(key("context"), event))
        elif event.type in RETRIEVAL_EVENTS:
            children.append(_retrieval_span(key("retrieval"), event))
        elif event.type == TOOL_EVENT:
            children.append(_tool_span(key("tool"), event, matched.get(tool_index)))
            tool_index += 1

    times = [s.start for s in children] + [s.end for s in children]
    start = _aware(call.started_at) if call.started_at else min(times, default=None)
    end = _aware(call.ended_at) if call.ended_at else max(times, default=None)
    fallback = _aware(call.updated_at or call.created_at)
    start = start or fallback
    end = max(end or start, start)
    children.extend(_turn_spans(call, start, end))
    # A span recorded before the call's reported start (a context fetch at ring time) widens
    # the root, so every child lies inside its parent.
    start = min([start, *(s.start for s in children)])
    end = max([end, *(s.end for s in children)])

    prompt_version = call.prompt_version or (score.prompt_version if score else None)
    root: dict[str, AttributeValue] = {
        "backline.org_id": call.org_id,
        "backline.agent_id": call.agent_id,
        "backline.platform": call.platform,
        "backline.call_id": call.platform_call_id,
        "backline.call.status": call.status,
        "backline.eval": call.platform == EVAL_PLATFORM,
        "backline.turns": len(call.transcript or []),
    }
    _put(root, "backline.prompt.version", prompt_version)
    _put(root, "backline.call.direction", call.direction)
    _put(root, "backline.call.ended_reason", call.ended_reason)
    _put(root, "backline.call.summary_method", call.summary_method)
    analysis = call.analysis or {}
    _put(root, "backline.call.transferred", analysis.get("transferred"))
    if score is not None:
        root["backline.score"] = float(score.score)
        for layer in LAYERS:
            value = (score.layers or {}).get(layer)
            if isinstance(value, dict):
                _put(root, f"backline.score.{layer}", _number(value.get("score")))
        for name in _ROOT_METRICS:
            value = (score.metrics or {}).get(name)
            _put(
                root,
                f"backline.metrics.{name}",
                value if isinstance(value, bool) else _number(value),
            )
    # A failed tool call is marked on its own span; the root is an error only when the call
    # itself went wrong.
    failed = call.status == "abandoned" or call.ended_reason == "error"
    spans = (TraceSpan("call", "call", start, end, None, root, error=failed), *children)
    return CallTrace(
        org_id=call.org_id,
        agent_id=call.agent_id,
        platform=call.platform,
        call_id=call.platform_call_id,
        spans=spans,
    )
