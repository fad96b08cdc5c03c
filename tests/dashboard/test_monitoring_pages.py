"""The monitoring pages (Overview, Quality & Drift, Traces, Tools, Alerts) rendered by AppTest
against the seeded SQLite file: three calls of agent ``demo`` on prompt versions v2 and v3 with
context fetches, retrievals and tool calls (one server's breaker open), and three alerts with
their deliveries."""

from __future__ import annotations

import random
from pathlib import Path

import pandas as pd
import yaml
from sqlmodel import Session
from streamlit.testing.v1 import AppTest

from core.db import make_engine
from core.monitoring.drift import DriftMonitor
from core.monitoring.models import DriftState
from tests.dashboard.seed import CARD, MARIA, OLIVER, QUIET_AGENT_ID, Seed

APP = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"
TIMEOUT_S = 60


def _open(page: str) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT_S).run()
    at.switch_page(f"app_pages/{page}.py").run()
    _ok(at)
    return at


def _ok(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    shown = "\n".join(
        [m.value for m in at.markdown] + [c.value for c in at.caption] + [str(c.value) for c in
                                                                           at.code]
    )  # fmt: skip
    assert MARIA not in shown and OLIVER not in shown


def _table(at: AppTest, key: str) -> pd.DataFrame:
    frame: pd.DataFrame = at.get_by_key(key).dataframe[0].value
    return frame


def _charts(at: AppTest) -> int:
    return len(at.get("plotly_chart"))


def test_overview_shows_daily_numbers_per_version(seeded_db: Seed) -> None:
    at = _open("overview")

    assert at.title[0].value == "Overview"
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Calls"] == "3"
    assert metrics["Containment"] == "100%"
    daily = _table(at, "overview_daily")
    assert set(daily["prompt_version"]) == {"v2", "v3"}
    assert daily["calls"].sum() == 3
    assert _charts(at) == 4

    at.multiselect(key="overview_versions").select("v2").run()
    _ok(at)
    assert {m.label: m.value for m in at.metric}["Calls"] == "1"
    assert set(_table(at, "overview_daily")["prompt_version"]) == {"v2"}


def test_overview_lists_the_calls_behind_a_day_and_version(seeded_db: Seed) -> None:
    at = _open("overview")
    oldest = seeded_db.calls[0]
    day = f"{oldest.started_at:%Y-%m-%d}"

    at.selectbox(key="overview_behind_day").select(day).run()
    at.selectbox(key="overview_behind_version").select("v2").run()
    _ok(at)

    behind = _table(at, "overview_calls_behind")
    assert list(behind["call_id"]) == [oldest.call_id]
    link = at.get("page_link")[0]
    assert "traces" in link.proto.page


def test_the_quiet_agent_and_a_short_period_narrow_the_overview(seeded_db: Seed) -> None:
    at = _open("overview")

    at.selectbox(key="overview_period").select("24h").run()
    _ok(at)
    assert {m.label: m.value for m in at.metric}["Calls"] == "1"

    at.selectbox(key="overview_agent").select(QUIET_AGENT_ID).run()
    _ok(at)
    assert any("No calls in the last 24h" in i.value for i in at.info)


def test_quality_page_plots_distributions_with_alert_markers(seeded_db: Seed) -> None:
    at = _open("quality")

    assert at.title[0].value == "Quality & Drift"
    assert _charts(at) == 5
    markers = _table(at, "quality_alerts")
    assert set(markers["kind"]) == {"drift_grounded", "score_threshold"}  # not the knowledge one
    calls = _table(at, "quality_calls")
    assert len(calls) == 3
    assert calls["stale_hits"].sum() == 1
    assert {m.label: m.value for m in at.metric}["Stale hits"] == "1"
    assert any("drift watch has not run yet" in i.value for i in at.info)

    at.multiselect(key="quality_versions").select("v3").run()
    _ok(at)
    assert set(_table(at, "quality_calls")["prompt_version"]) == {"v3"}


def test_quality_page_shows_stored_drift_state(seeded_db: Seed) -> None:
    # A real monitor fed 300 calls: past its reference, so every metric is watched.
    monitor = DriftMonitor("demo", "v3", metrics=("words_per_turn", "grounded"))
    rng = random.Random(3)
    for _ in range(300):
        monitor.update({"words_per_turn": rng.gauss(20, 3), "grounded": rng.random() < 0.9})
    engine = make_engine(seeded_db.url)
    with Session(engine) as session:
        session.add(
            DriftState(
                org_id="org-demo",
                agent_id="demo",
                prompt_version="v3",
                state=monitor.state(),
                calls_seen=300,
            )
        )
        # A state this version cannot read is shown as such, not a failed page.
        session.add(
            DriftState(org_id="org-demo", agent_id="demo", prompt_version="v2", state={"calls": 42})
        )
        session.commit()
    engine.dispose()

    at = _open("quality")

    states = _table(at, "drift_states").set_index(["prompt_version", "metric"])
    words = states.loc[("v3", "words_per_turn")]
    assert words["phase"] == "watching"
    assert 18 < words["baseline"] < 22
    assert 0 <= words["closest_to_alarm"] < 1
    assert states.loc[("v3", "grounded"), "phase"] == "watching"
    assert states.loc[("v2", "—"), "phase"].startswith("unreadable state")
    (chart,) = [c for c in at.get("plotly_chart") if "Drift detectors" in c.proto.spec]
    assert "words_per_turn" in chart.proto.spec


def test_traces_page_searches_and_shows_a_timeline(seeded_db: Seed) -> None:
    at = _open("traces")
    oliver = seeded_db.calls[2]

    assert at.title[0].value == "Traces"
    assert len(_table(at, "traces_found")) == 3
    at.text_input(key="traces_call_id").input("7a0b").run()
    _ok(at)
    found = _table(at, "traces_found")
    assert list(found["call_id"]) == [oliver.call_id]

    timeline = _table(at, "trace_timeline")
    lanes = set(timeline["lane"])
    assert {"caller turn", "agent turn", "context fetch", "retrieval", "tool call"} <= lanes
    tools = timeline[timeline["lane"] == "tool call"]
    assert list(tools["label"]) == ["check_insurance · timeout", "check_insurance · breaker_open"]
    assert "breaker open" in tools["detail"].iloc[1]
    retrieval = timeline[timeline["lane"] == "retrieval"]
    assert "chunk-insurance-1 (fresh)" in retrieval["detail"].iloc[0]
    assert _charts(at) == 1
    assert set(_table(at, "trace_scores")["layer"]) == {
        "infrastructure", "execution", "reaction", "outcome"}  # fmt: skip


def test_traces_score_bounds_narrow_the_search(seeded_db: Seed) -> None:
    at = _open("traces")
    scores = sorted(_table(at, "traces_found")["score"])

    at.number_input(key="traces_max").set_value(scores[0]).run()
    _ok(at)
    assert list(_table(at, "traces_found")["score"]) == [scores[0]]

    at.number_input(key="traces_min").set_value(scores[0] + 0.001).run()
    _ok(at)
    assert any("No call matches" in i.value for i in at.info)


def test_traces_page_builds_a_regression_scenario(seeded_db: Seed) -> None:
    at = _open("traces")
    maria = seeded_db.calls[0]
    at.text_input(key="traces_call_id").input(maria.call_id).run()

    at.button(key="make_scenario").click().run()
    _ok(at)

    scenario = yaml.safe_load(at.code[0].value)
    assert scenario["agent"] == "demo" and scenario["version"] == 2
    assert scenario["turns"][1] == "Yes please. Can I pay with my card [CARD]?"
    assert CARD not in at.code[0].value
    assert scenario["expect"]["tools_called"] == [
        {"name": "book_appointment", "args": {"day": "Thursday", "phone": {"present": True}}}
    ]


def test_traces_page_opens_the_linked_call(seeded_db: Seed) -> None:
    second = seeded_db.calls[1]
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT_S)
    at.query_params.update({"agent": "demo", "platform": second.platform,
                            "call": second.call_id})  # fmt: skip
    at.run()
    at.switch_page("app_pages/traces.py").run()
    _ok(at)

    assert at.selectbox(key="traces_call").value == ("demo", second.platform, second.call_id)
    assert not at.warning, [w.value for w in at.warning]
    retrieval = _table(at, "trace_timeline")
    assert "chunk-hours-2 (stale)" in " ".join(retrieval["detail"])


