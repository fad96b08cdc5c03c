"""Tenancy API schemas (Create / Public models per entity)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from core.pii.policy import DEFAULT_PII_POLICY, PiiPolicy

Scope = Literal["admin", "content", "release", "viewer"]
SLUG = r"^[a-z0-9][a-z0-9_-]{0,63}$"


class OrganizationCreate(BaseModel):
    id: str = Field(pattern=SLUG, description="Slug: lowercase letters, digits, - and _")
    name: str = Field(min_length=1, max_length=200)


class OrganizationPublic(BaseModel):
    id: str
    name: str
    created_at: datetime


class AgentCreate(BaseModel):
    id: str = Field(pattern=SLUG, description="Globally unique slug; appears in webhook URLs")
    name: str = Field(min_length=1, max_length=200)
    platform_settings: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Platform name -> that platform's settings for this agent; each platform "
        "accepts its own keys (an unknown platform or key answers 422 naming it)",
    )
    pii_policy: PiiPolicy = Field(
        default=DEFAULT_PII_POLICY,
        description='What calls may keep: {"address": "redact" (default) | "keep"}',
    )


class AgentUpdate(BaseModel):
    """Fields a PATCH changes; the ones left out stay as they are."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    pii_policy: PiiPolicy | None = Field(
        default=None, description='{"address": "redact" | "keep"}; replaces the whole policy'
    )
    platform_settings: dict[str, dict[str, Any]] | None = Field(
        default=None, description="Replaces the whole per-platform settings document"
    )


class AgentPublic(BaseModel):
    id: str
    org_id: str
    name: str
    platform_settings: dict[str, dict[str, Any]]
    pii_policy: PiiPolicy
    created_at: datetime

    @field_validator("platform_settings", mode="before")
    @classmethod
    def _stored_settings(cls, value: object) -> object:
        return {} if value is None else value

    @field_validator("pii_policy", mode="before")
    @classmethod
    def _stored_policy(cls, value: object) -> object:
        # Agents created before PII policies existed store none: theirs is the default.
        return DEFAULT_PII_POLICY if value is None else value


class ApiKeyCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    scopes: list[Scope] = Field(min_length=1)


class ApiKeyPublic(BaseModel):
    id: str
    org_id: str
    name: str
    scopes: list[str]
    created_at: datetime
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyPublic):
    token: str = Field(description="Shown once; store it now")


class CredentialSet(BaseModel):
    kind: str = Field(
        pattern=r"^[a-z][a-z0-9_]{0,31}$",
        description="One of the platform's credential kinds (a kind of another platform "
        "answers 422 naming the ones that apply)",
    )
    secret: str = Field(min_length=8, description="Token, API key or signing secret")
    header_name: str | None = Field(
        default=None,
        description="Bearer tokens only: header carrying the token (default Authorization)",
    )


class CredentialPublic(BaseModel):
    agent_id: str
    platform: str
    kind: str
    header_name: str | None
    created_at: datetime
