"""Seeding the demo agent's tools: the example appointments and orders MCP servers registered
for ``demo-org`` as stdio servers, and their tools enabled on agent ``demo``.

Runs inside ``seed_demo``'s unit of work (it never commits). The tools are enabled by name before
the servers were ever started; the API discovers their schemas when it warms the servers up.
"""

from __future__ import annotations

import sys
from pathlib import Path

from sqlmodel import Session

from core.tenancy.models import Agent
from core.tools import repository as tools_repo
from core.tools.schemas import McpServerCreate, ToolEnable
from core.tools.service import ToolRegistryService

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "mcp_servers"
DEMO_SERVERS = {
    "appointments": (
        "our booking system",
        ("list_slots", "book_slot", "cancel_booking"),
    ),
    "orders": ("our order system", ("order_status", "refund_order")),
}
ACTOR = "system:seed"


def seed_demo_tools(session: Session, secret_key: str, org_id: str, agent: Agent) -> None:
    registry = ToolRegistryService(session, secret_key)
    for name, (display_name, tools) in DEMO_SERVERS.items():
        # The interpreter running the seed is the one whose venv has the MCP SDK.
        command = [sys.executable, str(EXAMPLES / f"{name}.py")]
        server = tools_repo.get_server_by_name(session, org_id, name)
        if server is None:
            server = registry.add_server(
                org_id,
                McpServerCreate(
                    name=name, display_name=display_name, transport="stdio", command=command
                ),
                ACTOR,
                operator=True,
            )
        else:
            registry.update_command(server, command, ACTOR)
        assert server.id is not None
        for tool in tools:
            if tools_repo.get_agent_tool(session, agent.id, server.id, tool) is None:
                registry.enable_tool(
                    agent, f"{name}/{tool}", ToolEnable(), ACTOR, allow_undiscovered=True
                )
