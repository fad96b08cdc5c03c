"""I/O dataclasses and ids of ``DriftWatchWorkflow`` and its activity.

Fields may be added (with defaults) safely; never renamed or removed once shipped. Inputs carry
the agent id only: metrics, states and call ids stay in the database.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ACT_WATCH_AGENT = "drift.watch_agent"
# Calls one activity run reads; the workflow runs it again while more are waiting.
WATCH_BATCH = 2000
MAX_BATCHES = 25


def drift_watch_workflow_id(agent_id: str) -> str:
    return f"drift-watch-{agent_id}"


def drift_watch_schedule_id(agent_id: str) -> str:
    return f"drift-watch-schedule-{agent_id}"


@dataclass
class DriftWatchInput:
    agent_id: str


@dataclass
class WatchAgentInput:
    agent_id: str
    max_calls: int = WATCH_BATCH


@dataclass
class WatchAgentOutput:
    calls: int = 0
    cursor: int = 0
    more: bool = False
    # One "drift:<agent>:<version>:<metric>" subject per alarm raised.
    alarms: list[str] = field(default_factory=list)
    alert_ids: list[int] = field(default_factory=list)


@dataclass
class DriftWatchResult:
    agent_id: str
    calls: int = 0
    cursor: int = 0
    batches: int = 0
    alarms: list[str] = field(default_factory=list)
    alert_ids: list[int] = field(default_factory=list)
