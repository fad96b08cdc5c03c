"""Widgets the monitoring pages share: the agent / prompt version / period filters, and the
"calls behind a chart point" list that links into the Traces page.

Streamlit code only; the data comes from ``dashboard.monitor_data``.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from dashboard import data, monitor_data
from dashboard.monitor_data import DEFAULT_PERIOD, PERIODS, Filters

TRACES_PAGE = "app_pages/traces.py"


def require_database() -> None:
    problem = data.database_problem()
    if problem:
        st.info(f"Nothing to show yet: {problem}. Start Backline with `make run` to create it.")
        st.stop()


def filters(page: str) -> Filters:
    """Agent, prompt versions and period, side by side; keys are the page's own."""
    agents = data.agents()
    labels = {"": "All agents"} | {a["agent_id"]: f"{a['name']} ({a['agent_id']})" for a in agents}
    left, middle, right = st.columns([2, 2, 1])
    agent_id = (
        left.selectbox("Agent", list(labels), format_func=labels.__getitem__, key=f"{page}_agent")
        or None
    )
    key = f"{page}_period"
    if key not in st.session_state:  # a default and a value set through session state clash
        st.session_state[key] = DEFAULT_PERIOD
    period = right.selectbox(
        "Period", list(PERIODS), key=key, help="the last 24 hours, 7, 30 or 90 days (UTC)"
    )
    every = monitor_data.calls(Filters(agent_id, (), period))
    versions = middle.multiselect(
        "Prompt versions",
        monitor_data.version_options(every),
        key=f"{page}_versions",
        placeholder="All versions",
    )
    return Filters(agent_id, tuple(versions), period)


def trace_link(row: Any, label: str = "Open in Traces") -> None:
    st.page_link(
        TRACES_PAGE,
        label=label,
        icon=":material/timeline:",
        query_params={
            "agent": row["agent_id"],
            "platform": row["platform"],
            "call": row["call_id"],
        },
    )


def _selected_point(event: Any) -> tuple[str, str | None] | None:
    """(day, version) of the first selected point of a plotly chart, if any."""
    points = (getattr(event, "selection", None) or {}).get("points") or []
    for point in points:
        custom = point.get("customdata")
        if isinstance(custom, list) and custom:
            return str(custom[0]), (str(custom[1]) if len(custom) > 1 and custom[1] else None)
        if point.get("x") is not None:
            return str(point["x"]), None
    return None


def calls_behind(calls: pd.DataFrame, events: list[Any], page: str) -> None:
    """List the calls behind a selected chart point (or a day and version chosen below), each
    linkable into Traces."""
    st.subheader("Calls behind a point")
    if calls.empty:
        st.caption("No calls in this period.")
        return
    picked = next((p for p in map(_selected_point, events) if p is not None), None)
    days = sorted(calls["day"].unique(), reverse=True)
    day_labels = {pd.Timestamp(d).strftime("%Y-%m-%d"): d for d in days}
    versions = ["", *monitor_data.version_options(calls)]
    if picked is not None:
        day, version = picked
        st.caption(f"Selected on the chart: {day[:10]}" + (f" · {version}" if version else ""))
    else:
        st.caption("Select a point on a chart above, or choose a day and version:")
        left, right = st.columns(2)
        day = left.selectbox("Day", list(day_labels), key=f"{page}_behind_day")
        version = (
            right.selectbox(
                "Version",
                versions,
                format_func=lambda v: v or "All versions",
                key=f"{page}_behind_version",
            )
            or None
        )
    behind = monitor_data.calls_behind(calls, day, version)
    if behind.empty:
        st.caption("No calls behind this point.")
        return
    st.container(key=f"{page}_calls_behind").dataframe(
        behind,
        hide_index=True,
        column_order=["time", "prompt_version", "platform", "caller", "score", "call_id"],
        column_config={"time": st.column_config.DatetimeColumn("time (UTC)", format="HH:mm")},
    )
    keys = list(range(len(behind)))
    chosen = st.selectbox(
        "Call",
        keys,
        format_func=lambda i: f"{behind['time'].iloc[i]:%H:%M} · {behind['call_id'].iloc[i]}",
        key=f"{page}_behind_call",
    )
    trace_link(behind.iloc[chosen or 0])
