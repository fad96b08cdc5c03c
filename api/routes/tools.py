"""Tool-schema export: an agent's tools as each platform's tool definitions, ready to paste."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.deps import PrincipalDep, StateDep, TenancyDep, auth
from connectors.registry import PLATFORMS
from core.errors import NotFoundError
from core.tools.builtins import BUILTIN_TOOLS
from core.tools.service import ToolRegistryService

router = APIRouter(prefix="/v1/agents/{agent_id}", tags=["tools"])


@router.get("/platforms/{platform}/tools", openapi_extra=auth("viewer"))
def export_tools(
    agent_id: str, platform: str, principal: PrincipalDep, tenancy: TenancyDep, state: StateDep
) -> list[dict[str, Any]]:
    """The agent's tools (built-ins and its enabled MCP gateway tools) in the platform's
    format, with server URLs from ``BACKLINE_PUBLIC_URL``."""
    agent = tenancy.require_agent(agent_id)
    principal.require("viewer", agent.org_id)
    exporter = PLATFORMS.get(platform)
    if exporter is None:
        raise NotFoundError(f"unknown platform '{platform}'; use one of {sorted(PLATFORMS)}")
    gateway_tools = ToolRegistryService(tenancy.session).export_specs(agent_id)
    return exporter.export_tools(
        {**BUILTIN_TOOLS, **gateway_tools}, state.settings.public_url, agent_id
    )
