"""Read-only monitoring queries: an agent's open alerts, and its call quality per prompt
version over a period (the four-layer scorecard, aggregated).

Each function takes a ``Session`` and returns plain dicts or schemas. They never write, flush
or commit.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, inspect, text
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from core.calls.models import ABANDONED, Call, CallEvent
from core.errors import InvalidInputError
from core.monitoring import repository as repo
from core.monitoring.models import Alert, AlertChannel, AlertDelivery, CallScore
from core.monitoring.schemas import AgentQuality, LayerMeans, QualityGroup
from core.monitoring.scorecard import LAYERS

_PERIOD = re.compile(r"^(\d{1,4})([hd])$")
MAX_PERIOD = timedelta(days=366)
VERSION_REF = re.compile(r"^v\d{1,9}$")


def parse_period(text: str) -> timedelta:
    """``24h``, ``7d``, ``30d``...: hours or days, at most 366 days."""
    m = _PERIOD.match(text.strip())
    if m is None:
        raise InvalidInputError(
            f"period '{text}' is not a number of hours or days: use e.g. 24h, 7d or 30d"
        )
    value = int(m.group(1))
    span = timedelta(hours=value) if m.group(2) == "h" else timedelta(days=value)
    if span <= timedelta(0) or span > MAX_PERIOD:
        raise InvalidInputError(f"period '{text}' must be between 1h and 366d")
    return span


def _mean(values: Iterable[float]) -> float | None:
    found = list(values)
    return round(sum(found) / len(found), 4) if found else None


def _numbers(rows: list[dict[str, Any]], key: str) -> list[float]:
    return [
        float(m[key])
        for m in rows
        if isinstance(m.get(key), int | float) and not isinstance(m.get(key), bool)
    ]


def _flags(rows: list[dict[str, Any]], key: str) -> list[float]:
    return [1.0 if m[key] else 0.0 for m in rows if isinstance(m.get(key), bool)]


def quality_group(version: str | None, rows: list[tuple[float, dict[str, Any]]]) -> QualityGroup:
    """Means over scored calls. Calls scored before the four-layer card (no metrics) count in
    ``calls`` and ``mean_score`` only; the layer and metric means cover calls scored with their
    evidence (``layered_calls``)."""
    layered = [m for _, m in rows if m.get("evidence_gathered")]
    tool_calls = int(sum(_numbers(layered, "tool_calls")))
    tool_failures = int(sum(_numbers(layered, "tool_failures")))
    means = {name: _mean(_numbers(layered, f"{name}_score")) for name in LAYERS}
    return QualityGroup(
        prompt_version=version,
        calls=len(rows),
        mean_score=_mean(score for score, _ in rows),
        layers=LayerMeans(**means),
        layered_calls=len(layered),
        grounded_share=_mean(_flags(layered, "all_grounded")),
        grounded_ratio=_mean(_numbers(layered, "grounded_ratio")),
        words_per_agent_turn=_mean(_numbers(layered, "words_per_agent_turn")),
        tool_calls=tool_calls,
        tool_failures=tool_failures,
        tool_failure_rate=round(tool_failures / tool_calls, 4) if tool_calls else None,
        containment=_mean(_flags(layered, "contained")),
        stale_hits=int(sum(_numbers(layered, "stale_hits"))),
    )


def _version_key(ref: str | None) -> int:
    return int(ref[1:]) if ref and VERSION_REF.match(ref) else -1


def agent_quality(
    session: Session,
    agent_id: str,
    *,
    period: str = "7d",
    version: str | None = None,
    now: datetime,
) -> AgentQuality:
    """An agent's scored calls of the last ``period``: overall and per prompt version (newest
    version first; calls no version served last). ``version`` keeps only that version's."""
    if version is not None and not VERSION_REF.match(version):
        raise InvalidInputError(f"version '{version}' is not a version ref: use e.g. v3")
    since = now - parse_period(period)
    rows = repo.score_rows(session, agent_id, since, version)
    by_version: dict[str | None, list[tuple[float, dict[str, Any]]]] = {}
    for ref, score, metrics in rows:
        by_version.setdefault(ref, []).append((score, metrics))
    groups = [
        quality_group(ref, by_version[ref])
        for ref in sorted(by_version, key=_version_key, reverse=True)
    ]
    return AgentQuality(
        agent_id=agent_id,
        period=period,
        since=since,
        version=version,
        overall=quality_group(None, [(score, metrics) for _, score, metrics in rows]),
        versions=groups,
    )


def open_alert_rows(
    session: Session, agent_id: str, kind_prefix: str, org_id: str | None = None
) -> list[dict[str, Any]]:
    """An agent's open alerts whose kind starts with ``kind_prefix`` (``knowledge_``,
    ``prompt_``), newest first, for the dashboard page of the thing they are about."""
    return [
        {
            "id": a.id,
            "created_at": a.created_at,
            "kind": a.kind,
            "severity": a.severity,
            "state": a.state,
            "message": a.message,
        }
        for a in repo.open_alerts_of_kind(session, agent_id, kind_prefix, org_id)
    ]


