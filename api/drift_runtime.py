"""The API's drift-watch tick: every agent with scored calls gets its ``DriftWatchWorkflow``
Temporal Schedule (every ``BACKLINE_DRIFT_WATCH_INTERVAL_S``), created or brought up to date
once per API process and agent; an agent whose sync failed is tried again on the next tick."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from api.state import AppState
from core.monitoring.drift_watch import agents_with_scores
from orchestration.drift_watch_starters import sync_drift_schedule

log = logging.getLogger("backline.drift")
RECONCILE_EVERY_S = 15


@dataclass
class DriftRuntime:
    synced: set[str] = field(default_factory=set)


def start(state: AppState, scheduler: AsyncIOScheduler) -> DriftRuntime:
    rt = DriftRuntime()
    scheduler.add_job(
        reconcile, "interval", seconds=RECONCILE_EVERY_S, args=[state, rt], max_instances=1
    )
    return rt


async def reconcile(state: AppState, rt: DriftRuntime) -> int:
    """Sync the schedules of agents not yet synced by this process; returns how many."""
    if state.temporal is None:
        return 0

    def _agents() -> list[str]:
        with Session(state.engine) as session:
            return agents_with_scores(session)

    synced = 0
    for agent_id in await run_in_threadpool(_agents):
        if agent_id in rt.synced:
            continue
        try:
            await sync_drift_schedule(
                state.temporal,
                agent_id=agent_id,
                interval_s=state.settings.drift_watch_interval_s,
                task_queue=state.settings.task_queue,
            )
        except Exception as exc:
            log.warning("could not sync the drift-watch schedule of %s yet: %s", agent_id, exc)
            continue
        rt.synced.add(agent_id)
        synced += 1
    return synced
