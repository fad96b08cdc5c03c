"""``GET /healthz``: the state of the database, Temporal and the worker."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

from api.deps import SessionDep, StateDep, auth

router = APIRouter(tags=["health"])


@router.get(
    "/healthz",
    responses={503: {"description": "Not ready: the failing check's message is in its field"}},
    openapi_extra=auth("none"),
)
async def healthz(state: StateDep, session: SessionDep) -> JSONResponse:
    def _db() -> str:
        try:
            session.execute(text("SELECT 1"))
            return "ok"
        except Exception as exc:
            session.rollback()  # a failed probe is reported in the body, not as a failed request
            return f"error: {type(exc).__name__}: {exc}"[:300]

    db = await run_in_threadpool(_db)
    temporal = "ok" if state.temporal is not None else f"unavailable: {state.temporal_error}"
    worker = "unknown"
    if state.temporal is not None:
        try:
            resp = await state.temporal.workflow_service.describe_task_queue(
                DescribeTaskQueueRequest(
                    namespace=state.settings.temporal_namespace,
                    task_queue=TaskQueue(name=state.settings.task_queue),
                    task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
                )
            )
            worker = "ok" if resp.pollers else "no worker polling the task queue"
        except Exception as exc:
            temporal = f"error: {exc}"[:300]
    checks: dict[str, Any] = {"db": db, "temporal": temporal, "worker": worker}
    ready = all(v == "ok" for v in checks.values())
    body = {
        "status": "ok" if ready else "starting",
        **checks,
        "task_queue": state.settings.task_queue,
    }
    return JSONResponse(body, status_code=200 if ready else 503)
