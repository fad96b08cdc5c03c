"""The FastAPI app factory and its lifespan (the API's composition root).

The lifespan builds the engine, connectors and caches once, connects to Temporal in the
background (the edge keeps accepting calls into the inbox while Temporal is down), and runs the
housekeeping ticks: dispatching inbox rows whose workflow has not started, purging raw payloads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from fastapi import FastAPI
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from temporalio.client import Client

from api import edge, knowledge_runtime, tool_gateway
from api.docs import install_docs
from api.errors import install_error_handlers
from api.prompt_sync import initial_refresh, poll_prompts
from api.routes import (
    alerts,
    calls,
    health,
    knowledge,
    mcp,
    memory,
    prompts,
    tenancy,
    tools,
    webhooks_bland,
    webhooks_retell,
    webhooks_vapi,
)
from api.state import AgentDirectory, AppState
from connectors.embedder import shared_embedder
from connectors.vectors.embedded import EmbeddedVectorStore
from core.calls import repository as calls_repo
from core.calls.service import CallsService
from core.db import make_engine, utcnow
from core.ports import Embedder
from core.settings import Settings

log = logging.getLogger("backline.api")
DISPATCH_GRACE = timedelta(seconds=3)


async def _connect_temporal(state: AppState) -> None:
    address = state.settings.temporal_address or f"127.0.0.1:{state.settings.temporal_port}"
    delay = 0.5
    while state.temporal is None:
        try:
            state.temporal = await Client.connect(
                address, namespace=state.settings.temporal_namespace
            )
            state.temporal_error = None
            log.info("connected to Temporal at %s", address)
        except Exception as exc:
            state.temporal_error = f"{address}: {exc}"[:300]
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


async def dispatch_pending(state: AppState) -> int:
    """Start workflows for inbox rows accepted while Temporal was unreachable."""
    if state.temporal is None:
        return 0

    def _pending() -> list[tuple[int, str, str, int, str]]:
        with Session(state.engine) as session:
            rows = calls_repo.undispatched_inbox(session, utcnow() - DISPATCH_GRACE)
            return [
                (r.id or 0, r.platform, r.call_id, r.revision, r.workflow_id or "") for r in rows
            ]

    started = 0
    for inbox_id, platform, call_id, revision, workflow_id in await run_in_threadpool(_pending):
        ok = await edge.dispatch_post_call(
            state, inbox_id, platform, call_id, revision, workflow_id
        )
        started += 1 if ok else 0
    return started


def purge_payloads(state: AppState) -> int:
    with Session(state.engine) as session:
        n = CallsService(
            session, state.settings.secret_key.get_secret_value()
        ).purge_expired_payloads(state.settings.raw_payload_retention_days)
        session.commit()
        return n


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
        emb = embedder or shared_embedder(threads=1)
        await run_in_threadpool(lambda: emb.embed(["warm up"]))
        state = AppState(
            settings=settings,
            engine=engine,
            embedder=emb,
            vectors=EmbeddedVectorStore(engine),
            agents=AgentDirectory(engine, settings.secret_key.get_secret_value()),
            temporal=temporal_client,
            temporal_error=None if temporal_client else "connecting",
        )
        app.state.backline = state
        # Prompts are served from memory: load them before the first request, then poll.
        await run_in_threadpool(initial_refresh, state)
        prompt_poller = asyncio.create_task(poll_prompts(state))
        connector = None if temporal_client else asyncio.create_task(_connect_temporal(state))
        scheduler = AsyncIOScheduler()
        scheduler.add_job(dispatch_pending, "interval", seconds=5, args=[state], max_instances=1)
        scheduler.add_job(
            run_in_threadpool, "interval", hours=1, args=[purge_payloads, state], max_instances=1
        )
        scheduler.start()
        tools_runtime = await tool_gateway.start(state, scheduler)
        # The knowledge index and retriever, plus the tick that keeps schedules in step.
        knowledge_runtime.start(state, scheduler)
        try:
            yield
        finally:
            await tools_runtime.aclose()
            scheduler.shutdown(wait=False)
            prompt_poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await prompt_poller
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
    for module in (
        health,
        tenancy,
        memory,
        calls,
        tools,
        webhooks_vapi,
        webhooks_retell,
        webhooks_bland,
        prompts,
        mcp,
        knowledge,
        alerts,
    ):
        app.include_router(module.router)
    mcp.mount_endpoint(app)
    return app
