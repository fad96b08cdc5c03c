"""The audit trail (read-only, ``admin`` scope): filtered listing and chain verification.

Verification recomputes every link from the stored rows on the server; nothing a client or a
stored flag says is trusted. Unknown query parameters are rejected, never ignored.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from fastapi import APIRouter, Query, Request

from api.deps import PrincipalDep, TenancyDep, auth
from core.audit import repository as audit_repo
from core.audit.repository import AuditFilter
from core.audit.schemas import AuditEventPublic, AuditVerification, ChainBreakPublic
from core.audit.service import verify_org_chain
from core.errors import InvalidInputError
from core.tenancy.service import Principal

router = APIRouter(prefix="/v1/audit", tags=["audit"])

LIST_PARAMS = frozenset(
    {"org_id", "agent_id", "action", "kind", "actor", "since", "until", "limit"}
)
VERIFY_PARAMS = frozenset({"org_id"})


def _reject_unknown(request: Request, allowed: frozenset[str]) -> None:
    unknown = sorted(set(request.query_params) - allowed)
    if unknown:
        raise InvalidInputError(
            f"unsupported query parameter '{unknown[0]}'; supported: {', '.join(sorted(allowed))}"
        )


def _utc(when: datetime | None) -> datetime | None:
    """A time without an offset is UTC, like every stored timestamp."""
    return when.replace(tzinfo=UTC) if when is not None and when.tzinfo is None else when


def _iso(name: str, value: str | None) -> datetime | None:
    """An ISO 8601 time (``Z`` or an offset; none means UTC), else 422 naming the parameter.
    Plain numbers are refused: a Unix timestamp is not what the parameter documents."""
    if value is None:
        return None
    try:
        if not re.match(r"^\d{4}-\d{2}-\d{2}", value):
            raise ValueError(value)
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInputError(
            f"'{name}' must be an ISO 8601 time such as 2026-12-01T00:00:00Z, not {value[:40]!r}"
        ) from None
    return _utc(parsed)


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
    since: str | None = Query(
        default=None, description="At or after: an ISO 8601 time, e.g. 2026-12-01T00:00:00Z"
    ),
    until: str | None = Query(default=None, description="Before: an ISO 8601 time"),
    limit: int = Query(default=100, ge=1, le=1000),
) -> list[AuditEventPublic]:
    """Newest first, filtered; every filter named here is applied."""
    _reject_unknown(request, LIST_PARAMS)
    if action is not None and kind is not None and action != kind:
        raise InvalidInputError("'action' and 'kind' name the same filter: give one of them")
    org = _org(principal, org_id)
    since_at, until_at = _iso("since", since), _iso("until", until)
    if since_at is not None and until_at is not None and since_at >= until_at:
        raise InvalidInputError("'since' must be before 'until'")
    f = AuditFilter(
        org_id=org,
        agent_id=agent_id,
        action=action or kind,
        actor=actor,
        since=since_at,
        until=until_at,
        limit=limit,
    )
    return [
        AuditEventPublic.model_validate(e, from_attributes=True)
        for e in audit_repo.list_events(tenancy.session, f)
    ]


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
        first_bad=ChainBreakPublic.model_validate(bad, from_attributes=True) if bad else None,
    )
