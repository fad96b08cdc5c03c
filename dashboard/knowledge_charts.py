"""Pure knowledge figures: a DataFrame in, a plotly Figure out (no streamlit, no clock)."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from dashboard.charts import _empty

FRESHNESS_COLORS = {"fresh": "#2e7d32", "failing": "#f9a825", "stale": "#c62828",
                    "pending": "#1565c0"}  # fmt: skip
VIA_COLORS = {"knowledge_request": "#4c78a8", "knowledge_search": "#f58518", "api": "#54a24b"}


def retrieval_latency(retrievals: pd.DataFrame) -> go.Figure:
    """Each retrieval's latency as a point, with the hourly p50 and p95 as lines."""
    title = "Retrieval latency"
    timed = retrievals.dropna(subset=["latency_ms"]) if not retrievals.empty else retrievals
    if timed.empty:
        return _empty(title, "no retrievals recorded in this window")
    timed = timed.assign(at=pd.to_datetime(timed["at"], utc=True)).sort_values("at")
    fig = px.scatter(
        timed,
        x="at",
        y="latency_ms",
        color="via",
        color_discrete_map=VIA_COLORS,
        hover_data=["status", "hits", "withheld", "query"],
        title=title,
        labels={"at": "time (UTC)", "latency_ms": "latency (ms)"},
    )
    hourly = timed.assign(hour=timed["at"].dt.floor("h")).groupby("hour")["latency_ms"]
    for q, dash in ((0.5, "dot"), (0.95, "dash")):
        line = hourly.quantile(q).reset_index()
        fig.add_trace(
            go.Scatter(
                x=line["hour"] + pd.Timedelta(minutes=30),
                y=line["latency_ms"],
                mode="lines+markers",
                name=f"p{int(q * 100)} per hour",
                line={"color": "#555", "dash": dash},
            )
        )
    fig.update_yaxes(rangemode="tozero")
    fig.update_layout(height=340)
    return fig


def freshness_counts(sources: pd.DataFrame) -> go.Figure:
    """How many sources are fresh, failing, stale or pending."""
    title = "Sources by freshness"
    if sources.empty:
        return _empty(title, "no sources")
    counts = sources.groupby("freshness", as_index=False).size().rename(columns={"size": "n"})
    fig = px.bar(
        counts,
        x="freshness",
        y="n",
        color="freshness",
        color_discrete_map=FRESHNESS_COLORS,
        title=title,
        category_orders={"freshness": list(FRESHNESS_COLORS)},
        labels={"n": "sources"},
    )
    fig.update_layout(height=280, showlegend=False)
    fig.update_yaxes(dtick=1)
    return fig
