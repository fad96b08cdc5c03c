"""Memory page: what an agent remembers about one caller, and how that changed over time.

Thin by design: data comes from ``dashboard.data``, figures from ``dashboard.charts``. It never
writes (forgetting a caller goes through the API), and never shows a raw number or a caller
hash: callers are chosen and shown by their masked display form.
"""

from __future__ import annotations

import streamlit as st

from dashboard import charts, data

st.title("Memory")

problem = data.database_problem()
if problem:
    st.info(f"Nothing to show yet: {problem}. Start Backline with `make run` to create it.")
    st.stop()

agents = {a["agent_id"]: a for a in data.agents()}
if not agents:
    st.info("No agents yet. Create one through the API or the CLI, then make a call.")
    st.stop()

agent_id = st.selectbox(
    "Agent",
    list(agents),
    format_func=lambda a: f"{agents[a]['name']} ({a})",
    key="memory_agent",
)
callers = {c["caller_hash"]: c for c in data.callers(agent_id)} if agent_id else {}
if not callers:
    st.info(
        "No callers remembered for this agent yet. Memory is written after each call ends "
        "with a caller number."
    )
    st.stop()


def _caller_label(caller_hash: str) -> str:
    caller = callers[caller_hash]
    count = caller["call_count"]
    shown = caller["caller_display"] or "caller without a number"
    return f"{shown} · {count} call{'' if count == 1 else 's'}"


caller_hash = st.selectbox("Caller", list(callers), format_func=_caller_label, key="caller")
chosen = callers[caller_hash]
timeline = data.caller_timeline(chosen["org_id"], chosen["agent_id"], caller_hash)
if timeline is None:
    st.info("This caller was just forgotten or is not in the database any more.")
    st.stop()

context = timeline["context"]
st.subheader("Current context")
calls_metric, last_metric, facts_metric = st.columns(3)
calls_metric.metric("Calls remembered", context["call_count"])
last = context["last_call_at"]
last_metric.metric("Last call (UTC)", f"{last:%Y-%m-%d %H:%M}" if last else "—")
facts_metric.metric("Current facts", len(timeline["current_facts"]))
if context["summary"]:
    st.markdown(f"**What the agent is told:** {context['summary']}")
else:
    st.caption("No summary yet.")
if timeline["current_facts"].empty:
    st.caption("No current facts.")
else:
    st.container(key="current_facts").dataframe(
        timeline["current_facts"],
        hide_index=True,
        column_order=["key", "value", "valid_from", "platform", "source_call_id"],
        column_config={
            "valid_from": st.column_config.DatetimeColumn("since (UTC)", format="YYYY-MM-DD HH:mm"),
            "source_call_id": "from call",
        },
    )

st.subheader("Timeline")
st.plotly_chart(
    charts.fact_timeline(timeline["facts"], now=timeline["as_of"]), key="chart_fact_timeline"
)

st.subheader("Fact history")
st.container(key="fact_history").dataframe(
    timeline["facts"],
    hide_index=True,
    column_order=["key", "value", "status", "valid_from", "valid_to", "platform", "source_call_id"],
    column_config={
        "valid_from": st.column_config.DatetimeColumn(
            "valid from (UTC)", format="YYYY-MM-DD HH:mm"
        ),
        "valid_to": st.column_config.DatetimeColumn("valid to (UTC)", format="YYYY-MM-DD HH:mm"),
        "source_call_id": "from call",
    },
)

st.subheader("Call summaries")
if timeline["summaries"].empty:
    st.caption("No call summaries yet.")
for summary in timeline["summaries"].itertuples(index=False):
    with st.container(border=True):
        st.caption(
            f"{summary.created_at:%Y-%m-%d %H:%M} UTC · {summary.platform} · "
            f"{summary.source_call_id} · {summary.method}"
        )
        st.markdown(str(summary.text))
