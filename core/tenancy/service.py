"""Tenancy rules: who may act on which organization, API keys, agents and credentials.

Raw secrets leave this module only once (a new API key's token) and are never logged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from sqlmodel import Session

from core.audit.service import record_audit
from core.audit.targets import agent_target
from core.db import utcnow
from core.errors import (
    AuthenticationError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
)
from core.tenancy import repository as repo
from core.tenancy.models import Agent, ApiKey, Organization, PlatformCredential
from core.tenancy.schemas import (
    AgentCreate,
    AgentUpdate,
    ApiKeyCreate,
    CredentialSet,
    OrganizationCreate,
)
from core.tenancy.security import SecretBox, constant_time_equals, hash_token, new_api_key

# A scope grants itself and the scopes listed here.
SCOPE_GRANTS: dict[str, frozenset[str]] = {
    "admin": frozenset({"admin", "content", "release", "viewer"}),
    "content": frozenset({"content", "viewer"}),
    "release": frozenset({"release", "viewer"}),
    "viewer": frozenset({"viewer"}),
}


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of the API: the operator (admin token) or an org's API key."""

    actor: str
    org_id: str | None
    scopes: frozenset[str] = field(default_factory=frozenset)
    operator: bool = False

    def require(self, scope: str, org_id: str | None = None) -> None:
        if self.operator:
            return
        if org_id is not None and org_id != self.org_id:
            # Never names the other organization: a key learns nothing about other tenants.
            raise PermissionDeniedError(
                f"this API key belongs to organization '{self.org_id}' and cannot access "
                "another organization's resources"
            )
        granted: set[str] = set()
        for s in self.scopes:
            granted |= SCOPE_GRANTS.get(s, frozenset())
        if scope not in granted:
            raise PermissionDeniedError(
                f"this route needs the '{scope}' scope; the key has {sorted(self.scopes)}. "
                "Create a key with that scope (POST /v1/orgs/{org_id}/keys)."
            )


def require_owner(principal: Principal, kind: str, ident: str, owner: str | None) -> None:
    """The caller may address this resource: 404 for the operator when it does not exist; for
    a key, the same 403 whether it does not exist or belongs to another organization."""
    if owner is None and principal.operator:
        raise NotFoundError(f"{kind} '{ident}' does not exist")
    if not principal.operator and owner != principal.org_id:
        raise PermissionDeniedError(
            f"this API key cannot access {kind} '{ident}': it does not exist or belongs to "
            "another organization"
        )


