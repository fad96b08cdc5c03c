"""Prompts & Rollouts page: versions with their labels, the live rollout (weights and guard
metrics over time), and experiment results.

Thin: data from ``dashboard.prompt_data``, figures from ``dashboard.prompt_charts``. Read-only:
labels move and rollouts start through the API or ``backline prompts``.
"""

from __future__ import annotations

import streamlit as st

from dashboard import data, prompt_charts, prompt_data

st.title("Prompts & Rollouts")

problem = data.database_problem()
if problem:
    st.info(f"Nothing to show yet: {problem}. Start Backline with `make run` to create it.")
    st.stop()
missing = prompt_data.missing_tables()
if missing:
    st.info(
        f"The prompt tables are not created yet ({', '.join(missing)}): run `backline migrate`."
    )
    st.stop()

agents = prompt_data.agents()
if not agents:
    st.info(
        "No prompt versions yet. Push one with `backline prompts push <agent> --template-file "
        "prompt.md -m 'first version' --label production --reason 'initial'`."
    )
    st.stop()

labels = {
    a["agent_id"]: f"{a['name']} ({a['agent_id']}) · {a['versions']} versions" for a in agents
}
agent_id = st.selectbox("Agent", list(labels), format_func=labels.__getitem__, key="prompts_agent")
agent = next(a for a in agents if a["agent_id"] == agent_id)

alerts = prompt_data.open_alerts(agent["org_id"], agent_id)
for alert in alerts.itertuples():
    (st.error if alert.severity == "critical" else st.warning)(
        f"{alert.created_at:%Y-%m-%d %H:%M} UTC · {alert.kind}: {alert.message}"
    )

versions = prompt_data.versions(agent_id)
labelled = versions[versions["labels"] != ""]
production = labelled[labelled["labels"].str.contains("production")]
cols = st.columns(3)
cols[0].metric("Versions", len(versions))
cols[1].metric("Production", production["ref"].iloc[0] if not production.empty else "—")
cols[2].metric("Latest", versions["ref"].iloc[0])

st.subheader("Versions")
st.container(key="prompt_versions").dataframe(
    versions,
    hide_index=True,
    column_order=["ref", "labels", "message", "created_by", "created_at", "model", "tools"],
    column_config={
        "created_at": st.column_config.DatetimeColumn("created (UTC)", format="YYYY-MM-DD HH:mm")
    },
)
with st.expander("Prompt text"):
    shown = st.selectbox("Version", list(versions["ref"]), key="prompt_text_version")
    st.code(versions.loc[versions["ref"] == shown, "template"].iloc[0], language="markdown")
history = prompt_data.label_history(agent_id)
if not history.empty:
    with st.expander("Label moves (audited)"):
        st.container(key="label_history").dataframe(history, hide_index=True)

st.subheader("Rollouts")
rollouts = prompt_data.rollouts(agent_id)
if not rollouts:
    st.caption("No rollout yet: `backline prompts rollout start <agent> --version N -r why`.")
else:
    names = {
        r["id"]: f"#{r['id']} {r['control']} → {r['candidate']} · {r['status']}" for r in rollouts
    }
    rollout_id = st.selectbox("Rollout", list(names), format_func=names.__getitem__, key="rollout")
    rollout = next(r for r in rollouts if r["id"] == rollout_id)
    weights = " → ".join(f"{s['weight']:.0%}" for s in rollout["plan"])
    step = (
        f"step {rollout['step'] + 1} of {rollout['steps']}" if rollout["step"] >= 0 else "starting"
    )
    st.markdown(
        f"**{rollout['status']}** · {step} · canary at {rollout['weight']:.0%} · plan {weights}"
    )
    if rollout["outcome_reason"]:
        st.caption(rollout["outcome_reason"])
    checks = prompt_data.rollout_checks(rollout_id)
    left, right = st.columns(2)
    left.plotly_chart(prompt_charts.rollout_progress(checks), key="chart_rollout_progress")
    right.plotly_chart(prompt_charts.guard_metrics(checks), key="chart_guard_metrics")
    if not checks.empty:
        st.container(key="rollout_checks").dataframe(
            checks.sort_values("at", ascending=False),
            hide_index=True,
            column_order=["at", "step", "weight", "canary_n", "control_n", "verdict", "reason"],
        )

st.subheader("Experiments")
experiments = prompt_data.experiments(agent_id)
if not experiments:
    st.caption("No experiment yet: `backline prompts experiment start <agent> --variant 2=0.5`.")
else:
    names = {e["id"]: f"#{e['id']} {e['name']} ({e['kind']}) · {e['status']}" for e in experiments}
    experiment_id = st.selectbox(
        "Experiment", list(names), format_func=names.__getitem__, key="experiment"
    )
    results = prompt_data.experiment_results(agent_id, experiment_id)
    if results is not None:
        st.markdown(f"**{results['verdict']}**: {results['summary']}")
        st.plotly_chart(
            prompt_charts.experiment_scores(results["variants"]), key="chart_experiment"
        )
        st.container(key="experiment_results").dataframe(results["variants"], hide_index=True)
