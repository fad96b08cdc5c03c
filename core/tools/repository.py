"""Tool-gateway queries. Returns models or None; never commits."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete
from sqlmodel import Session, col, select

from core.tools.models import AgentTool, McpServer, ToolInvocation


def get_server(session: Session, server_id: int) -> McpServer | None:
    return session.get(McpServer, server_id)


def get_server_by_name(session: Session, org_id: str, name: str) -> McpServer | None:
    stmt = select(McpServer).where(McpServer.org_id == org_id, McpServer.name == name)
    return session.exec(stmt).first()


def list_servers(session: Session, org_id: str | None = None) -> list[McpServer]:
    stmt = select(McpServer).order_by(col(McpServer.org_id), col(McpServer.name))
    if org_id is not None:
        stmt = stmt.where(McpServer.org_id == org_id)
    return list(session.exec(stmt))


def list_servers_with_enabled_tools(session: Session) -> list[McpServer]:
    used = select(AgentTool.server_id).distinct()
    stmt = select(McpServer).where(col(McpServer.id).in_(used)).order_by(col(McpServer.id))
    return list(session.exec(stmt))


def list_agent_tools(session: Session, agent_id: str) -> list[tuple[AgentTool, McpServer]]:
    stmt = (
        select(AgentTool, McpServer)
        .join(McpServer, col(McpServer.id) == col(AgentTool.server_id))
        .where(AgentTool.agent_id == agent_id)
        .order_by(col(AgentTool.exposed_name))
    )
    return [(tool, server) for tool, server in session.exec(stmt)]


def list_org_agent_tools(session: Session, org_id: str) -> list[AgentTool]:
    stmt = select(AgentTool).where(AgentTool.org_id == org_id)
    return list(session.exec(stmt))


def get_agent_tool(
    session: Session, agent_id: str, server_id: int, tool_name: str
) -> AgentTool | None:
    stmt = select(AgentTool).where(
        AgentTool.agent_id == agent_id,
        AgentTool.server_id == server_id,
        AgentTool.tool_name == tool_name,
    )
    return session.exec(stmt).first()


def get_agent_tool_by_exposed(session: Session, agent_id: str, exposed: str) -> AgentTool | None:
    stmt = select(AgentTool).where(
        AgentTool.agent_id == agent_id, AgentTool.exposed_name == exposed
    )
    return session.exec(stmt).first()


def delete_server_tools(session: Session, server_id: int) -> None:
    session.execute(delete(AgentTool).where(col(AgentTool.server_id) == server_id))


def get_invocation(session: Session, key: str) -> ToolInvocation | None:
    stmt = select(ToolInvocation).where(ToolInvocation.idempotency_key == key)
    return session.exec(stmt).first()


def delete_invocation(session: Session, key: str) -> None:
    session.execute(delete(ToolInvocation).where(col(ToolInvocation.idempotency_key) == key))


def purge_invocations(session: Session, before: datetime) -> int:
    result = session.execute(delete(ToolInvocation).where(col(ToolInvocation.created_at) < before))
    return int(getattr(result, "rowcount", 0) or 0)
