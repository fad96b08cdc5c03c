"""The monitoring pages' pure aggregations and chart builders, on hand-made frames: no
streamlit run, no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pandas as pd

from dashboard import monitor_charts, monitor_data
from dashboard.monitor_data import CALL_COLUMNS, FETCH_COLUMNS, TOOL_COLUMNS, Filters
from dashboard.monitor_widgets import _selected_point

DAY = pd.Timestamp("2026-12-01", tz="UTC")


def _calls() -> pd.DataFrame:
    rows = []
    for i, (version, score, contained, grounded, calls, failed) in enumerate(
        [
            ("v2", 80.0, True, True, 2, 0),
            ("v3", 60.0, False, False, 2, 1),
            ("v3", 70.0, True, None, 0, 0),
        ]
    ):
        time = DAY + timedelta(hours=9 + i)
        rows.append(
            {
                **dict.fromkeys(CALL_COLUMNS),
                "time": time,
                "day": time.floor("D"),
                "agent_id": "demo",
                "platform": "vapi",
                "call_id": f"c{i}",
                "prompt_version": version,
                "score": score,
                "contained": contained,
                "all_grounded": grounded,
                "tool_calls": float(calls),
                "tool_failures": float(failed),
            }
        )
    return pd.DataFrame(rows, columns=CALL_COLUMNS)


def _fetches() -> pd.DataFrame:
    rows = [
        {**dict.fromkeys(FETCH_COLUMNS), "at": DAY + timedelta(hours=h), "day": DAY,
         "prompt_version": v, "latency_ms": ms}
        for h, v, ms in ((9, "v2", 100.0), (10, "v3", 200.0), (11, "v3", 400.0))
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=FETCH_COLUMNS)


def _tools() -> pd.DataFrame:
    rows = [
        {**dict.fromkeys(TOOL_COLUMNS), "at": DAY + timedelta(minutes=m), "tool": tool,
         "server": server, "status": status, "ok": status == "ok", "latency_ms": ms,
         "breaker": breaker, "prompt_version": "v3", "call_id": f"c{m}"}
        for m, tool, server, status, ms, breaker in (
            (1, "book", "calendar", "ok", 100.0, "closed"),
            (2, "book", "calendar", "ok", 300.0, "closed"),
            (3, "lookup", "crm", "timeout", 5000.0, "closed"),
            (4, "lookup", "crm", "breaker_open", 0.0, "open"),
        )
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=TOOL_COLUMNS)


def test_daily_by_version_counts_means_containment_and_fetch_percentiles() -> None:
    daily = monitor_data.daily_by_version(_calls(), _fetches()).set_index("prompt_version")

    assert daily.loc["v2", "calls"] == 1 and daily.loc["v3", "calls"] == 2
    assert daily.loc["v3", "mean_score"] == 65.0
    assert daily.loc["v3", "containment"] == 0.5
    assert daily.loc["v3", "fetch_p50_ms"] == 300.0
    assert daily.loc["v3", "fetch_p95_ms"] == 390.0


def test_versions_filter_and_order() -> None:
    calls = _calls()
    assert monitor_data.version_options(calls.assign(prompt_version=["v2", "v10", "(none)"])) == [
        "v10", "v2", "(none)"]  # fmt: skip
    narrowed = monitor_data.by_versions(calls, Filters(None, ("v2",)))
    assert list(narrowed["call_id"]) == ["c0"]


def test_distributions_derive_grounded_and_tool_failure_rate() -> None:
    frame = monitor_data.daily_distributions(_calls())

    assert list(frame["grounded"].fillna(-1)) == [1.0, 0.0, -1]
    assert list(frame["tool_failure_rate"].fillna(-1)) == [0.0, 0.5, -1]  # no tool call: none


def test_tool_summary_and_breakers() -> None:
    summary = monitor_data.tool_summary(_tools()).set_index("tool")
    assert summary.loc["book", "failures"] == 0 and summary.loc["book", "p50_ms"] == 200.0
    assert summary.loc["lookup", "failure_rate"] == 1.0
    assert summary.loc["lookup", "statuses"] == "timeout 1, breaker_open 1"

    breakers = monitor_data.breaker_states(_tools()).set_index("server")
    assert breakers.loc["crm", "breaker"] == "open"
    assert breakers.loc["crm", "breaker_open_calls"] == 1
    assert breakers.loc["calendar", "breaker"] == "closed"


def test_calls_behind_a_point_and_search() -> None:
    calls = _calls()

    assert list(monitor_data.calls_behind(calls, "2026-12-01", "v3")["call_id"]) == ["c2", "c1"]
    assert len(monitor_data.calls_behind(calls, "2026-12-01T00:00:00+00:00", None)) == 3
    assert monitor_data.calls_behind(calls, "2026-12-02", None).empty
    assert list(monitor_data.search_calls(calls, "C1")["call_id"]) == ["c1"]
    assert list(monitor_data.search_calls(calls, "", 65, 75)["call_id"]) == ["c2"]


def test_alert_markers_keep_drift_and_threshold_alerts() -> None:
    alerts = pd.DataFrame(
        {"kind": ["drift_quality", "score_threshold", "knowledge_source_failing"]}
    )
    assert list(monitor_data.alert_markers(alerts)["kind"]) == ["drift_quality", "score_threshold"]


def test_timeline_of_a_trace() -> None:
    started = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    trace = {
        "started_at": started,
        "transcript": [
            {"role": "agent", "text": "Hello", "seconds_from_start": 0.0},
            {"role": "caller", "text": "Hi", "seconds_from_start": 2.0},
        ],
        "events": [
            {"at": started + timedelta(seconds=1), "type": "context_request",
             "data": {"latency_ms": 120.0, "prompt_version": "v3", "caller_known": True}},
            {"at": started + timedelta(seconds=3), "type": "knowledge_retrieval",
             "data": {"chunk_ids": ["k1", "k2"], "freshness": ["fresh", "stale"],
                      "status": "ok", "latency_ms": 30.0}},
            {"at": started + timedelta(seconds=4), "type": "tool_call",
             "data": {"tool": "book", "status": "timeout", "ok": False, "latency_ms": 5000.0,
                      "server": "calendar", "breaker": "closed", "attempts": 3}},
        ],
    }  # fmt: skip

    frame = monitor_data.timeline(trace)

    assert list(frame["lane"]) == [
        "agent turn", "context fetch", "caller turn", "retrieval", "tool call"]  # fmt: skip
    by_lane = frame.set_index("lane")
    assert by_lane.loc["context fetch", "label"] == "prompt v3"
    assert by_lane.loc["retrieval", "detail"] == "k1 (fresh), k2 (stale)"
    assert not by_lane.loc["retrieval", "ok"] and not by_lane.loc["tool call", "ok"]
    assert by_lane.loc["tool call", "duration_ms"] == 5000.0
    figure = monitor_charts.call_timeline(frame)
    assert {t.name for t in figure.data} >= {"ok", "failed / stale", "latency (failed)"}


def test_charts_draw_a_line_per_version_and_alert_markers() -> None:
    daily = monitor_data.daily_by_version(_calls(), _fetches())
    assert [t.name for t in monitor_charts.mean_score(daily).data] == ["v2", "v3"]
    assert len(monitor_charts.fetch_latency(daily).data) == 4  # p50 and p95 per version
    markers = pd.DataFrame(
        {"created_at": [DAY + timedelta(hours=12)], "severity": ["warning"],
         "kind": ["drift_quality"]}
    )  # fmt: skip
    figure = monitor_charts.distribution(_calls(), "score", "t", "score", markers)
    assert len(figure.layout.shapes) == 1
    assert monitor_charts.mean_score(daily.iloc[0:0]).layout.annotations[0].text


def test_a_selected_chart_point_names_its_day_and_version() -> None:
    event = SimpleNamespace(
        selection={"points": [{"x": "2026-12-01", "customdata": ["2026-12-01", "v3"]}]}
    )
    assert _selected_point(event) == ("2026-12-01", "v3")
    assert _selected_point(SimpleNamespace(selection={"points": []})) is None
    assert _selected_point(SimpleNamespace(selection={"points": [{"x": "2026-12-02"}]})) == (
        "2026-12-02", None)  # fmt: skip
