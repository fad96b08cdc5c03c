"""Pure chart builders for prompts and rollouts: a DataFrame in, a plotly Figure out.

No streamlit, no database, no clock; every figure is reproducible from its arguments.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard.charts import _empty

CANARY_COLOR = "#f58518"
CONTROL_COLOR = "#4c78a8"
VERDICT_COLORS = {"ok": "#2e7d32", "insufficient": "#9e9e9e", "breach": "#c62828"}


def rollout_progress(checks: pd.DataFrame) -> go.Figure:
    """Canary weight over time (a step line) above the calls each arm has accumulated.

    ``checks``: one row per guard look with ``at``, ``weight``, ``canary_n``, ``control_n``
    and ``verdict``; looks are marked in their verdict's colour.
    """
    title = "Rollout progress: canary weight and samples"
    if checks.empty:
        return _empty(title, "no guard looks yet")
    frame = checks.sort_values("at")
    fig = make_subplots(
        rows=2, cols=1, shared_xaxes=True, row_heights=[0.45, 0.55], vertical_spacing=0.08
    )
    fig.add_trace(
        go.Scatter(
            x=frame["at"],
            y=frame["weight"] * 100,
            mode="lines",
            line={"shape": "hv", "color": CANARY_COLOR},
            name="canary weight %",
        ),
        row=1,
        col=1,
    )
    for verdict, color in VERDICT_COLORS.items():
        looks = frame[frame["verdict"] == verdict]
        if looks.empty:
            continue
        fig.add_trace(
            go.Scatter(
                x=looks["at"],
                y=looks["weight"] * 100,
                mode="markers",
                marker={"color": color, "size": 8},
                name=f"look: {verdict}",
            ),
            row=1,
            col=1,
        )
    for column, name, color in (
        ("canary_n", "canary calls", CANARY_COLOR),
        ("control_n", "control calls", CONTROL_COLOR),
    ):
        fig.add_trace(
            go.Scatter(
                x=frame["at"], y=frame[column], mode="lines", name=name, line={"color": color}
            ),
            row=2,
            col=1,
        )
    fig.update_yaxes(title_text="weight %", range=[0, 105], row=1, col=1)
    fig.update_yaxes(title_text="calls", rangemode="tozero", row=2, col=1)
    fig.update_layout(title=title, height=420, legend_title_text="")
    return fig


def guard_metrics(checks: pd.DataFrame) -> go.Figure:
    """Mean quality score of canary and control at each look, with the mSPRT evidence
    (log likelihood ratio against its rollback threshold) on a second axis."""
    title = "Guard: quality score, canary vs control"
    scored = checks.dropna(subset=["canary_score", "control_score"], how="all")
    if scored.empty:
        return _empty(title, "no scored calls in either arm yet")
    frame = scored.sort_values("at")
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    for column, name, color in (
        ("canary_score", "canary", CANARY_COLOR),
        ("control_score", "control", CONTROL_COLOR),
    ):
        fig.add_trace(
            go.Scatter(x=frame["at"], y=frame[column], mode="lines+markers", name=name,
                       line={"color": color}),
            secondary_y=False,
        )  # fmt: skip
    evidence = frame.dropna(subset=["score_log_lr"])
    if not evidence.empty:
        fig.add_trace(
            go.Scatter(x=evidence["at"], y=evidence["score_log_lr"], mode="lines",
                       name="log LR (harm)", line={"color": "#777", "dash": "dot"}),
            secondary_y=True,
        )  # fmt: skip
        fig.add_trace(
            go.Scatter(x=evidence["at"], y=evidence["score_threshold"], mode="lines",
                       name="rollback threshold", line={"color": "#c62828", "dash": "dash"}),
            secondary_y=True,
        )  # fmt: skip
    fig.update_yaxes(title_text="mean score (0-100)", range=[0, 102], secondary_y=False)
    fig.update_yaxes(title_text="evidence (log LR)", secondary_y=True)
    fig.update_layout(title=title, height=360)
    return fig


def experiment_scores(variants: pd.DataFrame) -> go.Figure:
    """Mean quality score per variant with its 95% interval (``ref``, ``role``, ``score``,
    ``ci_low``, ``ci_high``, ``calls`` columns)."""
    title = "Experiment: quality score by variant"
    scored = variants.dropna(subset=["score"]) if not variants.empty else variants
    if scored.empty:
        return _empty(title, "no scored calls in this experiment yet")
    colors = [CONTROL_COLOR if r == "control" else CANARY_COLOR for r in scored["role"]]
    upper = (scored["ci_high"] - scored["score"]).fillna(0)
    lower = (scored["score"] - scored["ci_low"]).fillna(0)
    fig = go.Figure(
        go.Bar(
            x=[f"{ref} ({role})" for ref, role in zip(scored["ref"], scored["role"], strict=True)],
            y=scored["score"],
            marker_color=colors,
            error_y={"type": "data", "array": upper, "arrayminus": lower, "symmetric": False},
            text=[
                f"{s:.1f} · {n} calls"
                for s, n in zip(scored["score"], scored["calls"], strict=True)
            ],
            textposition="outside",
        )
    )
    fig.update_layout(title=title, height=340, yaxis={"range": [0, 110], "title": "score"})
    return fig
