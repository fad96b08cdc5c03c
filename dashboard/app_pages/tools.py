"""Tools page: latency (p50/p95) and failures per tool, and each server's breaker state as its
latest tool call saw it, from the calls' recorded tool calls.

Thin: data from ``dashboard.monitor_data``, figures from ``dashboard.monitor_charts``.
"""

from __future__ import annotations

import streamlit as st

from dashboard import monitor_charts, monitor_data, monitor_widgets

st.title("Tools")
monitor_widgets.require_database()
filters = monitor_widgets.filters("tools")

tools = monitor_data.tool_calls(filters)
if tools.empty:
    st.info(f"No tool calls in the last {filters.period} for this selection.")
    st.stop()

per_tool = monitor_data.tool_summary(tools)
breakers = monitor_data.breaker_states(tools)
cols = st.columns(4)
cols[0].metric("Tool calls", len(tools))
cols[1].metric("Failed", int((~tools["ok"].astype(bool)).sum()))
cols[2].metric("Latency p95", f"{tools['latency_ms'].quantile(0.95):.0f} ms")
cols[3].metric("Breakers open", int((breakers["breaker"] == "open").sum()))

left, right = st.columns(2)
left.plotly_chart(monitor_charts.tool_latency(per_tool), key="chart_tools_latency")
right.plotly_chart(monitor_charts.tool_failures(tools), key="chart_tools_failures")

st.subheader("Per tool")
st.container(key="tools_summary").dataframe(
    per_tool,
    hide_index=True,
    column_config={
        "failure_rate": st.column_config.NumberColumn("failure rate", format="percent"),
        "p50_ms": st.column_config.NumberColumn("p50 ms", format="%.0f"),
        "p95_ms": st.column_config.NumberColumn("p95 ms", format="%.0f"),
    },
)

st.subheader("Breakers per server")
st.caption("The state each server's breaker was in at its latest tool call in the period.")
st.container(key="tools_breakers").dataframe(
    breakers,
    hide_index=True,
    column_config={
        "as_of": st.column_config.DatetimeColumn("as of (UTC)", format="YYYY-MM-DD HH:mm"),
        "breaker_open_calls": "calls refused (open)",
    },
)

st.subheader("Failed tool calls")
failed = tools[~tools["ok"].astype(bool)].sort_values("at", ascending=False)
if failed.empty:
    st.caption("No failed tool call in this period.")
else:
    st.container(key="tools_failed").dataframe(
        failed,
        hide_index=True,
        column_order=["at", "tool", "server", "status", "latency_ms", "attempts", "breaker",
                      "prompt_version", "call_id"],
        column_config={"at": st.column_config.DatetimeColumn("at (UTC)",
                                                             format="YYYY-MM-DD HH:mm:ss")},
    )  # fmt: skip
    chosen = st.selectbox("Call", list(range(len(failed))), key="tools_call",
                          format_func=lambda i: f"{failed['call_id'].iloc[i]} · "
                                                f"{failed['tool'].iloc[i]}")  # fmt: skip
    monitor_widgets.trace_link(failed.iloc[chosen or 0])
