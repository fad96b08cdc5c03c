"""The monitoring pages' read-only queries on a SQLite file: calls with their scores (abandoned
left out, per agent), call events with their prompt version, alerts with their deliveries, and
the drift state only once its table exists."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlmodel import Session, SQLModel

import core.tenancy.models  # noqa: F401  (registers the tables before create_all)
from core.calls.models import ABANDONED, Call, CallEvent
from core.db import make_engine, utcnow
from core.monitoring import queries
from core.monitoring.models import Alert, AlertChannel, AlertDelivery, CallScore, DriftState


def _seed(session: Session) -> None:
    now = utcnow()
    for i, (agent, status, version) in enumerate(
        [("a1", "ended", "v2"), ("a1", ABANDONED, "v2"), ("a2", "ended", None)]
    ):
        scope = {"org_id": "o", "agent_id": agent, "platform": "vapi", "platform_call_id": f"c{i}"}
        session.add(Call(**scope, status=status, started_at=now - timedelta(hours=i + 1),
                         prompt_version=version))  # fmt: skip
        session.add(
            CallScore(**scope, score=70.0 + i, prompt_version=version or "v9",
                      layers={"infrastructure": {"score": 0.9, "parts": {}}},
                      metrics={"stale_hits": i})
        )  # fmt: skip
        session.add(CallEvent(**scope, type="context_request", platform_type="x",
                              data={"latency_ms": 100.0 * (i + 1)}, at=now))  # fmt: skip
    session.add(
        CallEvent(org_id="o", agent_id="a2", platform="vapi", platform_call_id="c2",
                  type="context_request", platform_type="x",
                  data={"latency_ms": 5.0, "prompt_version": "v4"}, at=now)
    )  # fmt: skip
    channel = AlertChannel(org_id="o", name="ops", kind="webhook", url_encrypted="x",
                           url_host="example.test")  # fmt: skip
    alert = Alert(org_id="o", agent_id="a1", kind="drift_quality", message="fell")
    session.add_all([channel, alert])
    session.flush()
    assert alert.id is not None and channel.id is not None
    session.add(AlertDelivery(org_id="o", alert_id=alert.id, channel_id=channel.id,
                              event="firing", subject="s", idempotency_key="k",
                              status="failed", attempts=3, last_error="HTTP 500"))  # fmt: skip
    session.add(Alert(org_id="o", agent_id="a2", kind="score_threshold", message="low"))
    session.commit()


def test_monitoring_queries(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'q.db'}")
    SQLModel.metadata.create_all(engine)
    since = utcnow() - timedelta(days=1)
    with Session(engine) as session:
        _seed(session)

        rows = queries.call_quality_rows(session, since)
        assert [r["call_id"] for r in rows] == ["c2", "c0"]  # oldest first, abandoned left out
        by_id = {r["call_id"]: r for r in rows}
        assert by_id["c0"]["prompt_version"] == "v2" and by_id["c0"]["score"] == 70.0
        assert by_id["c2"]["prompt_version"] == "v9"  # the score's version when the call has none
        assert by_id["c0"]["layers"]["infrastructure"] == 0.9
        assert [r["call_id"] for r in queries.call_quality_rows(session, since, "a2")] == ["c2"]

        events = queries.call_event_rows(session, ["context_request"], since, "a2")
        assert [(e["data"]["latency_ms"], e["prompt_version"]) for e in events] == [
            (300.0, None), (5.0, "v4")]  # fmt: skip
        assert len(queries.call_event_rows(session, ["tool_call"], since)) == 0

        alerts = queries.alert_rows(session, since, "a1")
        assert [a["kind"] for a in alerts] == ["drift_quality"]
        (delivery,) = alerts[0]["deliveries"]
        assert delivery["channel"] == "ops" and delivery["status"] == "failed"
        assert delivery["attempts"] == 3 and delivery["last_error"] == "HTTP 500"
        assert len(queries.alert_rows(session, since)) == 2

        assert queries.drift_state_rows(session) == []  # the drift watch has not run yet
        session.add(DriftState(org_id="o1", agent_id="a1", prompt_version="v2", calls_seen=42))
        session.flush()
        rows = queries.drift_state_rows(session)
        assert rows is not None
        assert [(r["agent_id"], r["prompt_version"], r["calls_seen"]) for r in rows] == [
            ("a1", "v2", 42)
        ]
    engine.dispose()
