"""Organizations, API keys, agents and platform credentials."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, status
from pydantic import Field, model_validator

from api.deps import PrincipalDep, StateDep, TenancyDep, auth
from api.errors import error_responses
from connectors.registry import CREDENTIAL_KINDS, PLATFORM_PATTERN, validate_platform_settings
from core.errors import PermissionDeniedError
from core.tenancy import repository as repo
from core.tenancy.schemas import (
    AgentCreate,
    AgentPublic,
    AgentUpdate,
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyPublic,
    CredentialPublic,
    CredentialSet,
    OrganizationCreate,
    OrganizationPublic,
)

router = APIRouter(prefix="/v1", tags=["tenancy"])
PlatformName = Annotated[str, Path(pattern=PLATFORM_PATTERN, description="A voice platform")]

# Agents created before per-platform settings existed sent VAPI's assistant as two top-level
# fields; they still work, as aliases of platform_settings.vapi.assistant_id / .assistant.
LEGACY_PLATFORM = "vapi"


class AgentCreateRequest(AgentCreate):
    vapi_assistant_id: str | None = Field(
        default=None, description="Same as platform_settings.vapi.assistant_id"
    )
    vapi_assistant: dict[str, Any] | None = Field(
        default=None,
        description="Same as platform_settings.vapi.assistant: an inline VAPI assistant "
        "returned on assistant-request",
    )

    def agent(self) -> AgentCreate:
        """The core request: the legacy fields folded in, every platform's settings checked."""
        settings = {name: dict(doc) for name, doc in self.platform_settings.items()}
        legacy = {"assistant_id": self.vapi_assistant_id, "assistant": self.vapi_assistant}
        for key, value in legacy.items():
            if value is not None:
                settings.setdefault(LEGACY_PLATFORM, {})[key] = value
        return AgentCreate(
            id=self.id,
            name=self.name,
            platform_settings=validate_platform_settings(settings),
            pii_policy=self.pii_policy,
        )


class AgentResponse(AgentPublic):
    vapi_assistant_id: str | None = Field(
        default=None, description="platform_settings.vapi.assistant_id (read only)"
    )
    vapi_assistant: dict[str, Any] | None = Field(
        default=None, description="platform_settings.vapi.assistant (read only)"
    )

    @model_validator(mode="after")
    def _legacy_fields(self) -> AgentResponse:
        doc = self.platform_settings.get(LEGACY_PLATFORM, {})
        self.vapi_assistant_id = doc.get("assistant_id")
        self.vapi_assistant = doc.get("assistant")
        return self


def _operator_only(principal: PrincipalDep) -> None:
    if not principal.operator:
        raise PermissionDeniedError(
            "only the operator (BACKLINE_ADMIN_TOKEN) manages organizations"
        )


@router.post(
    "/orgs",
    status_code=status.HTTP_201_CREATED,
    response_model=OrganizationPublic,
    responses=error_responses(409),
    openapi_extra=auth("operator"),
)
def create_org(
    body: OrganizationCreate, principal: PrincipalDep, tenancy: TenancyDep
) -> OrganizationPublic:
    _operator_only(principal)
    org = tenancy.create_org(body, principal.actor)
    return OrganizationPublic.model_validate(org, from_attributes=True)


@router.get("/orgs", response_model=list[OrganizationPublic], openapi_extra=auth("operator"))
def list_orgs(principal: PrincipalDep, tenancy: TenancyDep) -> list[OrganizationPublic]:
    _operator_only(principal)
    return [
        OrganizationPublic.model_validate(o, from_attributes=True)
        for o in repo.list_orgs(tenancy.session)
    ]


@router.post(
    "/orgs/{org_id}/keys",
    status_code=status.HTTP_201_CREATED,
    response_model=ApiKeyCreated,
    openapi_extra=auth("admin"),
)
def create_key(
    org_id: str, body: ApiKeyCreate, principal: PrincipalDep, tenancy: TenancyDep
) -> ApiKeyCreated:
    principal.require("admin", org_id)
    key, token = tenancy.create_api_key(org_id, body, principal.actor)
    return ApiKeyCreated(
        **ApiKeyPublic.model_validate(key, from_attributes=True).model_dump(), token=token
    )


