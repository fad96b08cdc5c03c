"""Eval activities: prepare a stored run, play one case (heartbeating while the conversation
runs), finalize the run's verdict.

The work itself (loading the suite, driving the agent runtime, checking, storing) is the eval
runner's (``evals.execution``), a layer above; the worker (``cli/worker.py``) hands it in as
plain callables, so this module depends on the workflow's types only.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from orchestration.eval_types import (
    ACT_EVAL_CREATE_SCHEDULED,
    ACT_EVAL_FINALIZE,
    ACT_EVAL_PREPARE,
    ACT_EVAL_RUN_CASE,
    CaseOutcome,
    CreateScheduledInput,
    EvalRunResult,
    FinalizeInput,
    PreparedRun,
    PrepareInput,
    RunCaseInput,
)

HEARTBEAT_EVERY_S = 5.0

Prepare = Callable[[str], dict[str, Any]]
RunCase = Callable[[str, int], Awaitable[dict[str, Any]]]
CancelRequested = Callable[[str], bool]
Finalize = Callable[[str, bool, str | None, str | None], dict[str, Any]]
CreateScheduled = Callable[[str, str, str], str]


class EvalActivities:
    def __init__(
        self,
        prepare: Prepare,
        run_case: RunCase,
        cancel_requested: CancelRequested,
        finalize: Finalize,
        heartbeat_every_s: float = HEARTBEAT_EVERY_S,
        create_scheduled: CreateScheduled | None = None,
    ) -> None:
        self._create_scheduled = create_scheduled
        self._prepare = prepare
        self._run_case = run_case
        self._cancel_requested = cancel_requested
        self._finalize = finalize
        self._every = heartbeat_every_s

    @activity.defn(name=ACT_EVAL_PREPARE)
    async def prepare_run(self, data: PrepareInput) -> PreparedRun:
        out = await asyncio.to_thread(self._prepare, data.run_id)
        return PreparedRun(
            total=int(out["total"]),
            concurrency=int(out["concurrency"]),
            time_cap_s=out.get("time_cap_s"),
            pending=list(out["pending"]),
            cancelled=bool(out.get("cancelled")),
            cost_cap_usd=out.get("cost_cap_usd"),
            spent_usd=float(out.get("spent_usd") or 0.0),
        )

    @activity.defn(name=ACT_EVAL_CREATE_SCHEDULED)
    async def create_scheduled_run(self, data: CreateScheduledInput) -> str:
        """Store a run of the agent's registered suite (a nightly schedule's start); its id."""
        if self._create_scheduled is None:
            raise ApplicationError(
                "this worker cannot create scheduled eval runs", non_retryable=True
            )
        return await asyncio.to_thread(
            self._create_scheduled, data.agent_id, data.suite_name, data.label
        )

    @activity.defn(name=ACT_EVAL_RUN_CASE)
    async def run_case(self, data: RunCaseInput) -> CaseOutcome:
        async def beat() -> None:
            while True:
                activity.heartbeat(data.index)
                await asyncio.sleep(self._every)

        beating = asyncio.ensure_future(beat())
        try:
            result = await self._run_case(data.run_id, data.index)
        finally:
            beating.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beating
        cancel = await asyncio.to_thread(self._cancel_requested, data.run_id)
        cost = (result.get("metrics") or {}).get("cost_usd", 0.0)
        return CaseOutcome(
            data.index,
            str(result["status"]),
            cancel_requested=cancel,
            cost_usd=None if cost is None else float(cost),
        )

    @activity.defn(name=ACT_EVAL_FINALIZE)
    async def finalize_run(self, data: FinalizeInput) -> EvalRunResult:
        out = await asyncio.to_thread(
            self._finalize, data.run_id, data.cancelled, data.not_run_reason, data.stop_reason
        )
        return EvalRunResult(
            run_id=data.run_id,
            status=str(out["status"]),
            verdict=out.get("verdict"),
            done=int(out.get("done", 0)),
            total=int(out.get("total", 0)),
        )

    def all(self) -> list[Callable[..., object]]:
        return [self.create_scheduled_run, self.prepare_run, self.run_case, self.finalize_run]
