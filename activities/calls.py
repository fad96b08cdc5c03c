"""Call housekeeping activities: close calls that never ended as ``abandoned``.

Thin: one unit of work around ``CallsService.abandon_idle_calls``; idempotent (a closed call is
no longer ``in_progress``), so Temporal may retry it. The idle time is injected from settings.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy.engine import Engine
from temporalio import activity

from core.calls.service import CallsService
from core.db import session_scope
from orchestration.calls_abandon_types import ACT_ABANDON, AbandonActivityInput, AbandonResult

log = logging.getLogger("backline.calls")


class CallsActivities:
    def __init__(self, engine: Engine, secret_key: str, abandon_after_s: int) -> None:
        self._engine = engine
        self._secret_key = secret_key
        self._abandon_after_s = abandon_after_s

    @activity.defn(name=ACT_ABANDON)
    def abandon_idle(self, data: AbandonActivityInput) -> AbandonResult:
        with session_scope(self._engine) as session:
            calls = CallsService(session, self._secret_key).abandon_idle_calls(
                data.now, self._abandon_after_s
            )
            ids = [f"{c.agent_id}/{c.platform}/{c.platform_call_id}" for c in calls]
        if ids:
            log.info("closed %d idle calls as abandoned", len(ids))
        return AbandonResult(abandoned=len(ids), call_ids=ids)

    def all(self) -> list[Callable[..., object]]:
        return [self.abandon_idle]
