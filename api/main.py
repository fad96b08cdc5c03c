"""The FastAPI app factory and its lifespan (the API's composition root).

The lifespan builds the engine, connectors and caches once, connects to Temporal in the
background (the edge keeps accepting calls into the inbox while Temporal is down), runs the
post-call drainer (starting the workflows of end-of-call reports just accepted, behind their
replies), and the housekeeping ticks dispatching inbox rows whose workflow has not started
(Temporal was down, or the process stopped before its drainer got to them) and alert deliveries
(the outbox) to ``AlertDeliveryWorkflow``. Purging expired data is
``RetentionWorkflow``'s job (a Temporal Schedule the worker creates).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from fastapi import FastAPI
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from api import drift_runtime, knowledge_runtime
from api.deps import TenantGuard, TextGuard
from api.docs import install_docs
from api.errors import error_responses, install_error_handlers, install_openapi_errors
from api.limits import EdgeLimits
from api.prompt_sync import initial_refresh, poll_prompts
from api.routes import (
    alert_delivery,
    alerts,
    audit,
    calls,
    custom_llm,
    drift,
    evals,
    health,
    knowledge,
    mcp,
    memory,
    prompts,
    quality,
    retell_llm,
    retention,
    temporal_codec,
    tenancy,
    tools,
    webhooks,
)
from api.state import AgentDirectory, AppState
from connectors.embedder import shared_embedder
from connectors.mcp.endpoint import McpEndpoint
from connectors.mcp.pool import McpClientPool
from connectors.vectors.embedded import EmbeddedVectorStore
from core.calls import repository as calls_repo
from core.calls.answering import clip
from core.calls.models import WebhookInbox
from core.calls.service import CallsService
from core.db import make_engine, utcnow
from core.evals.gate import StoredRunsEvalGate
from core.monitoring import delivery as alert_delivery_outbox
from core.ports import Embedder
from core.settings import Settings
from core.tools.gateway import ToolGateway
from orchestration.alert_delivery_starters import start_alert_delivery
from orchestration.codec import connect_temporal

log = logging.getLogger("backline.api")
DISPATCH_GRACE = timedelta(seconds=3)
DISPATCH_BATCH = 100
_OUTAGE = (
    RPCStatusCode.UNAVAILABLE,
    RPCStatusCode.DEADLINE_EXCEEDED,
    RPCStatusCode.RESOURCE_EXHAUSTED,
)


async def _connect_temporal(state: AppState) -> None:
    address = state.settings.temporal_address or f"127.0.0.1:{state.settings.temporal_port}"
    delay = 0.5
    while state.temporal is None:
        try:
            state.temporal = await connect_temporal(state.settings)
            state.temporal_error = None
            log.info("connected to Temporal at %s", address)
        except Exception as exc:
            state.temporal_error = f"{address}: {exc}"[:300]
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


def temporal_unavailable(exc: BaseException) -> bool:
    """Temporal itself is down or overloaded: no row is to blame."""
    return isinstance(exc, RPCError) and exc.status in _OUTAGE


async def dispatch_pending(state: AppState, now: datetime | None = None) -> int:
    """Start workflows for inbox rows whose start failed or never happened (Temporal was down).

    One batch of due rows, fewest tries first. A row whose start fails is charged one attempt
    and backs off (after the last attempt: marked failed, one alert, one log line); a Temporal
    outage charges nobody and ends the tick.
    """
    if state.temporal is None:
        return 0
    now = now or utcnow()

    def _pending() -> list[tuple[int, str, str, int, str]]:
        with Session(state.engine) as session:
            rows = calls_repo.undispatched_inbox(
                session, now - DISPATCH_GRACE, now, limit=DISPATCH_BATCH
            )
            return [
                (r.id or 0, r.platform, r.call_id, r.revision, r.workflow_id or "") for r in rows
            ]

    def _charge(inbox_id: int, error: str) -> WebhookInbox | None:
        with Session(state.engine, expire_on_commit=False) as session:
            failed = CallsService(session, state.settings.secret_key.get_secret_value())
            row = failed.record_dispatch_failure(inbox_id, error, now)
            session.commit()
            return row

    started = 0
    for inbox_id, platform, call_id, revision, workflow_id in await run_in_threadpool(_pending):
        try:
            ok = await state.answering.start_inbox_workflow(
                inbox_id, platform, call_id, revision, workflow_id
            )
        except Exception as exc:
            if temporal_unavailable(exc):
                log.debug("Temporal unavailable, dispatching later: %s", exc)
                break
            error = f"{type(exc).__name__}: {exc}"
            log.debug("could not start %s: %s", clip(workflow_id), clip(error))
            gave_up = await run_in_threadpool(_charge, inbox_id, error)
            if gave_up is not None:
                log.error(
                    "gave up starting %s (inbox row %s) after %s attempts: %s",
                    clip(workflow_id),
                    inbox_id,
                    gave_up.dispatch_attempts,
                    clip(error),
                )
            continue
        started += 1 if ok else 0
    return started


async def start_tools(state: AppState, scheduler: AsyncIOScheduler) -> AsyncExitStack:
    """Build the MCP pool, the tool gateway and Backline's MCP endpoint, and schedule the
    gateway's housekeeping; closed by the returned stack."""
    stack = AsyncExitStack()
    gateway = ToolGateway(
        state.engine,
        McpClientPool(state.egress),
        state.settings.secret_key.get_secret_value(),
        org_calls_per_minute=state.settings.tools_org_calls_per_minute,
    )
    state.gateway = gateway
    stack.push_async_callback(gateway.aclose)
    endpoint = McpEndpoint(state.backline_tools())
    await stack.enter_async_context(endpoint.running())
    state.mcp_endpoint = endpoint
    scheduler.add_job(
        gateway.refresh_all,
        "interval",
        seconds=state.settings.tools_refresh_interval_s,
        max_instances=1,
        coalesce=True,
    )
    scheduler.add_job(
        run_in_threadpool, "interval", hours=1, args=[gateway.purge_ledger], max_instances=1
    )
    # Warm the sessions of servers agents use, without holding up startup.
    warm = asyncio.create_task(gateway.warm_up(), name="mcp-warm-up")
    stack.callback(warm.cancel)
    return stack


