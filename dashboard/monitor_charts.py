"""Pure chart builders for the monitoring pages: DataFrames in, plotly Figures out.

No streamlit, no database, no clock. Lines are drawn per prompt version; each point carries its
day and version in ``customdata`` so a page can list the calls behind a selected point.
"""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from core.monitoring.scorecard import LAYERS
from dashboard.charts import _empty

ALERT_COLORS = {"critical": "#c62828", "warning": "#ef6c00", "info": "#607d8b"}
STATUS_COLORS = {True: "#2e7d32", False: "#c62828"}


LANES = ["caller turn", "agent turn", "context fetch", "retrieval", "tool call", "event"]


def _by_version(
    daily: pd.DataFrame, column: str, title: str, y_title: str, mode: str = "lines+markers"
) -> go.Figure:
    frame = daily.dropna(subset=[column]) if not daily.empty else daily
    if frame.empty:
        return _empty(title, "no data in this period", height=320)
    fig = go.Figure()
    for version, rows in frame.groupby("prompt_version", sort=True):
        fig.add_trace(
            go.Scatter(
                x=rows["day"],
                y=rows[column],
                mode=mode,
                name=str(version),
                customdata=[[str(d), str(version)] for d in rows["day"]],
                hovertemplate="%{x|%Y-%m-%d} · %{customdata[1]}: %{y}<extra></extra>",
            )
        )
    fig.update_layout(title=title, height=320, yaxis_title=y_title, legend_title_text="version")
    return fig


def calls_per_day(daily: pd.DataFrame) -> go.Figure:
    title = "Calls per day, by prompt version"
    if daily.empty or not daily["calls"].sum():
        return _empty(title, "no calls in this period", height=320)
    fig = go.Figure()
    for version, rows in daily[daily["calls"] > 0].groupby("prompt_version", sort=True):
        fig.add_trace(
            go.Bar(
                x=rows["day"],
                y=rows["calls"],
                name=str(version),
                customdata=[[str(d), str(version)] for d in rows["day"]],
            )
        )
    fig.update_layout(title=title, barmode="stack", height=320, yaxis_title="calls",
                      legend_title_text="version")  # fmt: skip
    return fig


def mean_score(daily: pd.DataFrame) -> go.Figure:
    fig = _by_version(daily, "mean_score", "Mean quality score, by prompt version", "score")
    fig.update_yaxes(range=[0, 102])
    return fig


def containment(daily: pd.DataFrame) -> go.Figure:
    frame = daily.assign(containment_pct=daily["containment"] * 100)
    fig = _by_version(frame, "containment_pct", "Containment rate, by prompt version", "%")
    fig.update_yaxes(range=[0, 105])
    return fig


def fetch_latency(daily: pd.DataFrame) -> go.Figure:
    """Context-fetch latency p50 (solid) and p95 (dotted) per day and version."""
    title = "Context-fetch latency p50 / p95, by prompt version"
    frame = daily.dropna(subset=["fetch_p50_ms"]) if not daily.empty else daily
    if frame.empty:
        return _empty(title, "no context fetches in this period", height=320)
    fig = go.Figure()
    palette = px.colors.qualitative.Plotly
    for i, (version, rows) in enumerate(frame.groupby("prompt_version", sort=True)):
        color = palette[i % len(palette)]
        for column, dash in (("fetch_p50_ms", "solid"), ("fetch_p95_ms", "dot")):
            fig.add_trace(
                go.Scatter(
                    x=rows["day"],
                    y=rows[column],
                    mode="lines+markers",
                    name=f"{version} {column[6:9]}",
                    line={"color": color, "dash": dash},
                    customdata=[[str(d), str(version)] for d in rows["day"]],
                )
            )
    fig.update_layout(title=title, height=320, yaxis_title="ms", legend_title_text="")
    return fig


def add_alert_markers(fig: go.Figure, markers: pd.DataFrame) -> go.Figure:
    """Vertical lines at each alert's time, coloured by severity, labelled with its kind."""
    for alert in markers.itertuples():
        fig.add_vline(
            x=alert.created_at.to_pydatetime(),
            line={"color": ALERT_COLORS.get(str(alert.severity), "#607d8b"), "dash": "dash"},
            opacity=0.7,
        )
        fig.add_annotation(
            x=alert.created_at.to_pydatetime(), y=1, yref="paper", text=str(alert.kind),
            showarrow=False, textangle=-90, xanchor="left", yanchor="top", font={"size": 10},
        )  # fmt: skip
    return fig


def distribution(
    calls: pd.DataFrame,
    column: str,
    title: str,
    y_title: str,
    markers: pd.DataFrame,
    y_range: tuple[float, float] | None = None,
) -> go.Figure:
    """One metric's per-call values per day (box per day and version, points shown), with the
    drift and threshold alerts as vertical markers."""
    frame = calls.dropna(subset=[column]) if not calls.empty else calls
    if frame.empty:
        return _empty(title, "no scored calls with this measure in the period", height=320)
    fig = go.Figure()
    for version, rows in frame.groupby("prompt_version", sort=True):
        fig.add_trace(
            go.Box(
                x=rows["day"],
                y=rows[column],
                name=str(version),
                boxpoints="all",
                jitter=0.3,
                customdata=[[str(d), str(version), c] for d, c in
                            zip(rows["day"], rows["call_id"], strict=True)],
                hovertemplate="%{customdata[2]} · %{customdata[1]}: %{y}<extra></extra>",
            )
        )  # fmt: skip
    fig.update_layout(title=title, boxmode="group", height=320, yaxis_title=y_title,
                      legend_title_text="version")  # fmt: skip
    if y_range is not None:
        fig.update_yaxes(range=list(y_range))
    return add_alert_markers(fig, markers)


