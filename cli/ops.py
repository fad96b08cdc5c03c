"""Local operations that talk to the database directly: migrations and seeding the demo agent.

Only ``backline up``, ``worker`` and ``migrate`` use these; every other command goes through the
API so scopes and the audit trail apply.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Engine
from sqlmodel import Session

from cli.demo_tools import seed_demo_tools
from connectors.registry import CREDENTIAL_KINDS, validate_platform_settings
from core.settings import Settings
from core.tenancy import repository as tenancy_repo
from core.tenancy.schemas import AgentCreate, CredentialSet, OrganizationCreate
from core.tenancy.service import TenancyService

ROOT = Path(__file__).resolve().parent.parent
DEMO_ORG = "demo-org"
DEMO_AGENT = "demo"
DEMO_ASSISTANT = {
    "name": "Backline demo agent",
    "firstMessage": "Hi, thanks for calling Acme Home Services. How can I help?",
    "model": {
        "provider": "openai",
        "model": "gpt-4o-mini",
        "messages": [
            {
                "role": "system",
                "content": (
                    "You are the phone agent for Acme Home Services. Known caller: "
                    "{{backline_caller_known}}. What we remember: {{backline_memory_summary}}. "
                    "Facts: {{backline_caller_facts}}. Use memory_search before asking a "
                    "returning caller to repeat themselves."
                ),
            }
        ],
    },
}


def migrate(database_url: str) -> None:
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    cfg.set_main_option("sqlalchemy.url", database_url)
    command.upgrade(cfg, "heads")


def seed_demo(engine: Engine, settings: Settings) -> bool:
    """Create the demo org, agent ``demo`` and its platform credentials; True if created."""
    with Session(engine) as session:
        svc = TenancyService(
            session, settings.secret_key.get_secret_value(), settings.admin_token.get_secret_value()
        )
        created = False
        if tenancy_repo.get_org(session, DEMO_ORG) is None:
            svc.create_org(OrganizationCreate(id=DEMO_ORG, name="Demo organization"), "system:seed")
            created = True
        if tenancy_repo.get_agent(session, DEMO_AGENT) is None:
            svc.create_agent(
                DEMO_ORG,
                AgentCreate(
                    id=DEMO_AGENT,
                    name="Acme Home Services",
                    platform_settings=validate_platform_settings(
                        {"vapi": {"assistant": DEMO_ASSISTANT}}
                    ),
                ),
                "system:seed",
            )
            created = True
        # Credentials follow the environment on every start, so changing them takes a restart.
        for platform, kind, secret in (
            ("vapi", "bearer", settings.demo_vapi_token),
            ("retell", "api_key", settings.demo_retell_api_key),
            ("bland", "signing_secret", settings.demo_bland_secret),
            ("bland", "tool_token", settings.demo_bland_tool_token),
        ):
            existing = tenancy_repo.get_credential(session, DEMO_AGENT, platform, kind)
            value = secret.get_secret_value()
            if existing is None or svc.decrypt(existing) != value:
                svc.set_credential(
                    DEMO_AGENT,
                    platform,
                    CredentialSet(kind=kind, secret=value),
                    "system:seed",
                    CREDENTIAL_KINDS,
                )
        session.flush()
        # The example MCP servers (stdio) and their tools on the demo agent.
        seed_demo_tools(
            session, settings.secret_key.get_secret_value(), DEMO_ORG, svc.require_agent(DEMO_AGENT)
        )
        session.commit()
        return created
