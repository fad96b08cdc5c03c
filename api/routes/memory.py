"""Caller memory: look a caller up by number (in the body, never the URL), read, search, forget."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field, field_validator

from api.deps import CallsDep, MemoryDep, PrincipalDep, StateDep, TenancyDep, auth
from connectors.vectors.embedded import VectorEntry
from core.memory.schemas import CallerTimeline, MemoryHit
from core.pii.phone import checked_number, mask_number

router = APIRouter(prefix="/v1/agents/{agent_id}/callers", tags=["memory"])


class CallerLookup(BaseModel):
    number: str = Field(
        min_length=3,
        max_length=100,
        description="The caller's phone number, any format (+1 415 555 0100, (415) 555-0100 "
        "for US numbers) or a sip: URI",
    )

    @field_validator("number")
    @classmethod
    def _phone_number(cls, value: str) -> str:
        if checked_number(value) is None:
            raise ValueError(
                f"'{value}' is not a phone number; give it with its country code, "
                "e.g. +14155550100 (CLI: --number)"
            )
        return value


class CallerHandle(BaseModel):
    caller_hash: str
    display: str


class MemorySearch(BaseModel):
    query: str = Field(min_length=1)
    k: int = Field(strict=True, default=5, ge=1, le=50)


class ForgetResult(BaseModel):
    caller_hash: str
    rows_deleted: int
    receipt: str = Field(
        description="Names this erasure in the audit trail, which keeps no trace of the caller"
    )


@router.post("/lookup", response_model=CallerHandle, openapi_extra=auth("viewer"))
def lookup_caller(
    agent_id: str, body: CallerLookup, principal: PrincipalDep, tenancy: TenancyDep, calls: CallsDep
) -> CallerHandle:
    principal.require("viewer", tenancy.require_agent(agent_id).org_id)
    digest = calls.caller_hash(body.number)
    assert digest is not None
    return CallerHandle(caller_hash=digest, display=mask_number(body.number))


@router.get("/{caller_hash}/memory", response_model=CallerTimeline, openapi_extra=auth("viewer"))
def caller_memory(
    agent_id: str, caller_hash: str, principal: PrincipalDep, tenancy: TenancyDep, memory: MemoryDep
) -> CallerTimeline:
    agent = tenancy.require_agent(agent_id)
    principal.require("viewer", agent.org_id)
    return memory.timeline(agent.org_id, agent_id, caller_hash)


@router.post(
    "/{caller_hash}/memory/search", response_model=list[MemoryHit], openapi_extra=auth("viewer")
)
def search_memory(
    agent_id: str,
    caller_hash: str,
    body: MemorySearch,
    principal: PrincipalDep,
    tenancy: TenancyDep,
    memory: MemoryDep,
) -> list[MemoryHit]:
    agent = tenancy.require_agent(agent_id)
    principal.require("viewer", agent.org_id)
    return memory.search(agent.org_id, agent_id, caller_hash, body.query, k=body.k)


@router.delete("/{caller_hash}", response_model=ForgetResult, openapi_extra=auth("admin"))
def forget_caller(
    agent_id: str,
    caller_hash: str,
    principal: PrincipalDep,
    tenancy: TenancyDep,
    memory: MemoryDep,
    calls: CallsDep,
    state: StateDep,
) -> ForgetResult:
    """Erase every row and vector that holds this caller, inbox and rejected payloads included."""
    agent = tenancy.require_agent(agent_id)
    principal.require("admin", agent.org_id)
    done = memory.forget_caller(
        agent.org_id,
        agent_id,
        caller_hash,
        principal.actor,
        calls,
        store_tables=(str(VectorEntry.__tablename__),),
        vacuum_full=state.settings.forget_vacuum_full,
    )
    return ForgetResult(
        caller_hash=caller_hash, rows_deleted=done.rows_deleted, receipt=done.receipt
    )
