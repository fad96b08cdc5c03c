"""Tenancy queries. Returns models or None; never commits."""

from __future__ import annotations

from sqlmodel import Session, col, select

from core.tenancy.models import Agent, ApiKey, Organization, PlatformCredential


def get_org(session: Session, org_id: str) -> Organization | None:
    return session.get(Organization, org_id)


def list_orgs(session: Session) -> list[Organization]:
    return list(session.exec(select(Organization).order_by(col(Organization.id))))


def get_agent(session: Session, agent_id: str) -> Agent | None:
    return session.get(Agent, agent_id)


def list_agents(session: Session, org_id: str) -> list[Agent]:
    stmt = select(Agent).where(Agent.org_id == org_id).order_by(col(Agent.id))
    return list(session.exec(stmt))


def get_api_key_by_hash(session: Session, key_hash: str) -> ApiKey | None:
    return session.exec(select(ApiKey).where(ApiKey.key_hash == key_hash)).first()


def list_api_keys(session: Session, org_id: str) -> list[ApiKey]:
    stmt = select(ApiKey).where(ApiKey.org_id == org_id).order_by(col(ApiKey.created_at))
    return list(session.exec(stmt))


def get_credential(
    session: Session, agent_id: str, platform: str, kind: str
) -> PlatformCredential | None:
    stmt = select(PlatformCredential).where(
        PlatformCredential.agent_id == agent_id,
        PlatformCredential.platform == platform,
        PlatformCredential.kind == kind,
    )
    return session.exec(stmt).first()


def list_credentials(session: Session, agent_id: str) -> list[PlatformCredential]:
    stmt = select(PlatformCredential).where(PlatformCredential.agent_id == agent_id)
    return list(session.exec(stmt))
