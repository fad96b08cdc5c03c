"""Overview page: calls per day, mean quality score, containment and context-fetch latency
(p50/p95), each per prompt version, and the calls behind any day and version.

Thin: data from ``dashboard.monitor_data``, figures from ``dashboard.monitor_charts``.
"""

from __future__ import annotations

import streamlit as st

from dashboard import monitor_charts, monitor_data, monitor_widgets

st.title("Overview")
monitor_widgets.require_database()
filters = monitor_widgets.filters("overview")

calls = monitor_data.calls(filters)
fetches = monitor_data.context_fetches(filters)
if calls.empty:
    st.info(
        f"No calls in the last {filters.period} for this selection. Calls appear once a voice "
        "platform sends its first webhook."
    )
    st.stop()

totals = monitor_data.summary(calls, fetches)
cols = st.columns(5)
cols[0].metric("Calls", totals["calls"])
cols[1].metric("Mean quality score", "—" if totals["mean_score"] is None
               else f"{totals['mean_score']:.1f}")  # fmt: skip
cols[2].metric("Containment", "—" if totals["containment"] is None
               else f"{totals['containment']:.0%}")  # fmt: skip
cols[3].metric("Context fetch p50", "—" if totals["fetch_p50_ms"] is None
               else f"{totals['fetch_p50_ms']:.0f} ms")  # fmt: skip
cols[4].metric("Context fetch p95", "—" if totals["fetch_p95_ms"] is None
               else f"{totals['fetch_p95_ms']:.0f} ms")  # fmt: skip

daily = monitor_data.daily_by_version(calls, fetches)
selections = []
left, right = st.columns(2)
for column, figure, key in (
    (left, monitor_charts.calls_per_day(daily), "chart_overview_calls"),
    (right, monitor_charts.mean_score(daily), "chart_overview_score"),
    (left, monitor_charts.containment(daily), "chart_overview_containment"),
    (right, monitor_charts.fetch_latency(daily), "chart_overview_latency"),
):
    selections.append(
        column.plotly_chart(figure, key=key, on_select="rerun", selection_mode="points")
    )

st.subheader("Per day and prompt version")
st.container(key="overview_daily").dataframe(
    daily.sort_values(["day", "prompt_version"], ascending=[False, True]),
    hide_index=True,
    column_config={
        "day": st.column_config.DateColumn("day (UTC)", format="YYYY-MM-DD"),
        "prompt_version": "version",
        "mean_score": st.column_config.NumberColumn("mean score", format="%.1f"),
        "containment": st.column_config.NumberColumn("containment", format="percent"),
        "fetch_p50_ms": st.column_config.NumberColumn("fetch p50 ms", format="%.0f"),
        "fetch_p95_ms": st.column_config.NumberColumn("fetch p95 ms", format="%.0f"),
    },
)
monitor_widgets.calls_behind(calls, selections, "overview")