def layer_scores(calls: pd.DataFrame, markers: pd.DataFrame) -> go.Figure:
    """The four layer scores' daily means (one line per layer), with alert markers."""
    title = "Scorecard layers, daily mean (0-1)"
    frame = calls.dropna(subset=list(LAYERS), how="all") if not calls.empty else calls
    if frame.empty:
        return _empty(title, "no layered scores in this period", height=320)
    daily = frame.groupby("day")[list(LAYERS)].mean().reset_index()
    fig = go.Figure()
    for layer in LAYERS:
        fig.add_trace(
            go.Scatter(x=daily["day"], y=daily[layer], mode="lines+markers", name=layer,
                       customdata=[[str(d), ""] for d in daily["day"]])
        )  # fmt: skip
    fig.update_layout(title=title, height=320, yaxis={"range": [0, 1.05], "title": "score"})
    return add_alert_markers(fig, markers)


def tool_latency(summary: pd.DataFrame) -> go.Figure:
    title = "Tool latency p50 / p95"
    frame = summary.dropna(subset=["p50_ms"]) if not summary.empty else summary
    if frame.empty:
        return _empty(title, "no tool calls in this period", height=320)
    names = [f"{t} ({s})" for t, s in zip(frame["tool"], frame["server"], strict=True)]
    fig = go.Figure(
        [
            go.Bar(x=names, y=frame["p50_ms"], name="p50"),
            go.Bar(x=names, y=frame["p95_ms"], name="p95"),
        ]
    )
    fig.update_layout(title=title, barmode="group", height=340, yaxis_title="ms")
    return fig


def tool_failures(tools: pd.DataFrame) -> go.Figure:
    """Tool calls per tool, stacked by status (ok and each failure kind)."""
    title = "Tool calls by status"
    if tools.empty:
        return _empty(title, "no tool calls in this period", height=320)
    counts = tools.groupby(["tool", "status"]).size().reset_index(name="calls")
    fig = px.bar(counts, x="tool", y="calls", color="status", title=title,
                 color_discrete_map={"ok": "#2e7d32"})  # fmt: skip
    fig.update_layout(height=340)
    return fig


def call_timeline(events: pd.DataFrame) -> go.Figure:
    """One call's timeline: a lane per kind (turns, context fetches, retrievals, tool calls),
    a bar spanning each measured latency, a marker at each moment; failures in red."""
    title = "Call timeline"
    if events.empty:
        return _empty(title, "nothing was recorded for this call", height=320)
    fig = go.Figure()
    lanes = [lane for lane in LANES if lane in set(events["lane"])]
    for ok in (True, False):
        rows = events[events["ok"] == ok]
        if rows.empty:
            continue
        timed = rows.dropna(subset=["duration_ms"])
        if not timed.empty:
            fig.add_trace(
                go.Bar(
                    base=timed["at"],
                    x=timed["duration_ms"],
                    y=timed["lane"],
                    orientation="h",
                    marker_color=STATUS_COLORS[ok],
                    opacity=0.35,
                    name="latency" if ok else "latency (failed)",
                    hovertext=[f"{lbl}: {ms:.0f} ms" for lbl, ms in
                               zip(timed["label"], timed["duration_ms"], strict=True)],
                    hoverinfo="text",
                )
            )  # fmt: skip
        fig.add_trace(
            go.Scatter(
                x=rows["at"],
                y=rows["lane"],
                mode="markers",
                marker={"color": STATUS_COLORS[ok], "size": 11,
                        "symbol": "circle" if ok else "x"},
                name="ok" if ok else "failed / stale",
                hovertext=[f"{lbl}: {d}"[:300] for lbl, d in
                           zip(rows["label"], rows["detail"], strict=True)],
                hoverinfo="text+x",
            )
        )  # fmt: skip
    fig.update_xaxes(type="date")
    fig.update_yaxes(categoryorder="array", categoryarray=list(reversed(lanes)))
    fig.update_layout(title=title, height=360, barmode="overlay")
    return fig


def drift_closeness(states: pd.DataFrame) -> go.Figure:
    """How close each drift detector is to alarming: one bar per prompt version and metric,
    the nearest detector's statistic over its threshold (1 alarms), coloured by phase."""
    title = "Drift detectors: how close to an alarm (1 = alarm)"
    frame = states.dropna(subset=["closest_to_alarm"]) if not states.empty else states
    if frame.empty:
        return _empty(title, "every detector is still collecting its reference calls", height=320)
    labels = [f"{v} · {m}" for v, m in zip(frame["prompt_version"], frame["metric"], strict=True)]
    colors = [ALERT_COLORS["critical"] if p == "alarmed" else "#1565c0" for p in frame["phase"]]
    fig = go.Figure(
        go.Bar(
            x=frame["closest_to_alarm"],
            y=labels,
            orientation="h",
            marker_color=colors,
            customdata=frame[["direction", "baseline", "window_calls"]].astype(str).to_numpy(),
            hovertemplate=(
                "%{y}: %{x:.2f} of the threshold (%{customdata[0]})<br>"
                "baseline %{customdata[1]}, window %{customdata[2]}<extra></extra>"
            ),
        )
    )
    fig.add_vline(x=1.0, line_dash="dash", line_color=ALERT_COLORS["critical"])
    fig.update_layout(
        title=title, height=max(260, 40 * len(frame) + 120), xaxis_title="statistic / threshold"
    )
    return fig
