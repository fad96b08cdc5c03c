"""Drift watch: an agent's scored calls fed, in order, into one ``DriftMonitor`` per prompt
version, the monitors' state stored in ``DriftState``, and every alarm raised as an alert.

``watch_agent`` is what the ``drift.watch_agent`` activity runs (on a Temporal Schedule per
agent): it reads the agent's ``CallScore`` rows after its cursor in id order (evaluation
traffic, platform ``eval``, left out), feeds each call's metrics to its version's monitor, and
writes the states, the cursor and the alerts in the caller's one transaction, so a retry either
sees everything done or nothing.

A version seen for the first time starts from the previous version's settled reference
(``DriftMonitor.baseline()``) when it has one, so a new prompt version is compared with the
old one from its first call; acknowledging with ``rebaseline`` makes a metric learn its new
normal from the next calls instead.

Metric names are the scorecard's (``CallScore.metrics``): ``quality`` (the score),
``grounded`` (``all_grounded``), ``words_per_agent_turn``, ``tool_failed`` (a call with tool
calls had a failure), ``context_fetch_ms`` and ``stale_hit`` (a retrieval met stale knowledge).
Alerts never carry a phone number: the calls are named by their platform call ids.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session, col, select

from core.audit.service import record_audit
from core.audit.targets import agent_target
from core.db import utcnow
from core.errors import InvalidInputError, NotFoundError
from core.monitoring.alerts import raise_alert, resolve_subject
from core.monitoring.drift import DriftAlarm, DriftMonitor
from core.monitoring.models import CallScore, DriftState

EVAL_PLATFORM = "eval"
UNVERSIONED = "unversioned"
MAX_ALERT_CALLS = 50
DEFAULT_BATCH = 2000

# Scorecard metric name -> DriftMonitor metric name.
METRIC_NAMES: dict[str, str] = {
    "quality": "quality",
    "grounded": "grounded",
    "words_per_agent_turn": "words_per_turn",
    "tool_failed": "tool_failed",
    "context_fetch_ms": "context_latency_ms",
    "stale_hit": "stale_hit",
}
MONITOR_TO_METRIC = {v: k for k, v in METRIC_NAMES.items()}
LABELS = {
    "quality": "quality score",
    "grounded": "share of fully grounded calls",
    "words_per_agent_turn": "words per agent turn",
    "tool_failed": "share of calls with a failed tool call",
    "context_fetch_ms": "context-fetch latency (ms)",
    "stale_hit": "share of calls that met stale knowledge",
}


def alert_kind(metric: str) -> str:
    return f"drift_{metric}"


def drift_subject(agent_id: str, version: str, metric: str) -> str:
    return f"drift:{agent_id}:{version}:{metric}"


def metric_name(name: str) -> str:
    """A scorecard metric name (the monitor's own name is accepted too)."""
    if name in METRIC_NAMES:
        return name
    if name in MONITOR_TO_METRIC:
        return MONITOR_TO_METRIC[name]
    raise InvalidInputError(
        f"unknown drift metric '{name}'; use one of {', '.join(sorted(METRIC_NAMES))}"
    )


def _number(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    return float(v) if math.isfinite(v) else None


def call_metrics(row: CallScore) -> dict[str, object]:
    """The monitor's per-call values from a stored scorecard (None: the call does not count)."""
    m = row.metrics or {}
    words = _number(m.get("words_per_agent_turn"))
    tools = _number(m.get("tool_calls")) or 0.0
    failures = _number(m.get("tool_failures")) or 0.0
    latency = _number(m.get("context_fetch_ms"))
    grounded = m.get("all_grounded")
    stale = _number(m.get("stale_hits"))
    score = _number(row.score)
    return {
        "quality": min(max(score, 0.0), 100.0) if score is not None else None,
        "grounded": grounded if isinstance(grounded, bool) else None,
        "words_per_turn": words if words is not None and words > 0 else None,
        "tool_failed": failures > 0 if tools > 0 else None,
        "context_latency_ms": max(latency, 0.0) if latency is not None else None,
        # Only a call that fetched context could meet stale knowledge.
        "stale_hit": (stale or 0) > 0 if latency is not None or stale else None,
    }


def version_of(row: CallScore) -> str:
    return row.prompt_version or UNVERSIONED


@dataclass
class RaisedAlarm:
    version: str
    metric: str
    alert_id: int | None
    call_score_id: int
    calls: int


@dataclass
class WatchOutcome:
    agent_id: str
    calls: int = 0
    cursor: int = 0
    more: bool = False
    alarms: list[RaisedAlarm] = field(default_factory=list)


def _rows(session: Session, agent_id: str, *, lock: bool) -> dict[str, DriftState]:
    q = select(DriftState).where(DriftState.agent_id == agent_id)
    if lock:
        q = q.with_for_update()
    return {r.prompt_version: r for r in session.exec(q).all()}


def _new_monitor(
    agent_id: str, version: str, rows: dict[str, DriftState], live: dict[str, DriftMonitor]
) -> DriftMonitor:
    """A fresh monitor for a version, from the latest other version's settled reference."""
    for prev in sorted(rows.values(), key=lambda r: r.last_call_score_id, reverse=True):
        if prev.prompt_version == version or not prev.state:
            continue
        old = live.get(prev.prompt_version) or DriftMonitor.from_state(prev.state)
        baseline = old.baseline()
        if baseline:
            return DriftMonitor(agent_id, version, baseline=baseline)
    return DriftMonitor(agent_id, version)


def _window_calls(session: Session, row: CallScore, monitor_metric: str, count: int) -> list[str]:
    """Platform call ids of the last ``count`` calls (at most ``MAX_ALERT_CALLS``) of this
    version up to ``row`` that carried the metric: the calls behind an alarm, latest first."""
    want = min(count, MAX_ALERT_CALLS)
    q = (
        select(CallScore)
        .where(
            CallScore.agent_id == row.agent_id,
            CallScore.platform != EVAL_PLATFORM,
            col(CallScore.id) <= row.id,
        )
        .order_by(col(CallScore.id).desc())
        .limit(max(4 * want, 200))
    )
    q = (
        q.where(col(CallScore.prompt_version).is_(None))
        if row.prompt_version is None
        else q.where(CallScore.prompt_version == row.prompt_version)
    )
    out: list[str] = []
    for r in session.exec(q).all():
        if call_metrics(r).get(monitor_metric) is not None:
            out.append(r.platform_call_id)
            if len(out) >= want:
                break
    return out


def _fmt(metric: str, v: float) -> str:
    if math.isnan(v):
        return "n/a"
    if metric in ("grounded", "tool_failed", "stale_hit"):
        return f"{100 * v:.1f}%"
    return f"{v:.1f}"


def _raise(
    session: Session, org_id: str, agent_id: str, version: str, row: CallScore, alarm: DriftAlarm
) -> RaisedAlarm:
    metric = MONITOR_TO_METRIC[alarm.metric]
    ids = _window_calls(session, row, alarm.metric, alarm.calls_since_change)
    verb = "rose" if alarm.direction == "up" else "fell"
    shown = ", ".join(ids[:3]) + (f" and {len(ids) - 3} more" if len(ids) > 3 else "")
    message = (
        f"Drift in {metric} ({LABELS[metric]}) on {version} of agent {agent_id}: it {verb} "
        f"from {_fmt(metric, alarm.baseline)} (baseline, {alarm.reference_calls} calls) to "
        f"{_fmt(metric, alarm.recent)} over the last {alarm.calls_since_change} calls "
        f"({alarm.detector} {alarm.statistic:.2f} >= {alarm.threshold:.2f}); calls: {shown}"
    )
    detail = {
        "metric": metric,
        "direction": alarm.direction,
        "prompt_version": version,
        "detector": alarm.detector,
        "statistic": round(alarm.statistic, 4),
        "threshold": round(alarm.threshold, 4),
        "baseline": None if math.isnan(alarm.baseline) else round(alarm.baseline, 4),
        "recent": None if math.isnan(alarm.recent) else round(alarm.recent, 4),
        "reference_calls": alarm.reference_calls,
        "window_calls": alarm.calls_since_change,
        "call_ids": ids,
        "platform": row.platform,
        "last_call_score_id": row.id,
    }
    alert = raise_alert(
        session,
        org_id=org_id,
        agent_id=agent_id,
        kind=alert_kind(metric),
        severity="warning",
        message=message,
        detail=detail,
        subject=drift_subject(agent_id, version, metric),
    )
    session.flush()
    return RaisedAlarm(version, metric, alert.id, int(row.id or 0), alarm.calls_since_change)


def watch_agent(session: Session, agent_id: str, max_calls: int = DEFAULT_BATCH) -> WatchOutcome:
    """Feed the agent's new scored calls (at most ``max_calls``) to its monitors; raise an alert
    per alarm. Everything is written in ``session``: commit it once."""
    rows = _rows(session, agent_id, lock=True)
    cursor = max((r.last_call_score_id for r in rows.values()), default=0)
    calls = list(
        session.exec(
            select(CallScore)
            .where(
                CallScore.agent_id == agent_id,
                CallScore.platform != EVAL_PLATFORM,
                col(CallScore.id) > cursor,
            )
            .order_by(col(CallScore.id))
            .limit(max_calls + 1)
        ).all()
    )
    out = WatchOutcome(agent_id, cursor=cursor, more=len(calls) > max_calls)
    calls = calls[:max_calls]
    if not calls:
        return out
    monitors: dict[str, DriftMonitor] = {}
    touched: dict[str, int] = {}
    org_id = calls[0].org_id
    for call in calls:
        version = version_of(call)
        mon = monitors.get(version)
        if mon is None:
            row = rows.get(version)
            mon = (
                DriftMonitor.from_state(row.state)
                if row is not None and row.state
                else _new_monitor(agent_id, version, rows, monitors)
            )
            monitors[version] = mon
        for alarm in mon.update(call_metrics(call)):
            out.alarms.append(_raise(session, call.org_id, agent_id, version, call, alarm))
        touched[version] = touched.get(version, 0) + 1
        org_id = call.org_id
    out.calls = len(calls)
    out.cursor = int(calls[-1].id or cursor)
    now = utcnow()
    for version, mon in monitors.items():
        row = rows.get(version)
        if row is None:
            row = DriftState(org_id=org_id, agent_id=agent_id, prompt_version=version)
            rows[version] = row
        row.state = mon.state()
        row.calls_seen += touched[version]
        row.updated_at = now
    for row in rows.values():  # every row carries the agent's cursor
        row.last_call_score_id = out.cursor
        session.add(row)
    session.flush()
    return out


# -- reading and acknowledging -----------------------------------------------------------------


def _detectors(mon: DriftMonitor, name: str) -> dict[str, Any]:
    m = mon.metrics[name]
    s, e = m.s, m.s["epoch"]
    metric = MONITOR_TO_METRIC[name]
    view: dict[str, Any] = {
        "metric": metric,
        "watched": m.spec.watched,
        "observations": s["observations"],
        "phase": "reference" if e is None else ("alarmed" if m.latched() else "watching"),
        "alarm_latched": m.latched(),
        "reference_size": e["n"] if e is not None else s["reference"]["n"],
        "reference_needed": mon.config["reference_size"],
        "baseline": None,
        "recent": None,
        "detectors": [],
    }
    if e is None:
        return view
    view["baseline"] = m.back(e["mean"])
    recent_n = s["window"]["n"]
    view["recent"] = m.back(s["window"]["mean"]) if recent_n else None
    view["recent_calls"] = int(recent_n)
    for d, c in s["cusum"].items():
        view["detectors"].append(
            {
                "detector": "cusum",
                "direction": d,
                "statistic": c["s"],
                "threshold": e["h"],
                "fraction": c["s"] / e["h"] if e["h"] else 0.0,
                "alarmed": c["alarmed"],
                "calls_since_change": c["run"],
                "recent": m.back(c["run_sum"] / c["run"]) if c["run"] else None,
            }
        )
    view["detectors"].append(
        {
            "detector": "window",
            "direction": m.spec.watched,
            "calls": int(recent_n),
            "of": mon.config["window_size"],
            "alarmed": s["window"]["alarmed"],
        }
    )
    return view


def drift_view(session: Session, agent_id: str) -> list[dict[str, Any]]:
    """Per version (latest first): calls seen, the cursor, and per metric its detectors."""
    out: list[dict[str, Any]] = []
    rows = sorted(
        _rows(session, agent_id, lock=False).values(),
        key=lambda r: r.last_call_score_id,
        reverse=True,
    )
    for row in rows:
        if not row.state:
            continue
        mon = DriftMonitor.from_state(row.state)
        out.append(
            {
                "prompt_version": row.prompt_version,
                "calls_seen": row.calls_seen,
                "last_call_score_id": row.last_call_score_id,
                "updated_at": row.updated_at,
                "metrics": [_detectors(mon, n) for n in mon.metrics],
            }
        )
    return out


def acknowledge_drift(
    session: Session,
    *,
    org_id: str,
    agent_id: str,
    version: str,
    metric: str,
    rebaseline: bool,
    actor: str,
) -> dict[str, Any]:
    """Zero the metric's latched detectors (``rebaseline``: also drop its reference) and resolve
    its open drift alert. Returns the metric's view after it."""
    metric = metric_name(metric)
    row = _rows(session, agent_id, lock=True).get(version)
    if row is None or not row.state:
        raise NotFoundError(
            f"agent '{agent_id}' has no drift state for version '{version}'; "
            f"see `backline drift {agent_id}`"
        )
    mon = DriftMonitor.from_state(row.state)
    name = METRIC_NAMES[metric]
    if name not in mon.metrics:
        raise NotFoundError(f"version '{version}' does not watch '{metric}'")
    mon.acknowledge(name, rebaseline=rebaseline)
    row.state = mon.state()
    row.updated_at = utcnow()
    session.add(row)
    how = "rebaselined" if rebaseline else "acknowledged"
    resolve_subject(
        session,
        subject=drift_subject(agent_id, version, metric),
        kinds=(alert_kind(metric),),
        resolution=f"drift {how} by {actor}",
        actor=actor,
    )
    record_audit(
        session,
        actor=actor,
        action="drift.acknowledge",
        target=agent_target(agent_id),
        org_id=org_id,
        detail={"prompt_version": version, "metric": metric, "rebaseline": rebaseline},
    )
    session.flush()
    return _detectors(mon, name)


def agents_with_scores(session: Session) -> list[str]:
    """Agents that have scored (non-evaluation) calls: the ones a drift watch is scheduled for."""
    q = (
        select(CallScore.agent_id)
        .where(CallScore.platform != EVAL_PLATFORM)
        .distinct()
        .order_by(CallScore.agent_id)
    )
    return [str(a) for a in session.exec(q).all()]
