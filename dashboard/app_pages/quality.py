"""Quality & Drift page: per-call distributions over time (layer scores, words per agent turn,
grounded share, tool failure rate, stale hits) with drift and threshold alerts as markers, the
drift detectors' state, and the calls behind any day and version.

Thin: data from ``dashboard.monitor_data``, figures from ``dashboard.monitor_charts``.
"""

from __future__ import annotations

import streamlit as st

from dashboard import monitor_charts, monitor_data, monitor_widgets

st.title("Quality & Drift")
monitor_widgets.require_database()
filters = monitor_widgets.filters("quality")

calls = monitor_data.daily_distributions(monitor_data.calls(filters))
alerts, _ = monitor_data.alerts(filters)
markers = monitor_data.alert_markers(alerts)
if calls.empty:
    st.info(f"No calls in the last {filters.period} for this selection.")
    st.stop()

scored = calls.dropna(subset=["score"])
grounded = calls["grounded"].dropna()
rates = calls["tool_failure_rate"].dropna()
cols = st.columns(4)
cols[0].metric("Scored calls", len(scored))
cols[1].metric("Grounded share", f"{grounded.mean():.0%}" if len(grounded) else "—")
cols[2].metric("Tool failure rate", f"{rates.mean():.0%}" if len(rates) else "—")
cols[3].metric("Stale hits", int(calls["stale_hits"].fillna(0).sum()))

charts = [
    (monitor_charts.layer_scores(calls, markers), "chart_quality_layers"),
    (monitor_charts.distribution(calls, "words_per_agent_turn", "Words per agent turn",
                                 "words", markers), "chart_quality_words"),
    (monitor_charts.distribution(calls, "grounded", "Grounded (1: every claim grounded)",
                                 "grounded", markers, (-0.05, 1.05)), "chart_quality_grounded"),
    (monitor_charts.distribution(calls, "tool_failure_rate", "Tool failure rate per call",
                                 "failed / calls", markers, (-0.05, 1.05)),
     "chart_quality_tool_failures"),
    (monitor_charts.distribution(calls, "stale_hits", "Stale knowledge hits per call", "hits",
                                 markers), "chart_quality_stale"),
]  # fmt: skip
selections = []
columns = st.columns(2)
for i, (figure, key) in enumerate(charts):
    selections.append(
        columns[i % 2].plotly_chart(figure, key=key, on_select="rerun", selection_mode="points")
    )

st.subheader("Alerts on these charts")
if markers.empty:
    st.caption("No drift or score-threshold alert in this period.")
else:
    st.container(key="quality_alerts").dataframe(
        markers,
        hide_index=True,
        column_order=["created_at", "kind", "severity", "state", "message"],
        column_config={
            "created_at": st.column_config.DatetimeColumn("raised (UTC)", format="YYYY-MM-DD HH:mm")
        },
    )

st.subheader("Drift detectors")
states = monitor_data.drift_states(filters.agent_id)
if states is None:
    st.info("The drift watch has not run yet: no detector state is stored.")
elif states.empty:
    st.info("The drift watch has not run yet for this selection.")
else:
    st.plotly_chart(monitor_charts.drift_closeness(states), key="chart_drift_closeness")
    st.container(key="drift_states").dataframe(
        states,
        hide_index=True,
        column_config={
            "closest_to_alarm": st.column_config.ProgressColumn(
                "closest to alarm", min_value=0.0, max_value=1.0, format="%.2f"
            ),
            "updated_at": st.column_config.DatetimeColumn(
                "updated (UTC)", format="YYYY-MM-DD HH:mm"
            ),
        },
    )

st.subheader("Per-call measures")
st.container(key="quality_calls").dataframe(
    calls.sort_values("time", ascending=False),
    hide_index=True,
    column_order=["time", "prompt_version", "call_id", "score", "infrastructure", "execution",
                  "reaction", "outcome", "words_per_agent_turn", "grounded",
                  "tool_failure_rate", "stale_hits", "context_fetch_ms"],
    column_config={"time": st.column_config.DatetimeColumn("time (UTC)",
                                                           format="YYYY-MM-DD HH:mm")},
)  # fmt: skip
monitor_widgets.calls_behind(calls, selections, "quality")
