"""Alert routing on a real store: the default route, rules (single, trend, threshold), the
cool-down, de-duplication and the outbox rows that state changes write in their own
transaction; plus the signature and Slack body the sender posts."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from core.db import make_engine, utcnow
from core.monitoring import delivery, thresholds
from core.monitoring.alerts import acknowledge_alert, raise_alert, resolve_alert
from core.monitoring.models import AlertDelivery, AlertRule, CallScore
from core.monitoring.rules import AlertChannelCreate, AlertRuleCreate, create_channel, create_rule
from tests.conftest import SECRET_KEY


@pytest.fixture
def engine(sqlite_url: str) -> Iterator[Engine]:
    e = make_engine(sqlite_url)
    yield e
    e.dispose()


def _ids() -> tuple[str, str]:
    tag = uuid.uuid4().hex[:8]
    return f"org-{tag}", f"agent-{tag}"


def _channel(s: Session, org: str, name: str = "hook") -> int:
    body = AlertChannelCreate(name=name, kind="webhook", url="https://hooks.example.com/x")
    created = create_channel(s, org, body, "tester", SECRET_KEY)
    assert created.signing_secret and created.signing_secret.startswith("whsec_")
    return created.id


def _rows(s: Session, alert_id: int | None) -> list[AlertDelivery]:
    return list(s.exec(select(AlertDelivery).where(AlertDelivery.alert_id == alert_id)))


def test_no_rules_routes_warning_and_worse_to_every_channel(engine: Engine) -> None:
    org, agent = _ids()
    with Session(engine) as s:
        a, b = _channel(s, org, "a"), _channel(s, org, "b")
        info = raise_alert(s, org_id=org, agent_id=agent, kind="k", message="m", severity="info")
        warn = raise_alert(s, org_id=org, agent_id=agent, kind="k2", message="m")
        s.commit()
        assert _rows(s, info.id) == []
        rows = _rows(s, warn.id)
        assert sorted(r.channel_id for r in rows) == [a, b]
        assert {r.status for r in rows} == {"pending"}
        assert rows[0].idempotency_key == f"alert-{warn.id}-{rows[0].channel_id}-firing"
        assert rows[0].payload["alert"]["kind"] == "k2"


def test_no_channels_no_rows_and_an_open_alert_is_not_notified_twice(engine: Engine) -> None:
    org, agent = _ids()
    with Session(engine) as s:
        first = raise_alert(s, org_id=org, agent_id=agent, kind="k", message="m", subject="x")
        s.commit()
        assert _rows(s, first.id) == []
        _channel(s, org)
        again = raise_alert(s, org_id=org, agent_id=agent, kind="k", message="m2", subject="x")
        assert again.id == first.id  # de-duplicated: the open alert is updated, not re-notified
        s.commit()
        assert _rows(s, first.id) == []


def test_rules_match_kinds_prefixes_and_severity(engine: Engine) -> None:
    org, agent = _ids()
    with Session(engine) as s:
        ch = _channel(s, org)
        create_rule(
            s, org, agent, AlertRuleCreate(name="drift", kind="trend"), "tester"
        )  # defaults to drift_*
        create_rule(
            s,
            org,
            agent,
            AlertRuleCreate(
                name="crit", kind="single", alert_kinds=["knowledge_source_failing"],
                min_severity="critical", channel_ids=[ch],
            ),
            "tester",
        )  # fmt: skip
        drift = raise_alert(s, org_id=org, agent_id=agent, kind="drift_score", message="m")
        warn = raise_alert(
            s, org_id=org, agent_id=agent, kind="knowledge_source_failing", message="m"
        )
        crit = raise_alert(
            s, org_id=org, agent_id=agent, kind="knowledge_source_failing", message="m",
            severity="critical", subject="other",
        )  # fmt: skip
        other = raise_alert(s, org_id=org, agent_id=agent, kind="prompt_rollout_paused", message="")
        s.commit()
        assert len(_rows(s, drift.id)) == 1
        assert _rows(s, warn.id) == []  # below the rule's severity
        assert len(_rows(s, crit.id)) == 1
        assert _rows(s, other.id) == []  # rules exist: the default route no longer applies


def test_ack_and_resolve_notify_and_cooldown_suppresses_a_refire(engine: Engine) -> None:
    org, agent = _ids()
    with Session(engine) as s:
        _channel(s, org)
        create_rule(
            s, org, agent, AlertRuleCreate(name="all", kind="single", cooldown_minutes=30), "t"
        )
        first = raise_alert(s, org_id=org, agent_id=agent, kind="k", message="m", subject="src:1")
        s.commit()
        assert first.id is not None
        acknowledge_alert(s, org, first.id, "dana")
        resolve_alert(s, org, first.id, "dana", "fixed")
        resolve_alert(s, org, first.id, "dana", "again")  # no state change, no notification
        s.commit()
        events = [(r.event, r.status) for r in _rows(s, first.id)]
        assert events == [
            ("firing", "pending"),
            ("acknowledged", "pending"),
            ("resolved", "pending"),
        ]

        second = raise_alert(s, org_id=org, agent_id=agent, kind="k", message="m", subject="src:1")
        s.commit()
        assert second.id != first.id
        assert [(r.event, r.status) for r in _rows(s, second.id)] == [("firing", "suppressed")]
        assert second.id is not None
        resolve_alert(s, org, second.id, "dana")
        s.commit()
        assert [r.status for r in _rows(s, second.id)] == ["suppressed", "suppressed"]

        # Past the cool-down it notifies again.
        for row in _rows(s, first.id):
            row.created_at = utcnow() - timedelta(minutes=31)
            s.add(row)
        s.commit()
        third = raise_alert(s, org_id=org, agent_id=agent, kind="k", message="m", subject="src:1")
        s.commit()
        assert [r.status for r in _rows(s, third.id)] == ["pending"]


def test_a_disabled_rule_set_falls_back_to_the_default_route(engine: Engine) -> None:
    org, agent = _ids()
    with Session(engine) as s:
        _channel(s, org)
        create_rule(s, org, agent, AlertRuleCreate(name="off", kind="single", enabled=False), "t")
        alert = raise_alert(s, org_id=org, agent_id=agent, kind="k", message="m")
        s.commit()
        assert len(_rows(s, alert.id)) == 1


def _score(s: Session, org: str, agent: str, score: float, i: int) -> None:
    s.add(
        CallScore(
            org_id=org, agent_id=agent, platform="vapi", platform_call_id=f"c{i}", score=score,
            created_at=utcnow() + timedelta(seconds=i),
        )
    )  # fmt: skip
    s.flush()


def test_threshold_rule_fires_over_its_window_and_resolves_when_it_clears(engine: Engine) -> None:
    org, agent = _ids()
    with Session(engine) as s:
        _channel(s, org)
        rule = create_rule(
            s, org, agent,
            AlertRuleCreate(name="low", kind="threshold", metric="score_mean", op="<",
                            value=0.6, window_calls=3, cooldown_minutes=0),
            "t",
        )  # fmt: skip
        _score(s, org, agent, 0.2, 0)
        _score(s, org, agent, 0.3, 1)
        assert thresholds.evaluate(s, agent) == []  # two calls: no verdict yet
        _score(s, org, agent, 0.4, 2)
        [(rule_id, value, hit)] = thresholds.evaluate(s, agent)
        assert rule_id == rule.id and hit and value == pytest.approx(0.3)
        s.commit()
        alert = s.exec(
            select(AlertRule).where(AlertRule.id == rule.id)
        ).one()  # the rule still exists
        fired = [r for r in s.exec(select(AlertDelivery).where(AlertDelivery.org_id == org))]
        assert [(r.event, r.status) for r in fired] == [("firing", "pending")]
        assert fired[0].payload["alert"]["kind"] == thresholds.THRESHOLD_KIND
        assert fired[0].payload["alert"]["subject"] == delivery.rule_subject(alert.id or 0)
        for i in range(3, 6):
            _score(s, org, agent, 0.9, i)
        [(_, value, hit)] = thresholds.evaluate(s, agent)
        assert not hit and value == pytest.approx(0.9)
        s.commit()
        events = [r.event for r in s.exec(select(AlertDelivery).where(AlertDelivery.org_id == org))]
        assert events == ["firing", "resolved"]


def test_threshold_rule_needs_its_fields() -> None:
    with pytest.raises(ValueError, match="window_calls"):
        AlertRuleCreate(name="x", kind="threshold", metric="score_mean", op="<", value=0.5)
    with pytest.raises(ValueError, match="threshold rules only"):
        AlertRuleCreate(name="x", kind="single", value=0.5)


def test_signature_verifies_and_rejects_tampering_and_old_timestamps() -> None:
    body = delivery.webhook_body({"a": 1})
    now = int(time.time())
    header = delivery.signature("whsec_test", now, body)
    assert header.startswith(f"t={now},v1=")
    assert delivery.verify_signature("whsec_test", header, body, now)
    assert not delivery.verify_signature("whsec_test", header, body + b" ", now)
    assert not delivery.verify_signature("other", header, body, now)
    assert not delivery.verify_signature("whsec_test", header, body, now + 3600)


def test_slack_body_has_text_and_blocks() -> None:
    data = {
        "id": "k",
        "type": "alert.resolved",
        "alert": {"id": 7, "org_id": "o", "agent_id": "a", "kind": "k", "severity": "critical",
                  "message": "down", "resolution": "back up", "acknowledged_by": None},
    }  # fmt: skip
    body = json.loads(delivery.slack_body(data))
    assert "down" in body["text"] and "resolved" in body["text"]
    assert [b["type"] for b in body["blocks"]] == ["header", "section", "context"]
    assert "back up" in body["blocks"][2]["elements"][0]["text"]


def test_the_verification_snippet_in_the_docs_accepts_what_the_sender_signs() -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "alerts.md").read_text()
    code = re.search(r"```python\n(.*?)```", text, re.S)
    assert code is not None
    namespace: dict[str, Any] = {}
    exec(code.group(1), namespace)
    verify = namespace["verify_backline_signature"]
    body = delivery.webhook_body({"id": "alert-1-1-firing"})
    header = delivery.signature("whsec_doc", int(time.time()), body)
    assert verify("whsec_doc", header, body)
    assert not verify("whsec_doc", header, body.replace(b"1-1", b"1-2"))
    assert not verify("whsec_doc", delivery.signature("whsec_doc", 1, body), body)
