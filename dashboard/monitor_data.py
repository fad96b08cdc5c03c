"""Cached readers and pure aggregations for the monitoring pages (Overview, Quality & Drift,
Traces, Tools, Alerts), through ``core.monitoring.queries`` and ``core.calls.queries``.

Read-only like ``dashboard.data`` (whose engine and database URL it shares). The readers return
frames of one row per call, per event or per alert; the aggregations below them are pure
functions of those frames (no streamlit, no database), so the pages stay thin and the numbers
are testable on their own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
import streamlit as st
from sqlmodel import Session

from core.calls import queries as call_queries
from core.db import utcnow
from core.monitoring import queries
from core.monitoring.drift import DriftMonitor
from core.monitoring.scorecard import LAYERS
from dashboard.data import TTL_S, database_url, get_engine

PERIODS = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30),
           "90d": timedelta(days=90)}  # fmt: skip
DEFAULT_PERIOD = "30d"
NO_VERSION = "(none)"
METRICS = ["words_per_agent_turn", "grounded_ratio", "tool_calls", "tool_failures",
           "context_fetch_ms", "stale_hits"]  # fmt: skip
CALL_COLUMNS = ["time", "day", "agent_id", "platform", "call_id", "caller", "status",
                "ended_reason", "prompt_version", "score", *LAYERS, *METRICS, "all_grounded",
                "contained"]  # fmt: skip
FETCH_COLUMNS = ["at", "day", "agent_id", "platform", "call_id", "prompt_version", "latency_ms"]
TOOL_COLUMNS = ["at", "day", "agent_id", "platform", "call_id", "prompt_version", "tool",
                "server", "status", "ok", "latency_ms", "attempts", "breaker"]  # fmt: skip
ALERT_COLUMNS = ["id", "created_at", "agent_id", "kind", "severity", "state", "message",
                 "subject", "acknowledged_by", "resolved_at", "resolution", "deliveries",
                 "delivery_status"]  # fmt: skip
DELIVERY_COLUMNS = ["alert_id", "kind", "channel", "channel_kind", "event", "status", "attempts",
                    "last_error", "response_status", "created_at", "sent_at"]  # fmt: skip
MARKER_KINDS = ("drift_", "score_threshold")
ALERT_STATES = ("firing", "acknowledged", "resolved")


@dataclass(frozen=True)
class Filters:
    """What every monitoring page filters on: an agent (None: all), prompt versions (empty:
    all) and a period ending now."""

    agent_id: str | None
    versions: tuple[str, ...]
    period: str = DEFAULT_PERIOD

    @property
    def span(self) -> timedelta:
        return PERIODS[self.period]


def _session(url: str) -> Session:
    return Session(get_engine(url))


def _since(period: str) -> datetime:
    return utcnow() - PERIODS[period]


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


# -- readers ---------------------------------------------------------------------------------


@st.cache_data(ttl=TTL_S, show_spinner=False)
def _calls(url: str, agent_id: str | None, period: str) -> pd.DataFrame:
    with _session(url) as session:
        rows = queries.call_quality_rows(session, _since(period), agent_id)
    records = []
    for r in rows:
        metrics = r["metrics"]
        records.append(
            {
                **{k: r[k] for k in ("time", "agent_id", "platform", "call_id", "status")},
                "caller": r["caller_display"] or "unknown caller",
                "ended_reason": r["ended_reason"],
                "prompt_version": r["prompt_version"] or NO_VERSION,
                "score": r["score"],
                **{name: _number(r["layers"].get(name)) for name in LAYERS},
                **{name: _number(metrics.get(name)) for name in METRICS},
                "all_grounded": metrics.get("all_grounded"),
                "contained": metrics.get("contained"),
            }
        )
    frame = pd.DataFrame(records, columns=CALL_COLUMNS)
    frame["time"] = pd.to_datetime(frame["time"], utc=True)
    frame["day"] = frame["time"].dt.floor("D")
    for column in ("score", *LAYERS, *METRICS):
        frame[column] = pd.to_numeric(frame[column])
    return frame


def calls(filters: Filters) -> pd.DataFrame:
    """One row per call of the period (abandoned left out): time, day, ids, masked caller,
    prompt version, score, the four layer scores and the scorecard metrics."""
    return by_versions(_calls(database_url(), filters.agent_id, filters.period), filters)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def _events(url: str, kind: str, agent_id: str | None, period: str) -> list[dict[str, Any]]:
    with _session(url) as session:
        return queries.call_event_rows(session, [kind], _since(period), agent_id)


def _event_frame(rows: list[dict[str, Any]], columns: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=columns)
    frame["at"] = pd.to_datetime(frame["at"], utc=True)
    frame["day"] = frame["at"].dt.floor("D")
    frame["prompt_version"] = frame["prompt_version"].fillna(NO_VERSION)
    frame["latency_ms"] = pd.to_numeric(frame["latency_ms"])
    return frame


def context_fetches(filters: Filters) -> pd.DataFrame:
    """One row per context fetch (``context_request`` event) with its latency."""
    rows = [
        {**r, "latency_ms": _number(r["data"].get("latency_ms"))}
        for r in _events(database_url(), "context_request", filters.agent_id, filters.period)
    ]
    frame = _event_frame(rows, FETCH_COLUMNS)
    return by_versions(frame.dropna(subset=["latency_ms"]), filters)


def tool_calls(filters: Filters) -> pd.DataFrame:
    """One row per tool call the gateway ran (``tool_call`` event): tool, server, status,
    latency, attempts and the server's breaker state at the time."""
    rows = []
    for r in _events(database_url(), "tool_call", filters.agent_id, filters.period):
        d = r["data"]
        status = str(d.get("status") or ("ok" if d.get("ok") else "tool_error"))
        rows.append(
            {
                **r,
                "tool": str(d.get("tool") or "?"),
                "server": str(d.get("server") or "builtin"),
                "status": status,
                "ok": bool(d.get("ok", status == "ok")),
                "latency_ms": _number(d.get("latency_ms")),
                "attempts": d.get("attempts"),
                "breaker": d.get("breaker") or "—",
            }
        )
    return by_versions(_event_frame(rows, TOOL_COLUMNS), filters)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def _alerts(url: str, agent_id: str | None, period: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    with _session(url) as session:
        rows = queries.alert_rows(session, _since(period), agent_id)
    alerts = pd.DataFrame(
        [
            {
                **r,
                "deliveries": len(r["deliveries"]),
                "delivery_status": ", ".join(sorted({d["status"] for d in r["deliveries"]})),
            }
            for r in rows
        ],
        columns=ALERT_COLUMNS,
    )
    deliveries = pd.DataFrame(
        [{**d, "alert_id": r["id"], "kind": r["kind"]} for r in rows for d in r["deliveries"]],
        columns=DELIVERY_COLUMNS,
    )
    for frame, columns in ((alerts, ("created_at", "resolved_at")),
                           (deliveries, ("created_at", "sent_at"))):  # fmt: skip
        for column in columns:
            frame[column] = pd.to_datetime(frame[column], utc=True)
    return alerts, deliveries


def alerts(filters: Filters) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Alerts raised in the period, newest first, and their deliveries (one row each)."""
    return _alerts(database_url(), filters.agent_id, filters.period)


DRIFT_COLUMNS = [
    "agent_id", "prompt_version", "metric", "phase", "baseline", "reference_calls",
    "closest_to_alarm", "direction", "window_calls", "calls_seen", "updated_at",
]  # fmt: skip


def drift_rows(row: dict[str, Any]) -> list[dict[str, Any]]:
    """One stored drift state as readable rows, one per watched metric
    (``DriftMonitor.summary()``): its phase (reference, watching, alarmed), the baseline, and
    how close the nearest detector is to alarming (``closest_to_alarm``: statistic over
    threshold, 1 alarms). A state this version cannot read says so instead of failing."""
    base = {
        "agent_id": row.get("agent_id"),
        "prompt_version": row.get("prompt_version"),
        "calls_seen": row.get("calls_seen"),
        "updated_at": row.get("updated_at"),
    }
    state = row.get("state")
    if isinstance(state, str):
        state = json.loads(state)
    try:
        summary = DriftMonitor.from_state(state or {}).summary()
    except (KeyError, TypeError, ValueError) as exc:
        return [base | {"metric": "—", "phase": f"unreadable state ({exc})"}]
    out = []
    for metric, m in summary.items():
        item = base | {
            "metric": metric,
            "phase": m["phase"],
            "reference_calls": m["reference_calls"],
        }
        if m["phase"] == "reference":
            item["window_calls"] = f"reference {m['reference_calls']} of {m['needed']}"
        else:
            direction, cusum = max(m["cusum"].items(), key=lambda kv: kv[1]["fraction"])
            item |= {
                "baseline": round(m["baseline"], 3),
                "closest_to_alarm": round(cusum["fraction"], 3),
                "direction": direction,
                "window_calls": f"{m['window']['calls']} of {m['window']['of']}",
            }
        out.append(item)
    return out


@st.cache_data(ttl=TTL_S, show_spinner=False)
def _drift_states(url: str) -> pd.DataFrame | None:
    with _session(url) as session:
        rows = queries.drift_state_rows(session)
    if rows is None:
        return None
    shown = [item for row in rows for item in drift_rows(row)]
    return pd.DataFrame(shown, columns=DRIFT_COLUMNS)


def drift_states(agent_id: str | None = None) -> pd.DataFrame | None:
    """The drift detectors' stored state, one row per agent, prompt version and metric
    (``drift_rows``), or None when the schema has no drift state table yet."""
    frame = _drift_states(database_url())
    if frame is not None and agent_id:
        frame = frame[frame["agent_id"] == agent_id].reset_index(drop=True)
    return frame


@st.cache_data(ttl=TTL_S, show_spinner=False)
def _trace(url: str, agent_id: str, platform: str, call_id: str) -> dict[str, Any] | None:
    with _session(url) as session:
        trace = call_queries.get_call_trace(session, agent_id, platform, call_id)
    return None if trace is None else dict(trace)


def trace(agent_id: str, platform: str, call_id: str) -> dict[str, Any] | None:
    """One call's stored trace (``core.calls.queries.get_call_trace``), events kept as dicts."""
    return _trace(database_url(), agent_id, platform, call_id)


# -- pure aggregations -----------------------------------------------------------------------


def by_versions(frame: pd.DataFrame, filters: Filters) -> pd.DataFrame:
    if not filters.versions:
        return frame.reset_index(drop=True)
    return frame[frame["prompt_version"].isin(filters.versions)].reset_index(drop=True)


def version_options(frame: pd.DataFrame) -> list[str]:
    """Prompt versions present, newest first (``vN`` by number), no version last."""

    def key(ref: str) -> tuple[int, int]:
        digits = ref[1:]
        return (0, -int(digits)) if ref.startswith("v") and digits.isdigit() else (1, 0)

    return sorted({str(v) for v in frame["prompt_version"].dropna()}, key=key)


def daily_by_version(calls: pd.DataFrame, fetches: pd.DataFrame) -> pd.DataFrame:
    """Per day and prompt version: calls, mean score, containment rate, context-fetch latency
    p50 and p95."""
    columns = ["day", "prompt_version", "calls", "mean_score", "containment",
               "fetch_p50_ms", "fetch_p95_ms"]  # fmt: skip
    if calls.empty and fetches.empty:
        return pd.DataFrame(columns=columns)
    contained = calls.assign(contained_n=pd.to_numeric(calls["contained"].map(_flag)))
    per_call = contained.groupby(["day", "prompt_version"]).agg(
        calls=("call_id", "count"),
        mean_score=("score", "mean"),
        containment=("contained_n", "mean"),
    )
    per_fetch = fetches.groupby(["day", "prompt_version"])["latency_ms"].agg(
        fetch_p50_ms=lambda s: s.quantile(0.5), fetch_p95_ms=lambda s: s.quantile(0.95)
    )
    out = per_call.join(per_fetch, how="outer").reset_index()
    out["calls"] = out["calls"].fillna(0).astype(int)
    return out.sort_values(["day", "prompt_version"]).reset_index(drop=True)[columns]


def _flag(value: Any) -> float | None:
    return float(value) if isinstance(value, bool) else None


def daily_distributions(calls: pd.DataFrame) -> pd.DataFrame:
    """Per call and day, the values the Quality & Drift charts plot: the layer scores, words
    per agent turn, grounded (0/1), tool failure rate and stale hits."""
    frame = calls.copy()
    frame["grounded"] = pd.to_numeric(frame["all_grounded"].map(_flag))
    calls_made = frame["tool_calls"].where(frame["tool_calls"] > 0)
    frame["tool_failure_rate"] = frame["tool_failures"] / calls_made
    return frame


def summary(calls: pd.DataFrame, fetches: pd.DataFrame) -> dict[str, float | int | None]:
    scored = calls["score"].dropna()
    contained = calls["contained"].map(_flag).dropna()
    latency = fetches["latency_ms"].dropna()
    return {
        "calls": len(calls),
        "mean_score": float(scored.mean()) if len(scored) else None,
        "containment": float(contained.mean()) if len(contained) else None,
        "fetch_p50_ms": float(latency.quantile(0.5)) if len(latency) else None,
        "fetch_p95_ms": float(latency.quantile(0.95)) if len(latency) else None,
    }


def tool_summary(tools: pd.DataFrame) -> pd.DataFrame:
    """Per tool (and its server): calls, failures, failure rate, latency p50 and p95."""
    columns = ["tool", "server", "calls", "failures", "failure_rate", "p50_ms", "p95_ms",
               "statuses"]  # fmt: skip
    if tools.empty:
        return pd.DataFrame(columns=columns)
    rows = []
    for (tool, server), group in tools.groupby(["tool", "server"]):
        latency = group["latency_ms"].dropna()
        failures = int((~group["ok"].astype(bool)).sum())
        counts = group["status"].value_counts()
        rows.append(
            {
                "tool": tool,
                "server": server,
                "calls": len(group),
                "failures": failures,
                "failure_rate": failures / len(group),
                "p50_ms": float(latency.quantile(0.5)) if len(latency) else None,
                "p95_ms": float(latency.quantile(0.95)) if len(latency) else None,
                "statuses": ", ".join(f"{s} {n}" for s, n in counts.items()),
            }
        )
    return pd.DataFrame(rows, columns=columns).sort_values(["tool", "server"], ignore_index=True)


def breaker_states(tools: pd.DataFrame) -> pd.DataFrame:
    """Per server: the breaker state its latest tool call saw, when, and how many of its calls
    in the period met an open breaker."""
    columns = ["server", "breaker", "as_of", "calls", "breaker_open_calls", "failures"]
    if tools.empty:
        return pd.DataFrame(columns=columns)
    rows = []
    for server, group in tools.sort_values("at").groupby("server"):
        last = group.iloc[-1]
        rows.append(
            {
                "server": server,
                "breaker": last["breaker"],
                "as_of": last["at"],
                "calls": len(group),
                "breaker_open_calls": int((group["breaker"] == "open").sum()),
                "failures": int((~group["ok"].astype(bool)).sum()),
            }
        )
    return pd.DataFrame(rows, columns=columns)


def alert_markers(alerts: pd.DataFrame) -> pd.DataFrame:
    """The alerts drawn as vertical markers on the quality charts: drift and score threshold."""
    if alerts.empty:
        return alerts
    keep = alerts["kind"].map(lambda k: str(k).startswith(MARKER_KINDS))
    return alerts[keep].reset_index(drop=True)


def calls_behind(calls: pd.DataFrame, day: Any, version: str | None) -> pd.DataFrame:
    """The calls behind one chart point: a day (any time in it) and, optionally, a version."""
    when = pd.Timestamp(day)
    when = when.tz_localize("UTC") if when.tzinfo is None else when.tz_convert("UTC")
    picked = calls[calls["day"] == when.floor("D")]
    if version:
        picked = picked[picked["prompt_version"] == version]
    return picked.sort_values("time", ascending=False).reset_index(drop=True)


def timeline(trace: dict[str, Any]) -> pd.DataFrame:
    """One row per thing that happened in a call, for its timeline chart: transcript turns
    (at their offset from the start), context fetches, retrievals (chunk ids, freshness) and
    tool calls (status, latency, breaker); other events as they were recorded."""
    columns = ["at", "lane", "label", "detail", "duration_ms", "ok"]
    started = trace.get("started_at")
    rows: list[dict[str, Any]] = []
    if started is not None:
        for turn in trace.get("transcript") or []:
            offset = _number(turn.get("seconds_from_start"))
            if offset is None:
                continue
            role = "agent" if turn.get("role") in ("agent", "bot") else "caller"
            rows.append(
                {
                    "at": started + timedelta(seconds=offset),
                    "lane": f"{role} turn",
                    "label": role,
                    "detail": str(turn.get("text", "")),
                    "duration_ms": None,
                    "ok": True,
                }
            )
    for event in trace.get("events") or []:
        data = event["data"] or {}
        kind = event["type"]
        row: dict[str, Any] = {"at": event["at"], "duration_ms": _number(data.get("latency_ms"))}
        if kind == "context_request":
            version = data.get("prompt_version")
            row |= {"lane": "context fetch", "label": f"prompt {version}" if version else "context",
                    "detail": f"known caller: {data.get('caller_known')}", "ok": True}  # fmt: skip
        elif kind in ("knowledge_retrieval", "knowledge_request"):
            pairs = zip(data.get("chunk_ids") or [], data.get("freshness") or [], strict=False)
            chunks = ", ".join(f"{c} ({f})" for c, f in pairs) or "no chunk"
            withheld = data.get("withheld") or []
            stale = any(f != "fresh" for f in data.get("freshness") or []) or bool(withheld)
            row |= {"lane": "retrieval", "label": str(data.get("status") or "retrieval"),
                    "detail": chunks + (f"; withheld {', '.join(map(str, withheld))}"
                                        if withheld else ""),
                    "ok": not stale}  # fmt: skip
        elif kind == "tool_call":
            row |= {"lane": "tool call", "label": f"{data.get('tool')} · {data.get('status')}",
                    "detail": f"server {data.get('server')}, breaker {data.get('breaker')}, "
                              f"attempts {data.get('attempts')}",
                    "ok": bool(data.get("ok"))}  # fmt: skip
        else:
            row |= {"lane": "event", "label": kind,
                    "detail": json.dumps(data, sort_keys=True, default=str)[:200],
                    "ok": True}  # fmt: skip
        rows.append(row)
    frame = pd.DataFrame(rows, columns=columns)
    frame["at"] = pd.to_datetime(frame["at"], utc=True)
    frame["duration_ms"] = pd.to_numeric(frame["duration_ms"])
    return frame.sort_values("at", kind="stable").reset_index(drop=True)


def search_calls(
    calls: pd.DataFrame,
    call_id: str = "",
    min_score: float | None = None,
    max_score: float | None = None,
) -> pd.DataFrame:
    """Calls whose id contains ``call_id`` and whose score is within the bounds (an unscored
    call passes only when no bound is set), newest first."""
    picked = calls
    if call_id.strip():
        picked = picked[picked["call_id"].str.contains(call_id.strip(), case=False, regex=False)]
    if min_score is not None:
        picked = picked[picked["score"] >= min_score]
    if max_score is not None:
        picked = picked[picked["score"] <= max_score]
    return picked.sort_values("time", ascending=False).reset_index(drop=True)
