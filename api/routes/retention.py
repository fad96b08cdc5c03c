"""Retention windows per organization: read (``viewer``) and change (``admin``, audited).

``RetentionWorkflow`` (hourly Temporal Schedule) enforces them; a change applies at its next run.
"""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import PrincipalDep, SessionDep, StateDep, auth
from core.tenancy.retention import RetentionPublic, RetentionService, RetentionUpdate

router = APIRouter(prefix="/v1/orgs/{org_id}/retention", tags=["retention"])


def _service(state: StateDep, session: SessionDep) -> RetentionService:
    return RetentionService(session, state.settings.raw_payload_retention_days)


@router.get("", response_model=RetentionPublic, openapi_extra=auth("viewer"))
def get_retention(
    org_id: str, principal: PrincipalDep, state: StateDep, session: SessionDep
) -> RetentionPublic:
    principal.require("viewer", org_id)
    return _service(state, session).get(org_id)


@router.patch("", response_model=RetentionPublic, openapi_extra=auth("admin"))
def update_retention(
    org_id: str,
    body: RetentionUpdate,
    principal: PrincipalDep,
    state: StateDep,
    session: SessionDep,
) -> RetentionPublic:
    """Set the fields given (days; ``null`` resets one). Omitted fields keep their value."""
    principal.require("admin", org_id)
    return _service(state, session).update(org_id, body, principal.actor)
