"""Evals page: runs over time (pass rate per run), the per-scenario results of a selected run,
its diff against the baseline, and a transcript viewer with the failing checks highlighted.

Thin: data from ``dashboard.eval_data``, figures from ``dashboard.eval_charts``. Read-only: runs
start through the API or ``backline eval run``.
"""

from __future__ import annotations

import html

import pandas as pd
import streamlit as st

from dashboard import data, eval_charts, eval_data

st.title("Evals")

problem = data.database_problem()
if problem:
    st.info(f"Nothing to show yet: {problem}. Start Backline with `make run` to create it.")
    st.stop()
missing = eval_data.missing_tables()
if missing:
    st.info(f"The eval tables are not created yet ({', '.join(missing)}): run `backline migrate`.")
    st.stop()

runs = eval_data.runs()
if runs.empty:
    st.info(
        "No eval runs yet. Run a suite with `backline eval run <agent> <folder>` "
        "(`make run` starts one of examples/evals/demo for agent `demo`)."
    )
    st.stop()

agents = sorted(runs["agent_id"].unique())
agent_id = st.selectbox("Agent", agents, key="evals_agent")
runs = runs[runs["agent_id"] == agent_id]

st.container(key="evals_chart").plotly_chart(eval_charts.pass_rate_over_time(runs), width="stretch")

st.subheader("Runs")
st.container(key="eval_runs").dataframe(
    runs,
    hide_index=True,
    column_order=eval_data.RUN_COLUMNS,
    column_config={
        "pass_rate": st.column_config.ProgressColumn("pass rate", min_value=0, max_value=1),
        "created_at": st.column_config.DatetimeColumn("started (UTC)", format="YYYY-MM-DD HH:mm"),
    },
)

labels = {
    r.id: f"{r.created_at:%Y-%m-%d %H:%M} · {r.suite} · {r.status} · "
    f"{r.passed}/{r.passed + r.failed} passed"
    for r in runs.itertuples()
}
run_id = st.selectbox("Run", list(labels), format_func=labels.__getitem__, key="eval_run")
run = runs[runs["id"] == run_id].iloc[0]
cols = st.columns(4)
cols[0].metric("Status", run["status"])
cols[1].metric("Passed", f"{run['passed']}/{run['passed'] + run['failed']}")
cols[2].metric("Skipped", int(run["skipped"]))
cols[3].metric("Target", run["target"])

cases = eval_data.cases(run_id)
st.subheader("Cases")
if not cases:
    st.caption("No case has finished in this run yet.")
else:
    st.container(key="eval_cases").dataframe(eval_data.case_table(cases), hide_index=True)

st.subheader("Against the baseline")
if pd.notna(run["baseline_run_id"]) and run["baseline_run_id"]:
    st.caption(
        f"Baseline run {run['baseline_run_id']}: passes/runs per scenario, and the verdict "
        "(regressed, improved, pass, or inconclusive when the runs are too few)."
    )
else:
    st.caption("No baseline: accept a run with `backline eval accept <run>` to compare with it.")
diff = eval_data.baseline_diff(run["scenarios"])
if diff.empty:
    st.caption("No per-scenario verdicts stored for this run yet.")
else:
    st.container(key="eval_diff").dataframe(diff, hide_index=True)

st.subheader("Transcript")
if cases:
    names = {
        c[
            "index"
        ]: f"#{c['index']} {c['scenario']} · {c['persona'] or 'no persona'} · {c['status']}"
        for c in cases
    }
    failing_first = sorted(
        names, key=lambda i: cases[i]["status"] == "passed" if i < len(cases) else True
    )
    index = st.selectbox("Case", failing_first, format_func=names.__getitem__, key="eval_case")
    case = next(c for c in cases if c["index"] == index)
    for check in eval_data.failed_checks(case):
        st.error(f"{check['name']}: {check.get('detail') or 'failed'}")
    if case["reason"]:
        st.caption(case["reason"])
    with st.container(key="eval_transcript"):
        for role, text, flagged in eval_data.transcript_lines(case):
            line = f"**{role}**: {html.escape(text)}"
            if flagged:
                st.markdown(f":red-background[{line}]")
            else:
                st.markdown(line)
