"""Alerts page: alerts raised in the period (firing, acknowledged, resolved) with their
deliveries to the alert channels (status, attempts, last error), filterable by kind and state.

Read-only: alerts are acknowledged and resolved through the API or ``backline alerts``.
"""

from __future__ import annotations

import plotly.express as px
import streamlit as st

from dashboard import monitor_data, monitor_widgets
from dashboard.monitor_data import ALERT_STATES

st.title("Alerts")
monitor_widgets.require_database()
filters = monitor_widgets.filters("alerts")
alerts, deliveries = monitor_data.alerts(filters)

left, right = st.columns(2)
kinds = left.multiselect(
    "Kind", sorted(set(alerts["kind"])), key="alerts_kind", placeholder="All kinds"
)
states = right.multiselect(
    "State", list(ALERT_STATES), key="alerts_state", placeholder="All states"
)
shown = alerts
if kinds:
    shown = shown[shown["kind"].isin(kinds)]
if states:
    shown = shown[shown["state"].isin(states)]
if shown.empty:
    st.info(f"No alert in the last {filters.period} for this selection.")
    st.stop()

cols = st.columns(4)
for col, state in zip(cols, ALERT_STATES, strict=False):
    col.metric(state.capitalize(), int((shown["state"] == state).sum()))
failing = deliveries[deliveries["alert_id"].isin(shown["id"]) & (deliveries["status"] == "failed")]
cols[3].metric("Failed deliveries", len(failing))

counts = shown.assign(day=shown["created_at"].dt.floor("D"))
counts = counts.groupby(["day", "kind"]).size().reset_index(name="alerts")
figure = px.bar(counts, x="day", y="alerts", color="kind", title="Alerts raised per day")
figure.update_layout(height=320)
st.plotly_chart(figure, key="chart_alerts")

st.subheader("Alerts")
st.container(key="alerts_table").dataframe(
    shown,
    hide_index=True,
    column_order=["created_at", "agent_id", "kind", "severity", "state", "message",
                  "deliveries", "delivery_status", "acknowledged_by", "resolution"],
    column_config={"created_at": st.column_config.DatetimeColumn("raised (UTC)",
                                                                 format="YYYY-MM-DD HH:mm"),
                   "delivery_status": "delivery"},
)  # fmt: skip

st.subheader("Deliveries")
mine = deliveries[deliveries["alert_id"].isin(shown["id"])]
if mine.empty:
    st.caption("No delivery: no alert rule sends these alerts to a channel.")
else:
    st.container(key="alerts_deliveries").dataframe(
        mine,
        hide_index=True,
        column_config={
            "created_at": st.column_config.DatetimeColumn(
                "queued (UTC)", format="YYYY-MM-DD HH:mm"
            ),
            "sent_at": st.column_config.DatetimeColumn("sent (UTC)", format="YYYY-MM-DD HH:mm"),
            "last_error": st.column_config.TextColumn("last error", width="large"),
        },
    )
