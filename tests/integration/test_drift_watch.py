"""Drift watch on a real store (SQLite and Postgres): stored scorecards fed to the monitors in id
order, evaluation traffic left out, state and cursor kept in ``DriftState``, an alert per alarm
naming the metric, the version and the calls, nothing counted twice after a rollback, the
state view, acknowledging (with and without a new baseline) and a new version starting from
the previous one's baseline."""

from __future__ import annotations

import random
import re
import uuid
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from core.monitoring.drift_watch import (
    acknowledge_drift,
    agents_with_scores,
    drift_view,
    watch_agent,
)
from core.monitoring.models import Alert, CallScore, DriftState


def _ids() -> tuple[str, str]:
    tag = uuid.uuid4().hex[:8]
    return f"org-{tag}", f"agent-{tag}"


def _add_calls(
    s: Session,
    org: str,
    agent: str,
    n: int,
    *,
    rng: random.Random,
    words: float,
    grounded: float,
    version: str | None = "v1",
    platform: str = "vapi",
) -> list[str]:
    ids = []
    for _ in range(n):
        call_id = f"call-{uuid.uuid4().hex[:12]}"
        metrics: dict[str, Any] = {
            "words_per_agent_turn": round(max(1.0, rng.gauss(words, 0.15 * words)), 2),
            "all_grounded": rng.random() < grounded,
            "tool_calls": 0,
            "tool_failures": 0,
            "context_fetch_ms": None,
            "stale_hits": 0,
        }
        s.add(
            CallScore(
                org_id=org,
                agent_id=agent,
                platform=platform,
                platform_call_id=call_id,
                score=80.0,
                prompt_version=version,
                metrics=metrics,
            )
        )
        ids.append(call_id)
    s.commit()
    return ids


def _watch(engine: Engine, agent: str) -> Any:
    with Session(engine, expire_on_commit=False) as s:
        out = watch_agent(s, agent, max_calls=500)
        s.commit()
        return out


def _drift_alerts(s: Session, agent: str) -> list[Alert]:
    q = select(Alert).where(Alert.agent_id == agent, col(Alert.kind).startswith("drift_"))
    return list(s.exec(q))


def test_a_shift_raises_one_alert_naming_metric_version_and_calls(any_engine: Engine) -> None:
    org, agent = _ids()
    rng = random.Random(7)
    with Session(any_engine) as s:
        _add_calls(s, org, agent, 400, rng=rng, words=20, grounded=0.9)
        # Evaluation traffic with wild values is never fed to the monitors.
        _add_calls(s, org, agent, 50, rng=rng, words=80, grounded=0.0, platform="eval")
    first = _watch(any_engine, agent)
    assert first.calls == 400 and not first.alarms
    assert agent in agents_with_scores(Session(any_engine))

    # The watch reads after its cursor: nothing new, nothing done.
    again = _watch(any_engine, agent)
    assert again.calls == 0 and again.cursor == first.cursor

    # A batch whose transaction rolls back leaves the cursor (and the state) where it was.
    with Session(any_engine) as s:
        shifted = _add_calls(s, org, agent, 300, rng=rng, words=26, grounded=0.9)
    with Session(any_engine) as s:
        watch_agent(s, agent, max_calls=500)
        s.rollback()
    with Session(any_engine) as s:
        row = s.exec(select(DriftState).where(DriftState.agent_id == agent)).one()
        assert row.last_call_score_id == first.cursor and row.calls_seen == 400

    out = _watch(any_engine, agent)
    assert out.calls == 300
    # The CUSUM and the window test may both alarm: one open alert per subject either way.
    assert {a.metric for a in out.alarms} == {"words_per_agent_turn"}
    with Session(any_engine) as s:
        (alert,) = _drift_alerts(s, agent)
        assert alert.kind == "drift_words_per_agent_turn"
        assert alert.subject == f"drift:{agent}:v1:words_per_agent_turn"
        assert alert.severity == "warning" and alert.state == "firing"
        assert "words_per_agent_turn" in alert.message and "v1" in alert.message
        assert "rose" in alert.message
        d = alert.detail
        assert d["prompt_version"] == "v1" and d["direction"] == "up"
        assert 18 < d["baseline"] < 22 and d["recent"] > d["baseline"] * 1.15
        assert 0 < len(d["call_ids"]) <= 50
        assert set(d["call_ids"]) <= set(shifted)  # the calls of the shifted stretch
        assert d["call_ids"][0] in alert.message
        # No phone number; a call id's hex tail may be all digits, so it does not count.
        assert not re.search(r"(?<![\w-])\+?\d{10,}", alert.message)
        row = s.exec(select(DriftState).where(DriftState.agent_id == agent)).one()
        assert row.calls_seen == 700 and row.last_call_score_id == out.cursor

        (version,) = drift_view(s, agent)
        words = next(m for m in version["metrics"] if m["metric"] == "words_per_agent_turn")
        assert words["phase"] == "alarmed" and words["alarm_latched"]
        cusum_up = next(d for d in words["detectors"] if d.get("direction") == "up")
        assert cusum_up["alarmed"] and cusum_up["statistic"] >= cusum_up["threshold"]

        view = acknowledge_drift(
            s,
            org_id=org,
            agent_id=agent,
            version="v1",
            metric="words_per_agent_turn",
            rebaseline=True,
            actor="ops@example.com",
        )
        s.commit()
        assert view["phase"] == "reference" and not view["alarm_latched"]
        (alert,) = _drift_alerts(s, agent)
        assert alert.state == "resolved" and "rebaselined" in (alert.resolution or "")


def test_a_new_version_starts_from_the_previous_baseline(any_engine: Engine) -> None:
    org, agent = _ids()
    rng = random.Random(11)
    with Session(any_engine) as s:
        _add_calls(s, org, agent, 300, rng=rng, words=20, grounded=0.9, version="v1")
    _watch(any_engine, agent)
    with Session(any_engine) as s:
        _add_calls(s, org, agent, 250, rng=rng, words=27, grounded=0.9, version="v2")
    out = _watch(any_engine, agent)
    # v2 had no reference of its own yet: only the handed-over one can have alarmed.
    assert {(a.version, a.metric) for a in out.alarms} == {("v2", "words_per_agent_turn")}
    with Session(any_engine) as s:
        versions = {v["prompt_version"]: v for v in drift_view(s, agent)}
        assert set(versions) == {"v1", "v2"}
        rows = s.exec(select(DriftState).where(DriftState.agent_id == agent)).all()
        assert {r.last_call_score_id for r in rows} == {out.cursor}
