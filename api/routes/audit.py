"""The audit trail (read-only, ``admin`` scope): filtered listing and chain verification.

Verification recomputes every link from the stored rows on the server; nothing a client or a
stored flag says is trusted. Unknown query parameters are rejected, never ignored.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from api.deps import PrincipalDep, TenancyDep, auth
from core.audit.service import AuditFilter, list_audit, verify_org_chain
from core.errors import InvalidInputError
from core.tenancy.service import Principal

router = APIRouter(prefix="/v1/audit", tags=["audit"])

LIST_PARAMS = frozenset(
    {"org_id", "agent_id", "action", "kind", "actor", "since", "until", "limit"}
)
VERIFY_PARAMS = frozenset({"org_id"})


class AuditEventPublic(BaseModel):
    id: int
    org_id: str | None
    seq: int
    at: datetime
    actor: str
    action: str
    target: str
    detail: dict[str, Any]
    prev_hash: str
    hash: str


class ChainBreakPublic(BaseModel):
    problem: str
    row_id: int | None
    seq: int
    detail: str


class AuditVerification(BaseModel):
    org_id: str
    ok: bool
    checked: int
    head_seq: int
    head_hash: str
    first_bad: ChainBreakPublic | None


def _reject_unknown(request: Request, allowed: frozenset[str]) -> None:
    unknown = sorted(set(request.query_params) - allowed)
    if unknown:
        raise InvalidInputError(
            f"unsupported query parameter '{unknown[0]}'; supported: {', '.join(sorted(allowed))}"
        )


def _utc(when: datetime | None) -> datetime | None:
    """A time without an offset is UTC, like every stored timestamp."""
    return when.replace(tzinfo=UTC) if when is not None and when.tzinfo is None else when


def _org(principal: Principal, org_id: str | None) -> str:
    org = org_id or principal.org_id
    if org is None:
        raise InvalidInputError("the operator must name an org: add ?org_id=<org>")
    principal.require("admin", org)
    return org


@router.get("", response_model=list[AuditEventPublic], openapi_extra=auth("admin"))
def list_events(
    request: Request,
    principal: PrincipalDep,
    tenancy: TenancyDep,
    org_id: str | None = None,
    agent_id: str | None = Query(default=None, description="Rows whose target is this agent"),
    action: str | None = Query(
        default=None, description="An action, or a family ending in '*' (prompt.label.*)"
    ),
    kind: str | None = Query(default=None, description="Same as action"),
    actor: str | None = None,
    since: datetime | None = Query(default=None, description="At or after (ISO 8601)"),
    until: datetime | None = Query(default=None, description="Before (ISO 8601)"),
    limit: int = Query(default=100, ge=1, le=1000),
) -> object:
    """Newest first, filtered; every filter named here is applied."""
    _reject_unknown(request, LIST_PARAMS)
    if action is not None and kind is not None and action != kind:
        raise InvalidInputError("'action' and 'kind' name the same filter: give one of them")
    org = _org(principal, org_id)
    since, until = _utc(since), _utc(until)
    if since is not None and until is not None and since >= until:
        raise InvalidInputError("'since' must be before 'until'")
    f = AuditFilter(
        org_id=org,
        agent_id=agent_id,
        action=action or kind,
        actor=actor,
        since=since,
        until=until,
        limit=limit,
    )
    return list_audit(tenancy.session, f)


@router.get("/verify", response_model=AuditVerification, openapi_extra=auth("admin"))
def verify(
    request: Request, principal: PrincipalDep, tenancy: TenancyDep, org_id: str | None = None
) -> AuditVerification:
    """Recompute the organization's hash chain; ``first_bad`` names the first row that was
    edited, deleted or reordered."""
    _reject_unknown(request, VERIFY_PARAMS)
    org = _org(principal, org_id)
    r = verify_org_chain(tenancy.session, org)
    bad = r.first_bad
    return AuditVerification(
        org_id=org,
        ok=r.ok,
        checked=r.checked,
        head_seq=r.head_seq,
        head_hash=r.head_hash,
        first_bad=ChainBreakPublic(
            problem=bad.problem, row_id=bad.row_id, seq=bad.seq, detail=bad.detail
        )
        if bad
        else None,
    )