def call_quality_rows(
    session: Session, since: datetime, agent_id: str | None = None
) -> list[dict[str, Any]]:
    """Every call since ``since`` (of one agent, or all; abandoned calls left out) with its
    score, layers and metrics when scored: the input of the monitoring pages' trends. The
    prompt version is the call's, else the one its score recorded."""
    when = func.coalesce(col(Call.started_at), col(Call.created_at)).label("time")
    stmt = (
        sa_select(
            col(Call.agent_id),
            col(Call.platform),
            col(Call.platform_call_id),
            when,
            col(Call.caller_display),
            col(Call.status),
            col(Call.ended_reason),
            func.coalesce(col(Call.prompt_version), col(CallScore.prompt_version)),
            col(CallScore.score),
            col(CallScore.layers),
            col(CallScore.metrics),
        )
        .outerjoin(
            CallScore,
            and_(
                col(CallScore.agent_id) == col(Call.agent_id),
                col(CallScore.platform) == col(Call.platform),
                col(CallScore.platform_call_id) == col(Call.platform_call_id),
            ),
        )
        .where(when >= since, col(Call.status) != ABANDONED)
    )
    if agent_id:
        stmt = stmt.where(col(Call.agent_id) == agent_id)
    rows = []
    for (
        agent,
        platform,
        call_id,
        at,
        caller,
        status,
        reason,
        version,
        score,
        layers,
        metrics,
    ) in session.execute(stmt.order_by(when, col(Call.id))):
        layer_scores = {
            name: (layers or {}).get(name, {}).get("score")
            for name in LAYERS
            if isinstance((layers or {}).get(name, {}), dict)
        }
        rows.append(
            {
                "agent_id": agent,
                "platform": platform,
                "call_id": call_id,
                "time": at,
                "caller_display": caller,
                "status": status,
                "ended_reason": reason,
                "prompt_version": version,
                "score": None if score is None else float(score),
                "layers": layer_scores,
                "metrics": dict(metrics or {}),
            }
        )
    return rows


def call_event_rows(
    session: Session, types: Iterable[str], since: datetime, agent_id: str | None = None
) -> list[dict[str, Any]]:
    """Call events of the given types since ``since``, oldest first, each with its call's
    prompt version: context fetches (``latency_ms``), tool calls (tool, server, status,
    latency, breaker). Data is as stored (redacted on append)."""
    stmt = (
        sa_select(
            col(CallEvent.at),
            col(CallEvent.agent_id),
            col(CallEvent.platform),
            col(CallEvent.platform_call_id),
            col(CallEvent.type),
            col(CallEvent.data),
            col(Call.prompt_version),
        )
        .outerjoin(
            Call,
            and_(
                col(Call.agent_id) == col(CallEvent.agent_id),
                col(Call.platform) == col(CallEvent.platform),
                col(Call.platform_call_id) == col(CallEvent.platform_call_id),
            ),
        )
        .where(col(CallEvent.type).in_(list(types)), col(CallEvent.at) >= since)
    )
    if agent_id:
        stmt = stmt.where(col(CallEvent.agent_id) == agent_id)
    return [
        {
            "at": at,
            "agent_id": agent,
            "platform": platform,
            "call_id": call_id,
            "type": kind,
            "data": dict(data or {}),
            "prompt_version": (data or {}).get("prompt_version") or version,
        }
        for at, agent, platform, call_id, kind, data, version in session.execute(
            stmt.order_by(col(CallEvent.at), col(CallEvent.id))
        )
    ]


def alert_rows(
    session: Session, since: datetime, agent_id: str | None = None
) -> list[dict[str, Any]]:
    """Alerts raised since ``since`` (of one agent, or all), newest first, each with its
    deliveries (channel, event, status, attempts, last error)."""
    stmt = select(Alert).where(col(Alert.created_at) >= since)
    if agent_id:
        stmt = stmt.where(Alert.agent_id == agent_id)
    alerts = list(session.exec(stmt.order_by(col(Alert.created_at).desc(), col(Alert.id).desc())))
    ids = [a.id for a in alerts if a.id is not None]
    deliveries: dict[int, list[dict[str, Any]]] = {}
    if ids:
        channels = {c.id: c for c in session.exec(select(AlertChannel))}
        for d in session.exec(
            select(AlertDelivery)
            .where(col(AlertDelivery.alert_id).in_(ids))
            .order_by(col(AlertDelivery.id))
        ):
            channel = channels.get(d.channel_id)
            deliveries.setdefault(d.alert_id, []).append(
                {
                    "channel": channel.name if channel else f"#{d.channel_id}",
                    "channel_kind": channel.kind if channel else None,
                    "event": d.event,
                    "status": d.status,
                    "attempts": d.attempts,
                    "last_error": d.last_error,
                    "response_status": d.response_status,
                    "created_at": d.created_at,
                    "sent_at": d.sent_at,
                }
            )
    return [
        {
            "id": a.id,
            "created_at": a.created_at,
            "agent_id": a.agent_id,
            "kind": a.kind,
            "severity": a.severity,
            "state": a.state,
            "message": a.message,
            "subject": a.subject,
            "acknowledged_by": a.acknowledged_by,
            "resolved_at": a.resolved_at,
            "resolution": a.resolution,
            "deliveries": deliveries.get(a.id or -1, []),
        }
        for a in alerts
    ]


DRIFT_STATE_TABLE = "driftstate"


def drift_state_rows(session: Session) -> list[dict[str, Any]] | None:
    """The drift detectors' stored state, one dict per row, or None when the schema has no
    drift state table yet (the drift watch has not been installed or has not run)."""
    if not inspect(session.get_bind()).has_table(DRIFT_STATE_TABLE):
        return None
    result = session.execute(text(f"SELECT * FROM {DRIFT_STATE_TABLE}"))
    return [dict(row) for row in result.mappings()]
