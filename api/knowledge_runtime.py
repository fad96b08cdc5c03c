"""The API's knowledge runtime: the search index and retriever built once in the lifespan (the
answering service searches through it), and the housekeeping tick that keeps Temporal Schedules
in step with sources.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from api.state import AppState
from connectors.knowledge import build_knowledge_index
from core.db import session_scope, utcnow
from core.knowledge import repository as knowledge_repo
from core.knowledge.ports import KnowledgeIndex
from core.knowledge.retrieval import KnowledgeRetriever
from orchestration.knowledge_refresh_types import RefreshInput, refresh_schedule_id
from orchestration.knowledge_starters import (
    delete_schedule,
    refresh_schedule_ids,
    start_refresh,
    sync_refresh_schedule,
)

log = logging.getLogger("backline.knowledge")
RECONCILE_EVERY_S = 15
ORPHAN_SWEEP_EVERY_S = 600
# The API starts a new source's first refresh itself; the tick only picks up ones it could not.
FIRST_REFRESH_GRACE_S = 30


@dataclass
class KnowledgeRuntime:
    index: KnowledgeIndex
    retriever: KnowledgeRetriever
    last_orphan_sweep: float = field(default=0.0)


def build(state: AppState) -> KnowledgeRuntime:
    s = state.settings
    index = build_knowledge_index(s.data_dir, s.weaviate_url)
    return KnowledgeRuntime(index=index, retriever=KnowledgeRetriever(state.embedder, index))


def runtime(state: AppState) -> KnowledgeRuntime:
    if state.knowledge is None:
        state.knowledge = build(state)
    return state.knowledge


def start(state: AppState, scheduler: AsyncIOScheduler) -> KnowledgeRuntime:
    """Build the runtime and schedule the reconcile tick (call from the lifespan)."""
    built = runtime(state)
    scheduler.add_job(
        reconcile, "interval", seconds=RECONCILE_EVERY_S, args=[state], max_instances=1
    )
    return built


# -- schedules ----------------------------------------------------------------------------------


async def sync_source(state: AppState, source_id: str) -> bool:
    """Bring one source's schedule in line with its row; True once Temporal confirmed it."""
    if state.temporal is None:
        return False

    def _load() -> tuple[bool, int | None]:
        with Session(state.engine) as session:
            source = knowledge_repo.get_source(session, source_id)
            return (source is not None, source.refresh_interval_s if source else None)

    exists, interval = await run_in_threadpool(_load)
    try:
        await sync_refresh_schedule(
            state.temporal,
            source_id=source_id,
            interval_s=interval if exists else None,
            task_queue=state.settings.task_queue,
        )
    except Exception as exc:
        log.warning("could not sync the schedule of %s yet: %s", source_id, exc)
        return False
    if exists:

        def _mark() -> None:
            with session_scope(state.engine) as session:
                source = knowledge_repo.get_source(session, source_id)
                if source is not None and source.refresh_interval_s == interval:
                    source.schedule_synced = True
                    session.add(source)

        await run_in_threadpool(_mark)
    return True


async def request_refresh(
    state: AppState, source_id: str, reason: str, actor: str, force: bool = False
) -> tuple[str, str | None, bool] | None:
    """Start (or join) the source's refresh; None when Temporal is unreachable right now."""
    if state.temporal is None:
        return None
    handle, joined = await start_refresh(
        state.temporal,
        data=RefreshInput(source_id, reason=reason, requested_by=actor, force=force),
        task_queue=state.settings.task_queue,
    )
    return handle.id, handle.result_run_id, joined


async def reconcile(state: AppState) -> None:
    """Finish what Temporal being down left undone: schedules not yet in step, first refreshes
    not yet started, and (every few minutes) schedules whose source is gone."""
    if state.temporal is None:
        return

    def _pending() -> tuple[list[str], list[str]]:
        with Session(state.engine) as session:
            unsynced = [s.id for s in knowledge_repo.unsynced_sources(session)]
            grace = utcnow() - timedelta(seconds=FIRST_REFRESH_GRACE_S)
            never = [s.id for s in knowledge_repo.never_attempted_sources(session, grace)]
            return unsynced, never

    unsynced, never = await run_in_threadpool(_pending)
    for source_id in unsynced:
        await sync_source(state, source_id)
    for source_id in never:
        try:
            await request_refresh(state, source_id, "created", "system:reconcile")
        except Exception as exc:
            log.warning("could not start the first refresh of %s yet: %s", source_id, exc)
    rt = runtime(state)
    if time.monotonic() - rt.last_orphan_sweep >= ORPHAN_SWEEP_EVERY_S:
        rt.last_orphan_sweep = time.monotonic()
        await remove_orphan_schedules(state)


async def remove_orphan_schedules(state: AppState) -> int:
    if state.temporal is None:
        return 0
    ids = await refresh_schedule_ids(state.temporal)

    def _known() -> set[str]:
        with Session(state.engine) as session:
            return {refresh_schedule_id(s.id) for s in knowledge_repo.list_sources(session)}

    known = await run_in_threadpool(_known)
    removed = 0
    for schedule_id in ids:
        if schedule_id not in known:
            removed += await delete_schedule(state.temporal.get_schedule_handle(schedule_id))
    return removed
