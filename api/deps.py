"""Typed dependencies so routes read as plain typed functions."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlmodel import Session

from api.state import AppState
from connectors.common import check_json_values, text_problem
from core.calls.service import CallsService
from core.errors import AppError, InvalidInputError, PermissionDeniedError
from core.knowledge import repository as knowledge_repo
from core.memory.service import MemoryService
from core.prompts.service import require_any
from core.tenancy.service import Principal, TenancyService, require_owner


async def get_state(request: Request) -> AppState:
    """Async on purpose: FastAPI runs a plain ``def`` dependency in the thread pool, a hop
    every request would pay for an attribute read."""
    state: AppState = request.app.state.backline
    return state


StateDep = Annotated[AppState, Depends(get_state)]


def get_session(state: StateDep) -> Iterator[Session]:
    """One unit of work per request: commit on success, roll back on error."""
    with Session(state.engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


# "function" scope: the commit lands before the response leaves, so a 2xx means it is stored.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def get_tenancy(state: StateDep, session: SessionDep) -> TenancyService:
    s = state.settings
    return TenancyService(
        session, s.secret_key.get_secret_value(), s.admin_token.get_secret_value()
    )


TenancyDep = Annotated[TenancyService, Depends(get_tenancy)]


def get_principal(request: Request, tenancy: TenancyDep) -> Principal:
    header = request.headers.get("authorization", "")
    token = header[7:].strip() if header.lower().startswith("bearer ") else None
    return tenancy.authenticate(token)


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def get_memory(state: StateDep, session: SessionDep) -> MemoryService:
    # The answering service's memory: a forget here also drops this process's snapshot.
    return state.answering.memory.service(session)


MemoryDep = Annotated[MemoryService, Depends(get_memory)]


def get_calls(state: StateDep, session: SessionDep) -> CallsService:
    return CallsService(session, state.settings.secret_key.get_secret_value())


CallsDep = Annotated[CallsService, Depends(get_calls)]


def guard_tenant(request: Request, principal: PrincipalDep, tenancy: TenancyDep) -> None:
    """Tenant isolation, before validation and before any route code runs.

    A key may only address its own organization: an ``org_id``, ``agent_id`` or ``source_id``
    in the path that belongs to another organization, or to nothing, answers the same 403
    whichever it is, so a key learns neither another tenant's state nor which ids exist there.
    Then the scope the route declares (``openapi_extra=auth(...)``, listed per route in
    docs/routes.md) is checked here too, so a key without it gets 403 before its request is
    validated; routes whose rule depends on the resource (a protected label) check again.
    """
    for name, value in [*request.path_params.items(), *request.query_params.items()]:
        problem = text_problem(value)
        if problem:  # checked before any lookup: no database stores these
            raise InvalidInputError(f"parameter '{name}' {problem}")
    if principal.operator:
        return
    params = request.path_params
    org_id = params.get("org_id")
    if org_id is not None and org_id != principal.org_id:
        raise PermissionDeniedError(
            f"this API key cannot access organization '{org_id}'; use a key of that organization"
        )
    agent_id = params.get("agent_id")
    if agent_id is not None:
        tenancy.require_own_agent(principal, agent_id)
    source_id = params.get("source_id")
    if source_id is not None:
        source = knowledge_repo.get_source(tenancy.session, source_id)
        require_owner(principal, "knowledge source", source_id, source.org_id if source else None)
    route = request.scope.get("route")
    declared = (getattr(route, "openapi_extra", None) or {}).get(AUTH_EXTENSION)
    if declared == "operator":
        raise PermissionDeniedError(
            "only the operator (BACKLINE_ADMIN_TOKEN) may call this route; an API key cannot"
        )
    if declared == "content or release":
        require_any(principal, ("content", "release"), principal.org_id or "")
    elif declared in ("viewer", "content", "release", "admin"):
        principal.require(declared, principal.org_id)


async def guard_text(request: Request) -> None:
    """Refuse a JSON body whose strings no database stores (NUL, a lone UTF-16 surrogate), or
    nested past any real document, naming the field. Runs after the tenant guard; a body that
    is not JSON at all is left to FastAPI's own validation."""
    if request.method not in ("POST", "PUT", "PATCH"):
        return
    raw = await request.body()
    try:
        body = json.loads(raw) if raw else None
    except (ValueError, RecursionError):
        return
    try:
        check_json_values(body)
    except AppError as exc:
        raise InvalidInputError(exc.detail.replace("field '", "body field '")) from None


TenantGuard = Depends(guard_tenant)
TextGuard = Depends(guard_text)


AUTH_EXTENSION = "x-backline-auth"
AUTH_KINDS = frozenset(
    {
        "none",
        "operator",
        "admin",
        "content",
        "release",
        "viewer",
        "content or release",
        "platform",
        "platform or content",
    }
)


def auth(who: str) -> dict[str, str]:
    """The OpenAPI marker of who may call a route (docs/routes.md lists it per route).

    ``platform``: the agent's stored platform credential; ``platform or content``: that (VAPI
    bearer) or an API key granting content; ``content or release``: either scope;
    a scope name: an API key of the owning organization whose scopes grant it (or the operator).
    """
    if who not in AUTH_KINDS:
        raise ValueError(f"unknown auth kind {who!r}; one of {sorted(AUTH_KINDS)}")
    return {AUTH_EXTENSION: who}
