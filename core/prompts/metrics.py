"""Per-call guard metrics, split by the prompt version that served each call.

Reads what the post-call path already stored (the call's analysis, its scorecard, its tool
events) and reduces it to the numbers ``core.prompts.sequential`` compares. Read-only: never
writes, flushes or commits.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import Session

from core.prompts import repository as repo
from core.prompts.sequential import ArmStats

SCORE_PARTS = ("completion", "escalation", "talk_ratio", "frustration")
METRICS = ("score", *SCORE_PARTS, "tool_failure", "transferred", "latency_ms")
_TRANSFER_REASON = re.compile(r"forward|transfer", re.IGNORECASE)


@dataclass(frozen=True)
class CallOutcome:
    version: str
    call_id: str
    created_at: datetime
    values: Mapping[str, float] = field(default_factory=dict)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def outcome_values(
    *,
    score: float | None,
    parts: Mapping[str, Any] | None,
    analysis: Mapping[str, Any] | None,
    ended_reason: str | None,
    tool_failed: bool | None,
) -> dict[str, float]:
    """One call's metrics; a metric the call did not report is absent (never guessed)."""
    values: dict[str, float] = {}
    if score is not None:
        values["score"] = float(score)
    for part in SCORE_PARTS:
        v = _number((parts or {}).get(part))
        if v is not None:
            values[part] = v
    analysis = analysis or {}
    transferred = bool(analysis.get("transferred")) or bool(
        ended_reason and _TRANSFER_REASON.search(ended_reason)
    )
    values["transferred"] = 1.0 if transferred else 0.0
    latency = _number(analysis.get("turn_latency_ms"))
    if latency is not None:
        values["latency_ms"] = latency
    if tool_failed is not None:
        values["tool_failure"] = 1.0 if tool_failed else 0.0
    return values


def load_outcomes(
    session: Session, agent_id: str, refs: Iterable[str], since: datetime
) -> list[CallOutcome]:
    refs = list(refs)
    rows = repo.call_outcome_rows(session, agent_id, refs, since)
    # A call that used tools counts as a tool failure when any of its tool calls errored;
    # calls without tools have no tool-failure value at all.
    tools: dict[tuple[str, str], bool] = {}
    for platform, call_id, data in repo.tool_event_rows(session, agent_id, since):
        errors = _number(data.get("errors")) or 0.0
        key = (platform, call_id)
        tools[key] = tools.get(key, False) or errors > 0
    out = []
    for version, platform, call_id, created_at, ended_reason, analysis, score, parts in rows:
        out.append(
            CallOutcome(
                version=version,
                call_id=call_id,
                created_at=created_at,
                values=outcome_values(
                    score=score,
                    parts=parts if isinstance(parts, dict) else None,
                    analysis=analysis,
                    ended_reason=ended_reason,
                    tool_failed=tools.get((platform, call_id)),
                ),
            )
        )
    return out


def arm_stats(outcomes: Iterable[CallOutcome]) -> dict[str, ArmStats]:
    by_metric: dict[str, list[float]] = defaultdict(list)
    for outcome in outcomes:
        for name, value in outcome.values.items():
            by_metric[name].append(value)
    return {name: ArmStats.from_values(values) for name, values in by_metric.items()}


def split_by_version(outcomes: Iterable[CallOutcome]) -> dict[str, list[CallOutcome]]:
    out: dict[str, list[CallOutcome]] = defaultdict(list)
    for outcome in outcomes:
        out[outcome.version].append(outcome)
    return out
