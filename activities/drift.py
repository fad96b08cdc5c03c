"""The drift watch activity: one batch of an agent's new scored calls through its drift
monitors (core/monitoring/drift_watch.py), states, cursor and alerts in one transaction."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.engine import Engine
from temporalio import activity

from core.db import session_scope
from core.monitoring.drift_watch import watch_agent
from orchestration.drift_watch_types import ACT_WATCH_AGENT, WatchAgentInput, WatchAgentOutput


class DriftActivities:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @activity.defn(name=ACT_WATCH_AGENT)
    def watch_agent(self, data: WatchAgentInput) -> WatchAgentOutput:
        with session_scope(self._engine) as session:
            out = watch_agent(session, data.agent_id, max_calls=data.max_calls)
        return WatchAgentOutput(
            calls=out.calls,
            cursor=out.cursor,
            more=out.more,
            alarms=[f"drift:{data.agent_id}:{a.version}:{a.metric}" for a in out.alarms],
            alert_ids=[a.alert_id for a in out.alarms if a.alert_id is not None],
        )

    def all(self) -> list[Callable[..., object]]:
        return [self.watch_agent]