@router.get("/orgs/{org_id}/keys", response_model=list[ApiKeyPublic], openapi_extra=auth("admin"))
def list_keys(org_id: str, principal: PrincipalDep, tenancy: TenancyDep) -> list[ApiKeyPublic]:
    principal.require("admin", org_id)
    return [
        ApiKeyPublic.model_validate(k, from_attributes=True)
        for k in repo.list_api_keys(tenancy.session, org_id)
    ]


@router.delete(
    "/orgs/{org_id}/keys/{key_id}", response_model=ApiKeyPublic, openapi_extra=auth("admin")
)
def revoke_key(
    org_id: str, key_id: str, principal: PrincipalDep, tenancy: TenancyDep
) -> ApiKeyPublic:
    principal.require("admin", org_id)
    key = tenancy.revoke_api_key(org_id, key_id, principal.actor)
    return ApiKeyPublic.model_validate(key, from_attributes=True)


@router.post(
    "/orgs/{org_id}/agents",
    status_code=status.HTTP_201_CREATED,
    response_model=AgentResponse,
    responses=error_responses(409),
    openapi_extra=auth("admin"),
)
def create_agent(
    org_id: str, body: AgentCreateRequest, principal: PrincipalDep, tenancy: TenancyDep
) -> AgentResponse:
    principal.require("admin", org_id)
    agent = tenancy.create_agent(org_id, body.agent(), principal.actor)
    return AgentResponse.model_validate(agent, from_attributes=True)


@router.get(
    "/orgs/{org_id}/agents", response_model=list[AgentResponse], openapi_extra=auth("viewer")
)
def list_agents(org_id: str, principal: PrincipalDep, tenancy: TenancyDep) -> list[AgentResponse]:
    principal.require("viewer", org_id)
    return [
        AgentResponse.model_validate(a, from_attributes=True)
        for a in repo.list_agents(tenancy.session, org_id)
    ]


@router.get("/agents/{agent_id}", response_model=AgentResponse, openapi_extra=auth("viewer"))
def get_agent(agent_id: str, principal: PrincipalDep, tenancy: TenancyDep) -> AgentResponse:
    agent = tenancy.require_agent(agent_id)
    principal.require("viewer", agent.org_id)
    return AgentResponse.model_validate(agent, from_attributes=True)


@router.patch("/agents/{agent_id}", response_model=AgentResponse, openapi_extra=auth("admin"))
def update_agent(
    agent_id: str, body: AgentUpdate, principal: PrincipalDep, tenancy: TenancyDep, state: StateDep
) -> AgentResponse:
    principal.require("admin", tenancy.require_agent(agent_id).org_id)
    if body.platform_settings is not None:
        body.platform_settings = validate_platform_settings(body.platform_settings)
    agent = tenancy.update_agent(agent_id, body, principal.actor)
    state.agents.invalidate(agent_id)
    return AgentResponse.model_validate(agent, from_attributes=True)


@router.put(
    "/agents/{agent_id}/credentials/{platform}",
    response_model=CredentialPublic,
    openapi_extra=auth("admin"),
)
def set_credential(
    agent_id: str,
    platform: PlatformName,
    body: CredentialSet,
    principal: PrincipalDep,
    tenancy: TenancyDep,
    state: StateDep,
) -> CredentialPublic:
    principal.require("admin", tenancy.require_agent(agent_id).org_id)
    cred = tenancy.set_credential(agent_id, platform, body, principal.actor, CREDENTIAL_KINDS)
    state.agents.invalidate(agent_id)
    return CredentialPublic.model_validate(cred, from_attributes=True)


@router.get(
    "/agents/{agent_id}/credentials",
    response_model=list[CredentialPublic],
    openapi_extra=auth("admin"),
)
def list_credentials(
    agent_id: str, principal: PrincipalDep, tenancy: TenancyDep
) -> list[CredentialPublic]:
    principal.require("admin", tenancy.require_agent(agent_id).org_id)
    return [
        CredentialPublic.model_validate(c, from_attributes=True)
        for c in repo.list_credentials(tenancy.session, agent_id)
    ]
