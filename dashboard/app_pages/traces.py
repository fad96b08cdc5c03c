"""Traces page: find calls (agent, call id, period, score range), then one call's timeline of
turns, context fetches, retrievals and tool calls from its stored (redacted) trace, its scores,
and the regression scenario it would make.

Thin: data from ``dashboard.monitor_data``, figures from ``dashboard.monitor_charts``, the
scenario from ``evals.from_call``. Other pages link here with ``?agent=&platform=&call=``.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import monitor_charts, monitor_data, monitor_widgets
from evals.from_call import NoCallerTurnsError, scenario_from_call

st.title("Traces")
monitor_widgets.require_database()

linked = (
    st.query_params.get("agent"),
    st.query_params.get("platform"),
    st.query_params.get("call"),
)
if all(linked) and st.session_state.get("traces_linked") != linked:
    # Arriving from a chart: search from that call's agent, over the longest period.
    st.session_state["traces_linked"] = linked
    st.session_state["traces_agent"] = linked[0]
    st.session_state["traces_period"] = "90d"
    st.session_state["traces_call_id"] = linked[2]
filters = monitor_widgets.filters("traces")

left, middle, right = st.columns([2, 1, 1])
call_id = left.text_input("Call id contains", key="traces_call_id")
low = middle.number_input("Min score", 0.0, 100.0, value=None, step=5.0, key="traces_min")
high = right.number_input("Max score", 0.0, 100.0, value=None, step=5.0, key="traces_max")
found = monitor_data.search_calls(monitor_data.calls(filters), call_id or "", low, high)

st.subheader("Calls found")
if found.empty:
    st.info("No call matches this search.")
    st.stop()
st.container(key="traces_found").dataframe(
    found,
    hide_index=True,
    column_order=["time", "agent_id", "platform", "caller", "prompt_version", "score",
                  "ended_reason", "call_id"],
    column_config={"time": st.column_config.DatetimeColumn("time (UTC)",
                                                           format="YYYY-MM-DD HH:mm")},
)  # fmt: skip

keys = list(zip(found["agent_id"], found["platform"], found["call_id"], strict=True))
labels = {
    key: f"{time:%Y-%m-%d %H:%M} · {key[1]} · {key[2]} · {version}"
    for key, time, version in zip(keys, found["time"], found["prompt_version"], strict=True)
}
wanted = tuple(st.session_state.get("traces_linked") or ())
index = keys.index(wanted) if wanted in keys else 0
selected = st.selectbox(
    "Call", keys, index=index, format_func=labels.__getitem__, key="traces_call"
)
trace = monitor_data.trace(*selected) if selected else None
if trace is None:
    st.info("Choose a call to see its trace.")
    st.stop()

st.subheader("Timeline")
call = trace["call"]
row = found[found["call_id"] == call["call_id"]].iloc[0]
st.caption(
    " · ".join(
        str(part)
        for part in (
            call["platform"],
            call["caller_display"] or "unknown caller",
            call["status"],
            call["ended_reason"],
            f"prompt {call['prompt_version']}" if call["prompt_version"] else "no prompt version",
            f"score {call['score']:.1f}" if call["score"] is not None else "not scored",
        )
        if part
    )
)
events = monitor_data.timeline(trace)
st.plotly_chart(monitor_charts.call_timeline(events), key="chart_trace_timeline")
st.container(key="trace_timeline").dataframe(
    events,
    hide_index=True,
    column_config={
        "at": st.column_config.DatetimeColumn("at (UTC)", format="HH:mm:ss"),
        "duration_ms": st.column_config.NumberColumn("latency ms", format="%.0f"),
        "detail": st.column_config.TextColumn("detail", width="large"),
    },
)

st.subheader("Scores")
layers = pd.DataFrame(
    [
        {"layer": name, "score": layer.get("score"),
         "parts": ", ".join(f"{k} {v:.2f}" for k, v in sorted(layer.get("parts", {}).items()))}
        for name, layer in trace["score_layers"].items()
        if isinstance(layer, dict)
    ],
    columns=["layer", "score", "parts"],
)  # fmt: skip
if call["score"] is None:
    st.caption("This call has not been scored yet.")
else:
    st.metric("Quality score", f"{call['score']:.1f} / 100")
    st.container(key="trace_scores").dataframe(layers, hide_index=True)
    metrics = {k: row[k] for k in monitor_data.METRICS if k in row.index}
    st.caption(" · ".join(f"{k.replace('_', ' ')} {v:g}" for k, v in metrics.items()
                          if pd.notna(v)))  # fmt: skip

st.subheader("Regression scenario")
st.caption(
    "The caller's lines scripted as turns and the tools that answered as expectations, in "
    "the eval scenario format (docs/evals.md). Review it, then save it into a suite folder."
)
if st.button("Make this a regression scenario", key="make_scenario"):
    tool_calls = [e["data"] for e in trace["events"] if e["type"] == "tool_call"]
    scenario_call = {**call, "transcript": trace["transcript"], "analysis": trace["analysis"],
                     "started_at": trace["started_at"]}  # fmt: skip
    try:
        st.code(scenario_from_call(scenario_call, trace["events"], tool_calls), language="yaml")
    except NoCallerTurnsError as e:
        st.warning(f"No scenario: {e}.")