class TenancyService:
    def __init__(self, session: Session, secret_key: str, admin_token: str) -> None:
        self.session = session
        self._secret_key = secret_key
        self._admin_token = admin_token
        self._box = SecretBox(secret_key)

    # -- authentication -----------------------------------------------------------------
    def authenticate(self, bearer: str | None) -> Principal:
        if not bearer:
            raise AuthenticationError(
                "missing bearer token: send 'Authorization: Bearer <api key or admin token>'"
            )
        if constant_time_equals(bearer, self._admin_token):
            return Principal(actor="operator", org_id=None, operator=True)
        key = repo.get_api_key_by_hash(self.session, hash_token(self._secret_key, bearer))
        if key is None or key.revoked_at is not None:
            raise AuthenticationError("unknown or revoked API key")
        return Principal(actor=f"key:{key.id}", org_id=key.org_id, scopes=frozenset(key.scopes))

    # -- organizations ------------------------------------------------------------------
    def create_org(self, data: OrganizationCreate, actor: str) -> Organization:
        if repo.get_org(self.session, data.id) is not None:
            raise ConflictError(f"organization '{data.id}' already exists")
        org = Organization(id=data.id, name=data.name)
        self.session.add(org)
        record_audit(self.session, actor=actor, action="org.create", target=data.id, org_id=data.id)
        return org

    def require_org(self, org_id: str) -> Organization:
        org = repo.get_org(self.session, org_id)
        if org is None:
            raise NotFoundError(f"organization '{org_id}' does not exist")
        return org

    # -- API keys -----------------------------------------------------------------------
    def create_api_key(self, org_id: str, data: ApiKeyCreate, actor: str) -> tuple[ApiKey, str]:
        self.require_org(org_id)
        key_id, token = new_api_key()
        key = ApiKey(
            id=key_id,
            org_id=org_id,
            name=data.name,
            key_hash=hash_token(self._secret_key, token),
            scopes=sorted(set(data.scopes)),
        )
        self.session.add(key)
        record_audit(
            self.session,
            actor=actor,
            action="api_key.create",
            target=f"key:{key_id}",
            org_id=org_id,
            detail={"scopes": key.scopes, "name": data.name},
        )
        return key, token

    def revoke_api_key(self, org_id: str, key_id: str, actor: str) -> ApiKey:
        key = self.session.get(ApiKey, key_id)
        if key is None or key.org_id != org_id:
            raise NotFoundError(f"API key '{key_id}' does not exist in '{org_id}'")
        key.revoked_at = utcnow()
        self.session.add(key)
        record_audit(
            self.session,
            actor=actor,
            action="api_key.revoke",
            target=f"key:{key_id}",
            org_id=org_id,
        )
        return key

    # -- agents -------------------------------------------------------------------------
    def create_agent(self, org_id: str, data: AgentCreate, actor: str) -> Agent:
        self.require_org(org_id)
        if repo.get_agent(self.session, data.id) is not None:
            raise ConflictError(f"agent '{data.id}' already exists (agent ids are global)")
        agent = Agent(
            id=data.id,
            org_id=org_id,
            name=data.name,
            platform_settings=data.platform_settings,
            pii_policy=data.pii_policy.model_dump(),
        )
        self.session.add(agent)
        record_audit(
            self.session,
            actor=actor,
            action="agent.create",
            target=agent_target(data.id),
            org_id=org_id,
        )
        return agent

    def update_agent(self, agent_id: str, data: AgentUpdate, actor: str) -> Agent:
        agent = self.require_agent(agent_id)
        changed: dict[str, object] = {}
        if data.name is not None:
            agent.name = data.name
            changed["name"] = data.name
        if data.pii_policy is not None:
            agent.pii_policy = data.pii_policy.model_dump()
            changed["pii_policy"] = agent.pii_policy
        if data.platform_settings is not None:
            agent.platform_settings = data.platform_settings
            # Which platforms' settings changed, not their content (it may name private assets).
            changed["platform_settings"] = sorted(data.platform_settings)
        self.session.add(agent)
        record_audit(
            self.session,
            actor=actor,
            action="agent.update",
            target=agent_target(agent_id),
            org_id=agent.org_id,
            detail=changed,
        )
        return agent

    def require_agent(self, agent_id: str) -> Agent:
        agent = repo.get_agent(self.session, agent_id)
        if agent is None:
            raise NotFoundError(f"agent '{agent_id}' does not exist")
        return agent

    def require_own_agent(self, principal: Principal, agent_id: str) -> Agent:
        """The agent, if the caller may address it (see ``require_owner``)."""
        agent = repo.get_agent(self.session, agent_id)
        require_owner(principal, "agent", agent_id, agent.org_id if agent else None)
        assert agent is not None
        return agent

    # -- platform credentials -----------------------------------------------------------
    def set_credential(
        self,
        agent_id: str,
        platform: str,
        data: CredentialSet,
        actor: str,
        kinds: Mapping[str, Sequence[str]],
    ) -> PlatformCredential:
        """``kinds``: platform name -> the credential kinds it accepts (the platforms are the
        connectors' to name; the caller hands their registry in)."""
        agent = self.require_agent(agent_id)
        allowed = tuple(kinds.get(platform, ()))
        if not allowed:
            raise InvalidInputError(f"unknown platform '{platform}'; use one of {sorted(kinds)}")
        if data.kind not in allowed:
            raise InvalidInputError(
                f"credential kind '{data.kind}' does not apply to {platform}; use one of {allowed}"
            )
        cred = repo.get_credential(self.session, agent_id, platform, data.kind)
        if cred is None:
            cred = PlatformCredential(
                org_id=agent.org_id,
                agent_id=agent_id,
                platform=platform,
                kind=data.kind,
                secret_encrypted="",
            )
        cred.secret_encrypted = self._box.encrypt(data.secret)
        cred.header_name = data.header_name
        self.session.add(cred)
        record_audit(
            self.session,
            actor=actor,
            action="credential.set",
            target=agent_target(agent_id, f"{platform}/{data.kind}"),
            org_id=agent.org_id,
        )
        return cred

    def decrypt(self, cred: PlatformCredential) -> str:
        return self._box.decrypt(cred.secret_encrypted)
