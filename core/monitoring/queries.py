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

from sqlmodel import Session

from core.errors import InvalidInputError
from core.monitoring import repository as repo
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
