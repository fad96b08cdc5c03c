"""Calls page: recent calls with their scores, trends, and one call's full trace.

Thin by design: data comes from ``dashboard.data``, figures from ``dashboard.charts``. It never
writes, and shows callers only by their masked display form.
"""

from __future__ import annotations

import streamlit as st

from dashboard import charts, data

st.title("Calls")

problem = data.database_problem()
if problem:
    st.info(f"Nothing to show yet: {problem}. Start Backline with `make run` to create it.")
    st.stop()

agents = data.agents()
agent_labels = {"": "All agents"} | {
    a["agent_id"]: f"{a['name']} ({a['agent_id']}) · {a['calls']} calls" for a in agents
}
agent_id = (
    st.selectbox(
        "Agent", list(agent_labels), format_func=agent_labels.__getitem__, key="calls_agent"
    )
    or None
)

calls = data.recent_calls(agent_id)
if calls.empty:
    st.info(
        "No calls recorded yet. Calls appear here once a voice platform sends its first "
        "webhook for this agent."
    )
    st.stop()

activity = data.call_activity(agent_id)
scored = activity["score"].dropna()
total, abandoned, mean, latest = st.columns(4)
total.metric(f"Calls, last {data.ACTIVITY_DAYS} days", len(activity))
abandoned.metric(
    "Abandoned",
    data.abandoned_calls(agent_id),
    help="Calls with no end-of-call report, closed after the idle time "
    "(BACKLINE_CALLS_ABANDON_AFTER_S); not counted in calls or quality",
)
mean.metric("Mean quality score", f"{scored.mean():.1f}" if len(scored) else "—")
latest.metric("Latest call (UTC)", f"{calls['time'].iloc[0]:%Y-%m-%d %H:%M}")

left, right = st.columns(2)
left.plotly_chart(charts.calls_per_day(activity), key="chart_calls_per_day")
right.plotly_chart(charts.score_over_time(activity), key="chart_score_over_time")

st.subheader("Recent calls")
st.container(key="calls_table").dataframe(
    calls,
    hide_index=True,
    column_order=["time", "platform", "caller", "status", "ended_reason", "score", "summary"],
    column_config={
        "time": st.column_config.DatetimeColumn("time (UTC)", format="YYYY-MM-DD HH:mm"),
        "ended_reason": "ended reason",
        "score": st.column_config.ProgressColumn(
            "score", min_value=0, max_value=100, format="%.1f"
        ),
        "summary": st.column_config.TextColumn("summary", width="large"),
    },
)

st.subheader("Call trace")
call_keys = list(zip(calls["agent_id"], calls["platform"], calls["call_id"], strict=True))
call_labels = {
    key: f"{time:%Y-%m-%d %H:%M} · {key[1]} · {caller} · {key[2]}"
    + ("" if agent_id else f" · {key[0]}")
    for key, time, caller in zip(call_keys, calls["time"], calls["caller"], strict=True)
}
selected = st.selectbox("Call", call_keys, format_func=call_labels.__getitem__, key="trace_call")
trace = data.call_trace(*selected) if selected else None
if trace is None:
    st.info("Choose a call to see its trace.")
    st.stop()

call = trace["call"]
st.caption(
    " · ".join(
        str(part)
        for part in (
            call["platform"],
            call["caller_display"] or "unknown caller",
            trace["direction"],
            call["status"],
            call["ended_reason"],
            f"prompt {call['prompt_version']}" if call["prompt_version"] else None,
        )
        if part
    )
)
if call["summary"]:
    st.markdown(f"**Summary:** {call['summary']}")

events_tab, transcript_tab, score_tab, memory_tab = st.tabs(
    ["Events", "Transcript", "Scorecard", "Memory written"]
)
with events_tab:
    if trace["events"].empty:
        st.info("No events were recorded for this call.")
    else:
        st.container(key="trace_events").dataframe(
            trace["events"],
            hide_index=True,
            column_config={
                "at": st.column_config.DatetimeColumn("at (UTC)", format="HH:mm:ss"),
                "platform_type": "platform event",
            },
        )
with transcript_tab:
    if not trace["transcript"]:
        st.info("No transcript was stored for this call.")
    for turn in trace["transcript"]:
        role = "assistant" if turn.get("role") == "agent" else "user"
        with st.chat_message(role):
            st.markdown(str(turn.get("text", "")))
with score_tab:
    if call["score"] is None:
        st.info("This call has not been scored yet.")
    else:
        st.metric("Quality score", f"{call['score']:.1f} / 100")
        st.plotly_chart(charts.scorecard_parts(trace["score_parts"]), key="chart_scorecard")
        if not trace["score_layers"].empty:
            st.markdown("**Layers** (0-1; see docs/monitoring.md)")
            st.container(key="trace_layers").dataframe(trace["score_layers"], hide_index=True)
        for note in trace["score_notes"]:
            st.markdown(f"- {note}")
with memory_tab:
    if not trace["memories"] and trace["facts"].empty and trace["facts_closed"].empty:
        st.info("No memories were written from this call.")
    for memory in trace["memories"]:
        st.markdown(f"**{memory['kind']}** ({memory['method']}, revision {memory['revision']})")
        st.markdown(memory["text"])
    fact_columns = ["key", "value", "valid_from", "valid_to", "status"]
    fact_config = {
        "valid_from": st.column_config.DatetimeColumn(
            "valid from (UTC)", format="YYYY-MM-DD HH:mm"
        ),
        "valid_to": st.column_config.DatetimeColumn("valid to (UTC)", format="YYYY-MM-DD HH:mm"),
    }
    if not trace["facts"].empty:
        st.markdown("**Facts learned**")
        st.container(key="trace_facts").dataframe(
            trace["facts"], hide_index=True, column_order=fact_columns, column_config=fact_config
        )
    if not trace["facts_closed"].empty:
        st.markdown("**Facts this call superseded**")
        st.container(key="trace_facts_closed").dataframe(
            trace["facts_closed"],
            hide_index=True,
            column_order=fact_columns,
            column_config=fact_config,
        )