async def dispatch_alert_deliveries(state: AppState, now: datetime | None = None) -> int:
    """Start AlertDeliveryWorkflow for outbox rows not yet handed to Temporal (written with
    their alert, wherever it was raised). One workflow id per row: a row started twice (a
    crash between the start and the mark) is still sent once."""
    if state.temporal is None:
        return 0
    now = now or utcnow()

    def _pending() -> list[int]:
        with Session(state.engine) as session:
            rows = alert_delivery_outbox.undispatched(session, limit=DISPATCH_BATCH)
            return [r.id or 0 for r in rows]

    def _mark(delivery_id: int) -> None:
        with Session(state.engine) as session:
            alert_delivery_outbox.mark_dispatched(session, delivery_id, now)
            session.commit()

    started = 0
    for delivery_id in await run_in_threadpool(_pending):
        try:
            await start_alert_delivery(
                state.temporal, delivery_id=delivery_id, task_queue=state.settings.task_queue
            )
        except Exception as exc:
            log.debug("could not start the delivery of alert outbox row %s: %s", delivery_id, exc)
            break  # Temporal is down or overloaded: the next tick tries again
        await run_in_threadpool(_mark, delivery_id)
        started += 1
    return started


def create_app(
    settings: Settings | None = None,
    *,
    embedder: Embedder | None = None,
    temporal_client: Client | None = None,
) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.resolved_database_url)
        emb = embedder or shared_embedder(
            threads=1, backend=settings.embedder, model_dir=settings.resolved_model_dir
        )
        await run_in_threadpool(lambda: emb.embed(["warm up"]))
        state = AppState(
            settings=settings,
            engine=engine,
            embedder=emb,
            vectors=EmbeddedVectorStore(engine),
            agents=AgentDirectory(engine, settings.secret_key.get_secret_value()),
            temporal=temporal_client,
            temporal_error=None if temporal_client else "connecting",
            eval_gate=StoredRunsEvalGate(engine),
        )
        app.state.backline = state
        # Prompts are served from memory: load them before the first request, then poll.
        await run_in_threadpool(initial_refresh, state)
        prompt_poller = asyncio.create_task(poll_prompts(state))
        connector = None if temporal_client else asyncio.create_task(_connect_temporal(state))
        # End-of-call replies return once the inbox row is committed; this starts their workflows.
        drainer = asyncio.create_task(
            state.answering.run_post_call_drainer(), name="post-call-drainer"
        )
        scheduler = AsyncIOScheduler()
        scheduler.add_job(dispatch_pending, "interval", seconds=5, args=[state], max_instances=1)
        scheduler.add_job(
            dispatch_alert_deliveries, "interval", seconds=2, args=[state], max_instances=1
        )
        scheduler.start()
        tools_runtime = await start_tools(state, scheduler)
        # The knowledge index and retriever, plus the tick that keeps schedules in step.
        knowledge_runtime.start(state, scheduler)
        # Every agent with scored calls gets its drift-watch schedule.
        drift_runtime.start(state, scheduler)
        try:
            yield
        finally:
            await tools_runtime.aclose()
            if "chat_model" in state.__dict__:  # built on first use (a cached property)
                await state.chat_model.aclose()
            scheduler.shutdown(wait=False)
            for task in (prompt_poller, drainer):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if connector is not None:
                connector.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await connector
            engine.dispose()

    app = FastAPI(
        title="Backline",
        version="0.1.0",
        description="The backend behind voice AI agents: memory, prompts, knowledge, tools, "
        "testing and monitoring for VAPI, Retell and Bland.",
        lifespan=lifespan,
        # Served from local assets (api/docs.py): the default pages load from a CDN.
        docs_url=None,
        redoc_url=None,
    )
    install_docs(app)
    install_error_handlers(app)
    app.add_middleware(
        EdgeLimits,
        max_body_bytes=settings.max_body_bytes,
        auth_failures_per_minute=settings.auth_failures_per_minute,
    )
    # Routes that authenticate themselves: platforms' credentials, the codec's operator session.
    for module in (health, webhooks, retell_llm, custom_llm, temporal_codec):
        app.include_router(module.router)
    temporal_codec.install_cors(app, settings.temporal_ui_origins)
    # The API's own routes: a key, then tenant isolation, before anything else runs.
    for module in (
        tenancy,
        memory,
        calls,
        tools,
        prompts,
        mcp,
        knowledge,
        alerts,
        alert_delivery,
        audit,
        retention,
        quality,
        evals,
        drift,
    ):
        app.include_router(
            module.router,
            dependencies=[TenantGuard, TextGuard],
            responses=error_responses(401, 403, 429),
        )
    mcp.mount_endpoint(app)
    install_openapi_errors(app)
    return app
