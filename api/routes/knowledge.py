"""Knowledge API: bases and sources of an agent, refresh now, freshness, and search.

Changing a source commits first, then keeps its Temporal Schedule in step and starts a refresh
(when Temporal is down the change still lands; the API's reconcile tick finishes the job).
``POST /v1/knowledge/search`` is the platform-neutral retrieval, recorded on a call when one is
named. Writes need the ``content`` scope, reads ``viewer``; every change is audited.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from api import knowledge_runtime as kr
from api.deps import PrincipalDep, SessionDep, StateDep, TenancyDep, auth
from api.errors import error_responses
from api.state import AgentInfo, AppState
from connectors.egress import check_url
from connectors.registry import PLATFORMS
from core.calls.answering import record_retrieval
from core.calls.events import CallRef
from core.calls.service import CallsService
from core.db import utcnow
from core.errors import InvalidInputError, NotFoundError, TemporalUnavailableError
from core.knowledge import repository as repo
from core.knowledge.schemas import (
    KnowledgeAnswer,
    KnowledgeBaseCreate,
    KnowledgeBasePublic,
    KnowledgeSearch,
    RefreshStarted,
    SourceCreate,
    SourcePublic,
    SourceUpdate,
)
from core.knowledge.service import KnowledgeService, apply_index_ops
from orchestration.knowledge_starters import describe_refresh

router = APIRouter(tags=["knowledge"])


class SourceChange(BaseModel):
    source: SourcePublic
    refresh: RefreshStarted | None = None
    schedule_synced: bool
    note: str | None = None


class SourceDeleted(BaseModel):
    source_id: str
    chunks_removed: int
    schedule_removed: bool


class RefreshRun(BaseModel):
    """One refresh of a source, as Temporal knows it."""

    source_id: str
    workflow_id: str
    run_id: str | None
    running: bool
    status: str = Field(
        description="running, completed, failed, canceled, terminated, timed_out, ..."
    )
    outcome: str | None = Field(
        default=None,
        description="When completed: updated, unchanged, failing (the fetch or ingest failed "
        "after its retries), gone or skipped",
    )
    error: str | None = Field(default=None, description="Why the refresh failed, when it did")
    chunk_count: int | None = None


def _public(session: Session, source_id: str) -> SourcePublic:
    # The schedule sync marks the row in its own unit of work: read it again, not from memory.
    session.expire_all()
    svc = KnowledgeService(session)
    return svc.public(svc.require_source(source_id), utcnow())


async def _after_change(
    state: AppState,
    session: Session,
    source_id: str,
    *,
    refresh: bool,
    reason: str,
    actor: str,
    force: bool = False,
) -> SourceChange:
    synced = await kr.sync_source(state, source_id)
    started: RefreshStarted | None = None
    note = None
    if refresh:
        try:
            found = await kr.request_refresh(state, source_id, reason, actor, force)
        except Exception as exc:  # Temporal hiccup: the change is stored, the tick retries
            found, note = None, f"refresh not started yet: {exc}"[:300]
        if found is not None:
            started = RefreshStarted(
                source_id=source_id, workflow_id=found[0], run_id=found[1], joined_running=found[2]
            )
        elif note is None:
            note = "Temporal is unreachable: the refresh starts as soon as it is back"
    public = await run_in_threadpool(_public, session, source_id)
    return SourceChange(source=public, refresh=started, schedule_synced=synced, note=note)


# -- knowledge bases ----------------------------------------------------------------------------


@router.post(
    "/v1/agents/{agent_id}/knowledge/bases",
    response_model=KnowledgeBasePublic,
    status_code=201,
    responses=error_responses(409),
    openapi_extra=auth("content"),
)
def create_base(
    agent_id: str, body: KnowledgeBaseCreate, principal: PrincipalDep, tenancy: TenancyDep
) -> KnowledgeBasePublic:
    agent = tenancy.require_agent(agent_id)
    principal.require("content", agent.org_id)
    kb = KnowledgeService(tenancy.session).create_kb(agent.org_id, agent_id, body, principal.actor)
    tenancy.session.flush()
    return KnowledgeBasePublic.model_validate(kb, from_attributes=True)


@router.get(
    "/v1/agents/{agent_id}/knowledge/bases",
    response_model=list[KnowledgeBasePublic],
    openapi_extra=auth("viewer"),
)
def list_bases(
    agent_id: str, principal: PrincipalDep, tenancy: TenancyDep
) -> list[KnowledgeBasePublic]:
    agent = tenancy.require_agent(agent_id)
    principal.require("viewer", agent.org_id)
    return [
        KnowledgeBasePublic.model_validate(kb, from_attributes=True)
        for kb in repo.list_kbs(tenancy.session, agent_id)
    ]


# -- sources ----------------------------------------------------------------------------------


@router.post(
    "/v1/agents/{agent_id}/knowledge/sources",
    response_model=SourceChange,
    status_code=201,
    responses=error_responses(409),
    openapi_extra=auth("content"),
)
async def add_source(
    agent_id: str, body: SourceCreate, principal: PrincipalDep, tenancy: TenancyDep, state: StateDep
) -> SourceChange:
    """Add a file (base64 upload: md, txt, html, pdf), url or text source and start its first
    refresh. URL sources refresh hourly unless ``refresh_interval_s`` says otherwise; a URL
    whose host is not public answers 422 ``EgressDeniedError`` (see docs/knowledge.md)."""

    session = tenancy.session

    def _create() -> str:
        agent = tenancy.require_agent(agent_id)
        principal.require("content", agent.org_id)
        if body.kind == "url" and body.url:
            check_url(body.url, state.egress, allow_unresolved=True)
        source = KnowledgeService(session).add_source(agent.org_id, agent_id, body, principal.actor)
        # Committed before the schedule and the refresh: the workflow reads the source's row.
        session.commit()
        return source.id

    source_id = await run_in_threadpool(_create)
    return await _after_change(
        state, session, source_id, refresh=body.refresh, reason="created", actor=principal.actor
    )


@router.get(
    "/v1/agents/{agent_id}/knowledge/sources",
    response_model=list[SourcePublic],
    openapi_extra=auth("viewer"),
)
def list_sources(agent_id: str, principal: PrincipalDep, tenancy: TenancyDep) -> list[SourcePublic]:
    """Every source with its freshness judged now: fresh, stale, failing or pending."""
    agent = tenancy.require_agent(agent_id)
    principal.require("viewer", agent.org_id)
    return KnowledgeService(tenancy.session).list_public(agent_id, utcnow())


@router.get(
    "/v1/knowledge/sources/{source_id}", response_model=SourcePublic, openapi_extra=auth("viewer")
)
def get_source(source_id: str, principal: PrincipalDep, session: SessionDep) -> SourcePublic:
    svc = KnowledgeService(session)
    source = svc.require_source(source_id)
    principal.require("viewer", source.org_id)
    return svc.public(source, utcnow())


@router.patch(
    "/v1/knowledge/sources/{source_id}",
    response_model=SourceChange,
    responses=error_responses(409),
    openapi_extra=auth("content"),
)
async def update_source(
    source_id: str,
    body: SourceUpdate,
    principal: PrincipalDep,
    session: SessionDep,
    state: StateDep,
) -> SourceChange:
    """Change a source's name, freshness policy, URL or content; new content is refreshed at
    once (``refresh: false`` to wait for the schedule)."""

    def _update() -> bool:
        svc = KnowledgeService(session)
        principal.require("content", svc.require_source(source_id).org_id)
        if body.url is not None:
            check_url(body.url, state.egress, allow_unresolved=True)
        _source, content_changed, _schedule_changed = svc.update_source(
            source_id, body, principal.actor
        )
        # Committed before the schedule and the refresh: the workflow reads the source's row.
        session.commit()
        return content_changed

    content_changed = await run_in_threadpool(_update)
    return await _after_change(
        state,
        session,
        source_id,
        refresh=body.refresh and content_changed,
        reason="content_updated",
        actor=principal.actor,
    )


@router.delete(
    "/v1/knowledge/sources/{source_id}", response_model=SourceDeleted, openapi_extra=auth("content")
)
async def delete_source(
    source_id: str, principal: PrincipalDep, session: SessionDep, state: StateDep
) -> SourceDeleted:
    """Remove a source, its chunks, its search-index entries and its schedule."""

    def _delete() -> int:
        svc = KnowledgeService(session)
        principal.require("content", svc.require_source(source_id).org_id)
        svc.delete_source(source_id, principal.actor)
        ops = list(svc.pending)
        # Committed before the index and the schedule follow, so neither drops what a failed
        # delete would have kept.
        session.commit()
        # The index follows (ids only; a failure here leaves unreachable entries,
        # which retrieval skips because their rows are gone).
        index = kr.runtime(state).index
        for op in ops:
            apply_index_ops(index, op)
        return sum(len(op.deletes) for op in ops)

    removed = await run_in_threadpool(_delete)
    schedule_removed = await kr.sync_source(state, source_id)
    return SourceDeleted(
        source_id=source_id, chunks_removed=removed, schedule_removed=schedule_removed
    )


@router.post(
    "/v1/knowledge/sources/{source_id}/refresh",
    response_model=RefreshStarted,
    status_code=202,
    openapi_extra=auth("content"),
)
async def refresh_source(
    source_id: str,
    principal: PrincipalDep,
    session: SessionDep,
    state: StateDep,
    response: Response,
    force: Annotated[bool, Query(description="Re-read and re-embed everything")] = False,
) -> RefreshStarted:
    """Refresh now. While a refresh of this source runs, the request joins it (one at a time)."""

    def _check() -> None:
        svc = KnowledgeService(session)
        source = svc.require_source(source_id)
        principal.require("content", source.org_id)
        svc.record_refresh_request(source, principal.actor, force)
        # The request is on the audit log before the refresh starts, and stays there when
        # Temporal is unreachable.
        session.commit()

    await run_in_threadpool(_check)
    found = await kr.request_refresh(state, source_id, "manual", principal.actor, force)
    if found is None:
        raise TemporalUnavailableError(
            "Temporal is unreachable, so the refresh cannot start now; retry in a moment "
            f"({state.temporal_error})"
        )
    response.headers["Location"] = f"/v1/knowledge/sources/{source_id}"
    return RefreshStarted(
        source_id=source_id, workflow_id=found[0], run_id=found[1], joined_running=found[2]
    )


@router.get(
    "/v1/knowledge/sources/{source_id}/refresh",
    response_model=RefreshRun,
    openapi_extra=auth("viewer"),
)
async def get_refresh(
    source_id: str,
    principal: PrincipalDep,
    session: SessionDep,
    state: StateDep,
    run_id: Annotated[str | None, Query(description="One run (default: the latest)")] = None,
) -> RefreshRun:
    """Whether the source's refresh (the latest, or ``run_id``) is still running, and how it
    ended: ``outcome`` ``failing`` with ``error`` when the source could not be fetched."""

    def _check() -> None:
        source = KnowledgeService(session).require_source(source_id)
        principal.require("viewer", source.org_id)

    await run_in_threadpool(_check)
    if state.temporal is None:
        raise TemporalUnavailableError(
            f"Temporal is unreachable, so the refresh state is unknown; retry in a moment "
            f"({state.temporal_error})"
        )
    found = await describe_refresh(state.temporal, source_id, run_id)
    if found is None:
        raise NotFoundError(
            f"source '{source_id}' has no refresh{f' run {run_id}' if run_id else ''}; start one "
            "with POST /v1/knowledge/sources/{id}/refresh (CLI: backline kb refresh)"
        )
    workflow_id, found_run, status, result, failure = found
    return RefreshRun(
        source_id=source_id,
        workflow_id=workflow_id,
        run_id=found_run,
        running=status == "running",
        status=status,
        outcome=result.status if result else None,
        error=(result.error if result else None) or failure,
        chunk_count=result.chunk_count if result and result.status == "updated" else None,
    )


# -- search -----------------------------------------------------------------------------------


@router.post(
    "/v1/knowledge/search",
    response_model=KnowledgeAnswer,
    responses=error_responses(404),  # the operator naming an agent that does not exist,
    openapi_extra=auth("viewer"),
)
def search(
    body: KnowledgeSearch, principal: PrincipalDep, tenancy: TenancyDep, state: StateDep
) -> KnowledgeAnswer:
    """Hybrid retrieval (BM25 + dense, rank fusion) with the speech-to-text normalizer;
    outdated chunks are withheld and listed. Recorded on ``call`` when one is given."""
    agent = tenancy.require_own_agent(principal, body.agent_id)
    session = tenancy.session
    principal.require("viewer", agent.org_id)
    if body.call is not None and body.call.platform not in PLATFORMS:
        raise InvalidInputError(
            f"call.platform: unknown platform '{body.call.platform}'; "
            f"use one of {sorted(PLATFORMS)}"
        )
    answer = kr.runtime(state).retriever.search(
        session,
        body.agent_id,
        body.query,
        k=body.k,
        kb=body.kb,
        use_normalizer=body.normalize,
        mode=body.mode,
    )
    if body.call is not None:
        info = AgentInfo(agent.id, agent.org_id, agent.name, {}, {})
        record_retrieval(
            CallsService(session, state.settings.secret_key.get_secret_value()),
            info,
            CallRef(platform=body.call.platform, call_id=body.call.call_id),
            answer,
            "api",
        )
    return answer
