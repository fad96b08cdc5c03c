"""Typed dependencies so routes read as plain typed functions."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlmodel import Session

from api.state import AppState
from core.calls.service import CallsService
from core.memory.service import MemoryService
from core.tenancy.service import Principal, TenancyService


def get_state(request: Request) -> AppState:
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
    return MemoryService(session, state.embedder, state.vectors)


MemoryDep = Annotated[MemoryService, Depends(get_memory)]


def get_calls(state: StateDep, session: SessionDep) -> CallsService:
    return CallsService(session, state.settings.secret_key.get_secret_value())


CallsDep = Annotated[CallsService, Depends(get_calls)]


AUTH_EXTENSION = "x-backline-auth"
AUTH_KINDS = frozenset(
    {"none", "operator", "admin", "content", "release", "viewer", "content or release", "platform"}
)


def auth(who: str) -> dict[str, str]:
    """The OpenAPI marker of who may call a route (docs/routes.md lists it per route).

    ``platform``: the agent's stored platform credential; ``content or release``: either scope;
    a scope name: an API key of the owning organization whose scopes grant it (or the operator).
    """
    if who not in AUTH_KINDS:
        raise ValueError(f"unknown auth kind {who!r}; one of {sorted(AUTH_KINDS)}")
    return {AUTH_EXTENSION: who}
