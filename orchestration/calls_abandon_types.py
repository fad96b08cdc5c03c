"""I/O dataclasses of CallsAbandonWorkflow and its activity, and the schedule's id.

Fields may be added (with defaults) safely; never renamed or removed once shipped. The idle time
is a setting the activity holds, never a workflow input (inputs live in history).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

ABANDON_SCHEDULE_ID = "calls-abandon-sweep"
ACT_ABANDON = "calls.abandon_idle"


@dataclass
class AbandonInput:
    pass


@dataclass
class AbandonActivityInput:
    now: datetime


@dataclass
class AbandonResult:
    abandoned: int = 0
    call_ids: list[str] = field(default_factory=list)  # "{agent}/{platform}/{call id}"
