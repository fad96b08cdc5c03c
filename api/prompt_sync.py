"""Keeps this API process's prompt cache current: a background poll of the change marker.

Every ``POLL_INTERVAL_S`` one primary-key read checks the single-row marker; only when it moved
does the cache reload (off the event loop, in the thread pool). A label move therefore reaches
every API process within about one poll interval plus one reload, and a request never waits
for any of it. A failed poll keeps serving the last good snapshot and tries again.
"""

from __future__ import annotations

import asyncio
import logging

from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from api.state import AppState

log = logging.getLogger("backline.prompts")
POLL_INTERVAL_S = 0.2


def refresh_prompts(state: AppState, force: bool = False) -> bool:
    with Session(state.engine) as session:
        return state.prompts.refresh(session, force=force)


def initial_refresh(state: AppState) -> None:
    """Load before the first request; a database not reachable (or not migrated) yet is
    logged, and the poller keeps trying while the API serves agents without prompts."""
    try:
        refresh_prompts(state, force=True)
    except Exception as exc:
        state.prompts.stats.errors += 1
        state.prompts.stats.last_error = f"{type(exc).__name__}: {exc}"[:300]
        log.warning("prompt cache not loaded at startup (the poller retries): %s", exc)


async def poll_prompts(state: AppState, interval_s: float = POLL_INTERVAL_S) -> None:
    while True:
        try:
            if await run_in_threadpool(refresh_prompts, state):
                log.info("prompt cache reloaded at revision %s", state.prompts.revision)
        except Exception as exc:  # keep serving the last snapshot; the next poll retries
            state.prompts.stats.errors += 1
            state.prompts.stats.last_error = f"{type(exc).__name__}: {exc}"[:300]
            log.warning("prompt cache refresh failed: %s", exc)
        await asyncio.sleep(interval_s)