def test_tools_page_shows_latency_failures_and_breakers(seeded_db: Seed) -> None:
    at = _open("tools")

    assert at.title[0].value == "Tools"
    summary = _table(at, "tools_summary").set_index("tool")
    assert summary.loc["check_insurance", "calls"] == 2
    assert summary.loc["check_insurance", "failures"] == 2
    assert summary.loc["book_appointment", "failures"] == 0
    assert summary.loc["book_appointment", "p50_ms"] == 420.0
    breakers = _table(at, "tools_breakers").set_index("server")
    assert breakers.loc["insurance", "breaker"] == "open"
    assert breakers.loc["calendar", "breaker"] == "closed"
    assert len(_table(at, "tools_failed")) == 2
    assert _charts(at) == 2

    at.multiselect(key="tools_versions").select("v2").run()
    _ok(at)
    assert list(_table(at, "tools_summary")["tool"]) == ["book_appointment"]


def test_alerts_page_lists_alerts_with_their_deliveries(seeded_db: Seed) -> None:
    at = _open("alerts")

    assert at.title[0].value == "Alerts"
    table = _table(at, "alerts_table")
    assert dict(zip(table["kind"], table["state"], strict=True)) == {
        "drift_grounded": "firing",
        "score_threshold": "acknowledged",
        "knowledge_source_failing": "resolved",
    }
    deliveries = _table(at, "alerts_deliveries")
    failed = deliveries[deliveries["status"] == "failed"].iloc[0]
    assert failed["kind"] == "drift_grounded" and failed["attempts"] == 5
    assert "HTTP 500" in failed["last_error"]
    assert {m.label: m.value for m in at.metric}["Failed deliveries"] == "1"
    assert _charts(at) == 1

    at.multiselect(key="alerts_state").select("resolved").run()
    _ok(at)
    assert list(_table(at, "alerts_table")["kind"]) == ["knowledge_source_failing"]
    assert list(_table(at, "alerts_deliveries")["status"]) == ["sent"]

    at.multiselect(key="alerts_state").unselect("resolved").run()
    at.multiselect(key="alerts_kind").select("score_threshold").run()
    _ok(at)
    assert list(_table(at, "alerts_table")["state"]) == ["acknowledged"]


def test_monitoring_pages_on_an_empty_database_explain_themselves(empty_db: str) -> None:
    for page in ("overview", "quality", "traces", "tools", "alerts"):
        at = _open(page)
        assert at.info, page
