"""Freshness, judged at read time from a source's last successful check and its policy.

Pure functions of their arguments (the clock is passed in), so the hot path, the sweep and the
dashboard agree, and tests control time. Never reads the wall clock, never touches a database.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from core.knowledge.schemas import FreshnessState

OUTDATED_FALLBACK = (
    "Let me check on that for you: the information I have on this may be out of date, so I "
    "don't want to quote it. Can I have someone confirm and get back to you?"
)


@dataclass(frozen=True)
class Freshness:
    state: FreshnessState
    age_s: float | None
    servable: bool  # False: withheld from retrieval as not current


def judge(
    *,
    verified_at: datetime | None,
    max_staleness_s: int | None,
    failure_count: int,
    now: datetime,
) -> Freshness:
    """``stale`` (withheld) once the last good check is older than the maximum staleness,
    whatever the sweep has marked; ``failing`` while fetches fail but the last good content is
    still within its staleness budget (served, flagged); ``pending`` before the first success."""
    if verified_at is None:
        return Freshness("pending", None, False)
    age = max((now - verified_at).total_seconds(), 0.0)
    if max_staleness_s is not None and age > max_staleness_s:
        return Freshness("stale", age, False)
    if failure_count > 0:
        return Freshness("failing", age, True)
    return Freshness("fresh", age, True)
