"""Pure chart builders for the Evals page: a DataFrame in, a plotly Figure out.

No streamlit, no database, no clock; every figure is reproducible from its arguments.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

STATUS_COLORS = {
    "passed": "#2e7d32",
    "improved": "#2e7d32",
    "inconclusive": "#9e9e9e",
    "failed": "#c62828",
    "regressed": "#c62828",
    "error": "#6a1b9a",
    "cancelled": "#757575",
    "running": "#4c78a8",
    "queued": "#4c78a8",
}


def pass_rate_over_time(runs: pd.DataFrame) -> go.Figure:
    """Pass rate per run over time, one line per suite, each run marked in its status colour.

    ``runs``: ``created_at``, ``suite``, ``status``, ``id``, ``passed``, ``failed`` and
    ``pass_rate`` (0..1; runs with nothing counted are left out)."""
    title = "Eval runs: pass rate per run"
    fig = go.Figure()
    frame = runs.dropna(subset=["pass_rate"]).sort_values("created_at")
    if frame.empty:
        fig.update_layout(
            title=title,
            xaxis={"visible": False},
            yaxis={"visible": False},
            annotations=[
                {
                    "text": "no finished cases yet",
                    "showarrow": False,
                    "xref": "paper",
                    "yref": "paper",
                    "x": 0.5,
                }
            ],
            height=300,
        )
        return fig
    for suite, rows in frame.groupby("suite", sort=True):
        fig.add_trace(
            go.Scatter(
                x=rows["created_at"],
                y=rows["pass_rate"] * 100,
                mode="lines+markers",
                name=str(suite),
                marker={
                    "size": 10,
                    "color": [STATUS_COLORS.get(s, "#4c78a8") for s in rows["status"]],
                },
                customdata=list(
                    zip(rows["id"], rows["status"], rows["passed"], rows["failed"], strict=True)
                ),
                hovertemplate="run %{customdata[0]} · %{customdata[1]}<br>"
                "%{customdata[2]} passed, %{customdata[3]} failed (%{y:.0f}%)<extra></extra>",
            )
        )
    fig.update_layout(
        title=title,
        yaxis={"title": "cases passed (%)", "range": [0, 105]},
        xaxis={"title": "run started (UTC)"},
        height=320,
        legend={"title": "suite"},
    )
    return fig
