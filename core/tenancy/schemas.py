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
    vapi_assistant_id: str | None = None
    vapi_assistant: dict[str, Any] | None = Field(
        default=None, description="Inline VAPI assistant returned on assistant-request"
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


class AgentPublic(BaseModel):
    id: str
    org_id: str
    name: str
    vapi_assistant_id: str | None
    vapi_assistant: dict[str, Any] | None
    pii_policy: PiiPolicy
    created_at: datetime

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
    kind: Literal["bearer", "hmac", "api_key", "signing_secret", "tool_token"]
    secret: str = Field(min_length=8, description="Token, API key or signing secret")
    header_name: str | None = Field(
        default=None,
        description="VAPI bearer only: header carrying the token (default Authorization)",
    )


class CredentialPublic(BaseModel):
    agent_id: str
    platform: str
    kind: str
    header_name: str | None
    created_at: datetime
