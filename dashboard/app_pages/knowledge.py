"""Knowledge page: each source's freshness (fresh, stale, failing), last refresh, chunk counts,
a "refresh now" button, and retrieval latency over time.

Thin by design: data from ``dashboard.knowledge_data``, figures from
``dashboard.knowledge_charts``. The button goes through the API (``dashboard.knowledge_api``);
the page never writes to the database.
"""

from __future__ import annotations

import streamlit as st

from dashboard import data, knowledge_api, knowledge_charts, knowledge_data

st.title("Knowledge")

problem = data.database_problem()
if problem:
    st.info(f"Nothing to show yet: {problem}. Start Backline with `make run` to create it.")
    st.stop()
missing = knowledge_data.missing_tables()
if missing:
    st.info(f"The knowledge tables are missing ({', '.join(missing)}): run `backline migrate`.")
    st.stop()

agents = {a["agent_id"]: a for a in knowledge_data.agents()}
if not agents:
    st.info("No knowledge sources yet. Add one with `backline kb add <agent> <files>`.")
    st.stop()

agent_id = st.selectbox(
    "Agent",
    list(agents),
    format_func=lambda a: f"{agents[a]['name']} ({a})",
    key="knowledge_agent",
)
sources = knowledge_data.sources(agent_id)

for alert in knowledge_data.open_alerts(agent_id).itertuples():
    (st.error if alert.severity == "critical" else st.warning)(
        f"Alert {alert.id} ({alert.state}) · {alert.created_at:%Y-%m-%d %H:%M} UTC · "
        f"{alert.kind}: {alert.message} — `backline alerts ack {alert.id} --agent {agent_id}`"
    )

fresh_m, failing_m, stale_m, chunks_m = st.columns(4)
counts = sources["freshness"].value_counts()
fresh_m.metric("Fresh", int(counts.get("fresh", 0)))
failing_m.metric("Failing", int(counts.get("failing", 0)))
stale_m.metric("Stale", int(counts.get("stale", 0)))
chunks_m.metric("Chunks", int(sources["chunks"].sum()) if not sources.empty else 0)

st.subheader("Sources")
st.container(key="sources_table").dataframe(
    sources,
    hide_index=True,
    column_order=[
        "name",
        "kb",
        "kind",
        "freshness",
        "verified_at",
        "last_attempt_at",
        "chunks",
        "documents",
        "failures",
        "last_error",
    ],
    column_config={
        "verified_at": st.column_config.DatetimeColumn(
            "last good refresh (UTC)", format="YYYY-MM-DD HH:mm"
        ),
        "last_attempt_at": st.column_config.DatetimeColumn(
            "last attempt (UTC)", format="YYYY-MM-DD HH:mm"
        ),
        "last_error": "error",
    },
)
stale = sources[sources["freshness"].isin(["stale", "failing"])]
if not stale.empty:
    st.warning(
        'Stale sources are withheld from answers (callers hear "let me check on that"); '
        "failing ones still serve their last good content until they turn stale: "
        + ", ".join(f"{r.name} ({r.freshness})" for r in stale.itertuples())
    )

left, right = st.columns([2, 1])
with left:
    names = dict(zip(sources["source_id"], sources["name"], strict=True))
    chosen = st.selectbox(
        "Source to refresh", list(names), format_func=names.__getitem__, key="refresh_source"
    )
    if st.button("Refresh now", key="refresh_now", type="primary") and chosen:
        outcome = knowledge_api.request_refresh(chosen)
        (st.success if outcome.ok else st.error)(outcome.message)
        knowledge_data.clear()
with right:
    st.plotly_chart(knowledge_charts.freshness_counts(sources), key="chart_freshness")

st.subheader("Retrieval latency")
retrievals = knowledge_data.retrievals(agent_id)
st.plotly_chart(knowledge_charts.retrieval_latency(retrievals), key="chart_retrieval_latency")
if not retrievals.empty:
    st.caption(
        f"{len(retrievals)} retrievals in the last {knowledge_data.LATENCY_DAYS} days; "
        f"p50 {retrievals['latency_ms'].median():.1f} ms, "
        f"p95 {retrievals['latency_ms'].quantile(0.95):.1f} ms"
    )
    st.container(key="retrievals_table").dataframe(
        retrievals.sort_values("at", ascending=False).head(50),
        hide_index=True,
        column_order=["at", "via", "status", "latency_ms", "hits", "withheld", "query"],
        column_config={
            "at": st.column_config.DatetimeColumn("time (UTC)", format="YYYY-MM-DD HH:mm:ss")
        },
    )
