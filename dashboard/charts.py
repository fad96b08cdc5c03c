"""Pure chart builders: a DataFrame in, a plotly Figure out.

No streamlit, no database, no clock: everything a chart shows arrives as an argument (``now``
included), so each figure is reproducible and testable on its own. Charts never show a raw
phone number or a caller hash; the frames they receive hold only masked caller forms.
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

PLATFORM_COLORS = {"vapi": "#4c78a8", "retell": "#f58518", "bland": "#54a24b", "custom": "#b279a2"}
FACT_COLORS = {"current": "#2e7d32", "closed": "#9e9e9e"}
SCORE_RANGE = (0, 100)


def _utc(moment: datetime) -> pd.Timestamp:
    """Naive datetimes are UTC by convention; aware ones are converted."""
    stamp = pd.Timestamp(moment)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _empty(title: str, message: str, height: int = 300) -> go.Figure:
    """A figure with no data: its title and a message saying why (shared by every chart module)."""
    fig = go.Figure()
    fig.update_layout(
        title=title,
        xaxis={"visible": False},
        yaxis={"visible": False},
        annotations=[
            {"text": message, "showarrow": False, "xref": "paper", "yref": "paper", "x": 0.5}
        ],
        height=height,
    )
    return fig


def calls_per_day(activity: pd.DataFrame) -> go.Figure:
    """Stacked bars: calls per day, one colour per platform (``time``, ``platform`` columns)."""
    title = "Calls per day by platform"
    if activity.empty:
        return _empty(title, "no calls in this window")
    daily = (
        activity.assign(day=pd.to_datetime(activity["time"], utc=True).dt.floor("D"))
        .groupby(["day", "platform"], as_index=False)
        .size()
        .rename(columns={"size": "calls"})
    )
    fig = px.bar(
        daily,
        x="day",
        y="calls",
        color="platform",
        color_discrete_map=PLATFORM_COLORS,
        title=title,
        labels={"day": "day (UTC)", "calls": "calls"},
    )
    fig.update_layout(barmode="stack", height=320, legend_title_text="platform")
    fig.update_xaxes(dtick="D1", tickformat="%b %d")
    fig.update_yaxes(rangemode="tozero", dtick=1 if daily["calls"].max() <= 10 else None)
    return fig


def score_over_time(activity: pd.DataFrame) -> go.Figure:
    """Each scored call as a point (0-100) plus the daily mean as a line."""
    title = "Quality score over time"
    scored = activity.dropna(subset=["score"]) if not activity.empty else activity
    if scored.empty:
        return _empty(title, "no scored calls in this window")
    scored = scored.assign(time=pd.to_datetime(scored["time"], utc=True)).sort_values("time")
    fig = px.scatter(
        scored,
        x="time",
        y="score",
        color="platform",
        color_discrete_map=PLATFORM_COLORS,
        title=title,
        labels={"time": "time (UTC)", "score": "score"},
    )
    daily = (
        scored.assign(day=scored["time"].dt.floor("D"))
        .groupby("day", as_index=False)["score"]
        .mean()
    )
    fig.add_trace(
        go.Scatter(
            x=daily["day"] + pd.Timedelta(hours=12),
            y=daily["score"],
            mode="lines+markers",
            name="daily mean",
            line={"color": "#555", "dash": "dot"},
        )
    )
    fig.update_yaxes(range=[SCORE_RANGE[0], SCORE_RANGE[1] + 2])
    fig.update_layout(height=320)
    return fig


def score_distribution(activity: pd.DataFrame) -> go.Figure:
    """Histogram of call scores in 10-point bins."""
    title = "Quality score distribution"
    scored = activity.dropna(subset=["score"]) if not activity.empty else activity
    if scored.empty:
        return _empty(title, "no scored calls in this window")
    fig = px.histogram(
        scored,
        x="score",
        color="platform",
        color_discrete_map=PLATFORM_COLORS,
        title=title,
        range_x=list(SCORE_RANGE),
        labels={"score": "score"},
    )
    fig.update_traces(xbins={"start": 0, "end": 100, "size": 10})
    fig.update_layout(barmode="stack", height=320, yaxis_title="calls")
    return fig


def scorecard_parts(parts: pd.DataFrame) -> go.Figure:
    """Horizontal bars of a call's scorecard parts, each 0..1 (``part``, ``value`` columns)."""
    title = "Scorecard parts"
    if parts.empty:
        return _empty(title, "this call has no scorecard")
    fig = px.bar(
        parts,
        x="value",
        y="part",
        orientation="h",
        title=title,
        range_x=[0, 1],
        text="value",
        color="value",
        color_continuous_scale="RdYlGn",
        range_color=[0, 1],
    )
    fig.update_traces(texttemplate="%{text:.2f}")
    fig.update_layout(height=80 + 40 * len(parts), coloraxis_showscale=False)
    fig.update_yaxes(title=None, categoryorder="array", categoryarray=list(parts["part"])[::-1])
    return fig


def fact_timeline(facts: pd.DataFrame, now: datetime) -> go.Figure:
    """One row per fact key; each value a bar from ``valid_from`` to ``valid_to`` (or ``now``).

    Closed facts are grey and hatched, current ones solid green, so a superseded value reads as
    history at a glance.
    """
    title = "Facts over time"
    if facts.empty:
        return _empty(title, "no facts recorded for this caller")
    as_of = _utc(now).as_unit("us")
    # One resolution for every timestamp: an all-open column would otherwise infer seconds.
    starts = pd.to_datetime(facts["valid_from"], utc=True).dt.as_unit("us")
    ends = pd.to_datetime(facts["valid_to"], utc=True).dt.as_unit("us")
    frame = facts.assign(start=starts, end=ends.fillna(as_of))
    # A fact opened and closed in the same instant would otherwise have no width at all.
    frame["end"] = frame["end"].where(
        frame["end"] > frame["start"], frame["start"] + pd.Timedelta(minutes=1)
    )
    frame["until"] = ["now" if pd.isna(end) else f"{end:%Y-%m-%d %H:%M}" for end in ends]
    fig = px.timeline(
        frame,
        x_start="start",
        x_end="end",
        y="key",
        color="status",
        text="value",
        color_discrete_map=FACT_COLORS,
        category_orders={"status": ["current", "closed"]},
        hover_data={"value": True, "until": True, "start": "|%Y-%m-%d %H:%M", "end": False},
        title=title,
        pattern_shape="status",
        pattern_shape_map={"current": "", "closed": "/"},
    )
    fig.update_traces(textposition="inside", insidetextanchor="middle")
    fig.update_yaxes(title=None, autorange="reversed")
    fig.update_xaxes(title="valid time (UTC)")
    fig.add_vline(x=as_of.value / 1e6, line_dash="dot", line_color="#555")
    fig.update_layout(
        height=200 + 60 * frame["key"].nunique(),
        legend={"title": {"text": "fact"}, "orientation": "h", "y": 1.02, "yanchor": "bottom"},
        bargap=0.35,
    )
    return fig
