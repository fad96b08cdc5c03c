"""Tool registry rules: MCP servers per organization, their discovered tools, tools enabled per
agent under an exposed name, the idempotency ledger, and writing call records.

Naming: a server's tools are exposed as ``<prefix>_<tool>`` when the server has a prefix, else
under their own name (characters platforms reject become ``_``). Two tools may not share an
exposed name on one agent, nor take a built-in's name: enabling one answers a 409 that says to
give a server a prefix. A tool whose input schema has an ``idempotency_key`` property gets one
from the gateway (derived from the call and tool call id), so that parameter is hidden from the
platforms' tool definitions.

Secrets are encrypted with ``SecretBox`` before they reach a row and decrypted only into a
``ServerSpec`` for the connection pool; they are never logged or written to the audit trail.
Services never commit: the caller's unit of work does.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from core.audit.service import record_audit
from core.audit.targets import agent_target
from core.calls.service import CallsService
from core.db import utcnow
from core.errors import ConflictError, NotFoundError, PermissionDeniedError
from core.tenancy.models import Agent
from core.tenancy.security import SecretBox
from core.tools import repository as repo
from core.tools.breaker import BreakerPolicy
from core.tools.builtins import BUILTIN_TOOLS, ToolOutcome
from core.tools.models import AgentTool, McpServer, ToolInvocation
from core.tools.ports import DiscoveredTool, ServerSpec
from core.tools.schemas import (
    AgentToolPublic,
    McpServerCreate,
    McpServerPublic,
    ToolCallRecord,
    ToolEnable,
    ToolPublic,
)

IDEMPOTENCY_PARAM = "idempotency_key"
LEDGER_RETENTION = timedelta(days=1)
_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9_-]")
_MAX_NAME = 64  # VAPI and Retell both cap function names at 64 characters


def exposed_name(prefix: str | None, tool: str) -> str:
    """The name platforms see: ``<prefix>_<tool>``, restricted to ``[A-Za-z0-9_-]``."""
    safe = _UNSAFE_NAME_CHARS.sub("_", tool)
    return (f"{prefix}_{safe}" if prefix else safe)[:_MAX_NAME]


def is_idempotent(tool: DiscoveredTool, override: bool | None) -> bool:
    """Safe to retry and to run twice: the agent's override, else the server's hints."""
    if override is not None:
        return override
    return bool(tool.read_only or tool.idempotent)


def platform_parameters(schema: dict[str, Any]) -> dict[str, Any]:
    """The tool's input schema as a platform's LLM should see it: an object schema without the
    gateway-supplied ``idempotency_key`` and without decoration the platforms do not use."""
    params = copy.deepcopy(schema) if isinstance(schema, dict) else {}
    params.pop("title", None)
    params.pop("$schema", None)
    params["type"] = "object"
    props = params.get("properties")
    props = dict(props) if isinstance(props, dict) else {}
    props.pop(IDEMPOTENCY_PARAM, None)
    params["properties"] = props
    required = [r for r in params.get("required") or [] if r != IDEMPOTENCY_PARAM]
    if required:
        params["required"] = required
    else:
        params.pop("required", None)
    return params


def wants_idempotency_key(schema: dict[str, Any]) -> bool:
    props = schema.get("properties") if isinstance(schema, dict) else None
    return isinstance(props, dict) and IDEMPOTENCY_PARAM in props


@dataclass(frozen=True)
class ResolvedToolConfig:
    """Everything the gateway needs to call one enabled tool. Holds decrypted secrets (in
    ``server``): never log it."""

    org_id: str
    agent_id: str
    exposed_name: str
    server: ServerSpec
    server_name: str
    display_name: str
    tool: DiscoveredTool
    available: bool
    idempotent: bool
    timeout_s: float
    max_retries: int
    rate_limit_per_minute: int
    fallback_message: str | None
    breaker: BreakerPolicy


def _breaker_policy(server: McpServer) -> BreakerPolicy:
    return BreakerPolicy(
        failures=server.breaker_failures,
        error_rate=server.breaker_error_rate,
        window_s=server.breaker_window_s,
        min_calls=server.breaker_min_calls,
        cooldown_s=server.breaker_cooldown_s,
    )


def _tools_of(server: McpServer) -> dict[str, DiscoveredTool]:
    out: dict[str, DiscoveredTool] = {}
    for data in server.tools or []:
        tool = DiscoveredTool.from_json(data)
        out[tool.name] = tool
    return out


class ToolRegistryService:
    def __init__(self, session: Session, secret_key: str | None = None) -> None:
        self.session = session
        self._box = SecretBox(secret_key) if secret_key is not None else None

    def _require_box(self) -> SecretBox:
        if self._box is None:
            raise RuntimeError("ToolRegistryService needs the secret key for server secrets")
        return self._box

    # -- servers ----------------------------------------------------------------------------
    def add_server(
        self, org_id: str, data: McpServerCreate, actor: str, *, operator: bool
    ) -> McpServer:
        # A stdio server is a command Backline runs on its own hosts: only the operator may
        # register one, or any org admin could run code next to every tenant's data.
        if data.transport == "stdio" and not operator:
            raise PermissionDeniedError(
                "stdio servers run a command on Backline's hosts, so only the operator "
                "(BACKLINE_ADMIN_TOKEN) may register them; register an http server instead"
            )
        if repo.get_server_by_name(self.session, org_id, data.name) is not None:
            raise ConflictError(f"MCP server '{data.name}' already exists in '{org_id}'")
        secrets: dict[str, Any] = {
            "headers": {k: v.get_secret_value() for k, v in data.headers.items()},
            "bearer_token": data.bearer_token.get_secret_value() if data.bearer_token else None,
            "env": {k: v.get_secret_value() for k, v in data.env.items()},
        }
        has_secrets = bool(secrets["headers"] or secrets["bearer_token"] or secrets["env"])
        server = McpServer(
            org_id=org_id,
            name=data.name,
            display_name=data.display_name or f"the {data.name} service",
            transport=data.transport,
            command=list(data.command) if data.command else None,
            url=data.url,
            prefix=data.prefix,
            secrets_encrypted=(
                self._require_box().encrypt(json.dumps(secrets)) if has_secrets else None
            ),
            secret_names={
                "headers": sorted(data.headers),
                "bearer_token": data.bearer_token is not None,
                "env": sorted(data.env),
            },
            timeout_s=data.timeout_s,
            max_retries=data.max_retries,
            rate_limit_per_minute=data.rate_limit_per_minute,
            breaker_failures=data.breaker_failures,
            breaker_error_rate=data.breaker_error_rate,
            breaker_window_s=data.breaker_window_s,
            breaker_min_calls=data.breaker_min_calls,
            breaker_cooldown_s=data.breaker_cooldown_s,
            fallback_message=data.fallback_message,
        )
        self.session.add(server)
        self.session.flush()
        record_audit(
            self.session,
            actor=actor,
            action="tool_server.add",
            target=f"mcp:{data.name}",
            org_id=org_id,
            detail={
                "transport": data.transport,
                "prefix": data.prefix,
                "secret_headers": sorted(data.headers),
                "bearer_token": data.bearer_token is not None,
                "secret_env": sorted(data.env),
            },
        )
        return server

    def update_command(self, server: McpServer, command: list[str], actor: str) -> None:
        """Point a stdio server at a new command line (the demo seed follows the venv)."""
        if server.command == command:
            return
        server.command = list(command)
        server.updated_at = utcnow()
        self.session.add(server)
        record_audit(
            self.session,
            actor=actor,
            action="tool_server.update",
            target=f"mcp:{server.name}",
            org_id=server.org_id,
        )

    def require_server(self, org_id: str, name: str) -> McpServer:
        server = repo.get_server_by_name(self.session, org_id, name)
        if server is None:
            raise NotFoundError(f"MCP server '{name}' is not registered in '{org_id}'")
        return server

    def remove_server(self, org_id: str, name: str, actor: str) -> McpServer:
        server = self.require_server(org_id, name)
        assert server.id is not None
        repo.delete_server_tools(self.session, server.id)
        self.session.delete(server)
        record_audit(
            self.session,
            actor=actor,
            action="tool_server.remove",
            target=f"mcp:{name}",
            org_id=org_id,
        )
        return server

    def server_spec(self, server: McpServer) -> ServerSpec:
        assert server.id is not None
        secrets: dict[str, Any] = {}
        if server.secrets_encrypted:
            secrets = json.loads(self._require_box().decrypt(server.secrets_encrypted))
        headers = dict(secrets.get("headers") or {})
        if secrets.get("bearer_token"):
            headers["Authorization"] = f"Bearer {secrets['bearer_token']}"
        return ServerSpec(
            server_id=server.id,
            name=server.name,
            transport="stdio" if server.transport == "stdio" else "http",
            command=tuple(server.command or ()),
            url=server.url,
            headers=headers,
            env=dict(secrets.get("env") or {}),
        )

    def store_discovery(
        self, server_id: int, tools: list[DiscoveredTool] | None, error: str | None
    ) -> McpServer | None:
        server = repo.get_server(self.session, server_id)
        if server is None:
            return None
        if tools is not None:
            server.tools = [t.to_json() for t in tools]
            server.tools_refreshed_at = utcnow()
        server.last_error = error[:500] if error else None
        server.updated_at = utcnow()
        self.session.add(server)
        return server

    @staticmethod
    def public(server: McpServer) -> McpServerPublic:
        assert server.id is not None
        names = server.secret_names or {}
        return McpServerPublic(
            id=server.id,
            org_id=server.org_id,
            name=server.name,
            display_name=server.display_name,
            transport=server.transport,
            command=server.command,
            url=server.url,
            prefix=server.prefix,
            secret_header_names=list(names.get("headers") or []),
            has_bearer_token=bool(names.get("bearer_token")),
            secret_env_names=list(names.get("env") or []),
            timeout_s=server.timeout_s,
            max_retries=server.max_retries,
            rate_limit_per_minute=server.rate_limit_per_minute,
            breaker_failures=server.breaker_failures,
            breaker_error_rate=server.breaker_error_rate,
            breaker_window_s=server.breaker_window_s,
            breaker_min_calls=server.breaker_min_calls,
            breaker_cooldown_s=server.breaker_cooldown_s,
            fallback_message=server.fallback_message,
            tools=[str(t.get("name")) for t in server.tools or []],
            tools_refreshed_at=server.tools_refreshed_at,
            last_error=server.last_error,
            created_at=server.created_at,
        )

    # -- tools and enablement ---------------------------------------------------------------
    def list_org_tools(self, org_id: str, agent_id: str | None = None) -> list[ToolPublic]:
        enabled: set[tuple[int, str]] = set()
        if agent_id is not None:
            enabled = {
                (t.server_id, t.tool_name) for t, _ in repo.list_agent_tools(self.session, agent_id)
            }
        out: list[ToolPublic] = []
        for server in repo.list_servers(self.session, org_id):
            assert server.id is not None
            for tool in _tools_of(server).values():
                out.append(
                    ToolPublic(
                        name=exposed_name(server.prefix, tool.name),
                        server=server.name,
                        tool=tool.name,
                        title=tool.title,
                        description=tool.description,
                        input_schema=tool.input_schema,
                        read_only=tool.read_only,
                        idempotent=tool.idempotent,
                        destructive=tool.destructive,
                        enabled=(server.id, tool.name) in enabled if agent_id else None,
                    )
                )
        return out

    def _resolve_ref(self, org_id: str, ref: str) -> tuple[McpServer, str]:
        """``server/tool`` or an exposed name -> (server, the tool's own name)."""
        if "/" in ref:
            server_name, tool_name = ref.split("/", 1)
            return self.require_server(org_id, server_name), tool_name
        matches = [
            (server, tool.name)
            for server in repo.list_servers(self.session, org_id)
            for tool in _tools_of(server).values()
            if exposed_name(server.prefix, tool.name) == ref
        ]
        if not matches:
            raise NotFoundError(
                f"no registered server in '{org_id}' offers a tool named '{ref}'; list them "
                "with `backline tools list` (refresh a server first if it is new)"
            )
        if len(matches) > 1:
            servers = ", ".join(sorted(s.name for s, _ in matches))
            raise ConflictError(
                f"'{ref}' is offered by several servers ({servers}); name it as "
                "'<server>/<tool>' and give those servers distinct prefixes"
            )
        return matches[0]

    def enable_tool(
        self,
        agent: Agent,
        ref: str,
        data: ToolEnable,
        actor: str,
        *,
        allow_undiscovered: bool = False,
    ) -> AgentTool:
        server, tool_name = self._resolve_ref(agent.org_id, ref)
        assert server.id is not None
        if tool_name not in _tools_of(server) and not allow_undiscovered:
            raise NotFoundError(
                f"server '{server.name}' does not list a tool '{tool_name}' (last refreshed "
                f"{server.tools_refreshed_at or 'never'}); refresh the server and try again"
            )
        name = exposed_name(server.prefix, tool_name)
        if name in BUILTIN_TOOLS:
            raise ConflictError(
                f"'{name}' is a built-in tool; give server '{server.name}' a prefix"
            )
        clash = repo.get_agent_tool_by_exposed(self.session, agent.id, name)
        if clash is not None and (clash.server_id, clash.tool_name) != (server.id, tool_name):
            other = repo.get_server(self.session, clash.server_id)
            raise ConflictError(
                f"agent '{agent.id}' already has a tool named '{name}' (from server "
                f"'{other.name if other else clash.server_id}'); register one of the servers "
                "with a distinct --prefix so their tools are exposed as '<prefix>_<tool>'"
            )
        row = repo.get_agent_tool(self.session, agent.id, server.id, tool_name)
        if row is None:
            row = AgentTool(
                org_id=agent.org_id,
                agent_id=agent.id,
                server_id=server.id,
                tool_name=tool_name,
                exposed_name=name,
            )
        row.idempotent = data.idempotent
        row.timeout_s = data.timeout_s
        row.rate_limit_per_minute = data.rate_limit_per_minute
        row.fallback_message = data.fallback_message
        try:
            with self.session.begin_nested():
                self.session.add(row)
                self.session.flush()
        except IntegrityError as exc:
            raise ConflictError(
                f"tool '{name}' was enabled concurrently on '{agent.id}'; try again"
            ) from exc
        record_audit(
            self.session,
            actor=actor,
            action="tool.enable",
            target=agent_target(agent.id, "tool", name),
            org_id=agent.org_id,
            detail={"server": server.name, "tool": tool_name, **data.model_dump()},
        )
        return row

    def disable_tool(self, agent: Agent, ref: str, actor: str) -> AgentTool:
        row = repo.get_agent_tool_by_exposed(self.session, agent.id, ref)
        if row is None and "/" in ref:
            server_name, tool_name = ref.split("/", 1)
            server = self.require_server(agent.org_id, server_name)
            assert server.id is not None
            row = repo.get_agent_tool(self.session, agent.id, server.id, tool_name)
        if row is None:
            raise NotFoundError(f"tool '{ref}' is not enabled on agent '{agent.id}'")
        self.session.delete(row)
        record_audit(
            self.session,
            actor=actor,
            action="tool.disable",
            target=agent_target(agent.id, "tool", row.exposed_name),
            org_id=agent.org_id,
        )
        return row

    def resolve_agent_tools(self, agent_id: str) -> list[ResolvedToolConfig]:
        out: list[ResolvedToolConfig] = []
        for row, server in repo.list_agent_tools(self.session, agent_id):
            tools = _tools_of(server)
            tool = tools.get(row.tool_name)
            available = tool is not None
            if tool is None:
                tool = DiscoveredTool(
                    name=row.tool_name, description="", input_schema={"type": "object"}
                )
            out.append(
                ResolvedToolConfig(
                    org_id=row.org_id,
                    agent_id=row.agent_id,
                    exposed_name=row.exposed_name,
                    server=self.server_spec(server),
                    server_name=server.name,
                    display_name=server.display_name,
                    tool=tool,
                    available=available,
                    idempotent=is_idempotent(tool, row.idempotent),
                    timeout_s=row.timeout_s or server.timeout_s,
                    max_retries=server.max_retries,
                    rate_limit_per_minute=row.rate_limit_per_minute or server.rate_limit_per_minute,
                    fallback_message=row.fallback_message or server.fallback_message,
                    breaker=_breaker_policy(server),
                )
            )
        return out

    def agent_tools_public(self, agent_id: str) -> list[AgentToolPublic]:
        out: list[AgentToolPublic] = []
        for row, server in repo.list_agent_tools(self.session, agent_id):
            tool = _tools_of(server).get(row.tool_name)
            out.append(
                AgentToolPublic(
                    agent_id=agent_id,
                    name=row.exposed_name,
                    server=server.name,
                    tool=row.tool_name,
                    description=tool.description if tool else "",
                    available=tool is not None,
                    idempotent=is_idempotent(tool, row.idempotent) if tool else False,
                    idempotent_override=row.idempotent,
                    timeout_s=row.timeout_s or server.timeout_s,
                    rate_limit_per_minute=row.rate_limit_per_minute or server.rate_limit_per_minute,
                    fallback_message=row.fallback_message or server.fallback_message,
                )
            )
        return out

    def export_specs(self, agent_id: str) -> dict[str, dict[str, Any]]:
        """Enabled, available tools as ``{name: {"description", "parameters"}}`` for the
        platform tool exporters (the shape of ``BUILTIN_TOOLS``)."""
        specs: dict[str, dict[str, Any]] = {}
        for row, server in repo.list_agent_tools(self.session, agent_id):
            tool = _tools_of(server).get(row.tool_name)
            if tool is None:
                continue
            specs[row.exposed_name] = {
                "description": tool.description or tool.title or row.exposed_name,
                "parameters": platform_parameters(tool.input_schema),
            }
        return specs

    # -- idempotency ledger -----------------------------------------------------------------
    def claim_invocation(
        self,
        *,
        key: str,
        org_id: str,
        agent_id: str,
        platform: str,
        call_id: str,
        tool_call_id: str,
        tool: str,
    ) -> tuple[bool, ToolInvocation]:
        """Insert the ledger row for ``key``; (False, existing row) when it is already there.
        The unique key decides between concurrent duplicates, across processes."""
        row = ToolInvocation(
            idempotency_key=key,
            org_id=org_id,
            agent_id=agent_id,
            platform=platform,
            call_id=call_id[:128],
            tool_call_id=tool_call_id[:128],
            tool=tool,
        )
        try:
            with self.session.begin_nested():
                self.session.add(row)
                self.session.flush()
        except IntegrityError:
            existing = repo.get_invocation(self.session, key)
            if existing is None:
                raise
            return False, existing
        return True, row

    def finish_invocation(self, key: str, outcome: ToolOutcome, status: str, attempts: int) -> None:
        row = repo.get_invocation(self.session, key)
        if row is None:
            return
        row.status = "done"
        row.outcome_status = status
        row.result = outcome.result
        row.error = outcome.error
        row.attempts = attempts
        row.finished_at = utcnow()
        self.session.add(row)

    def release_invocation(self, key: str) -> None:
        """The tool never ran (refused before sending): a retry may run it."""
        repo.delete_invocation(self.session, key)

    def get_invocation(self, key: str) -> ToolInvocation | None:
        return repo.get_invocation(self.session, key)

    def purge_invocations(self) -> int:
        return repo.purge_invocations(self.session, utcnow() - LEDGER_RETENTION)


BREAKER_OPEN = "tool_breaker_open"
# Breaker alerts this process raised, so the next successful call to that server resolves them
# without a lookup on every call (breakers are per process too).
_open_breakers: set[str] = set()


def _breaker_alert(session: Session, record: ToolCallRecord) -> None:
    """A call refused or failed with the server's breaker open raises (or refreshes) one alert
    about that server, through the alert rules like every source; a later successful call to
    it resolves the alert."""
    from core.monitoring.alerts import raise_alert, resolve_subject

    subject = f"mcp_server:{record.org_id}:{record.server}"
    if record.breaker == "open" or record.status == "breaker_open":
        raise_alert(
            session,
            org_id=record.org_id,
            agent_id=record.agent_id,
            kind=BREAKER_OPEN,
            message=(
                f"The circuit breaker of tool server '{record.server}' is open: calls to its "
                "tools get the spoken fallback until it recovers"
            ),
            detail={"server": record.server, "tool": record.tool, "status": record.status},
            subject=subject,
        )
        _open_breakers.add(subject)
    elif record.status == "ok" and subject in _open_breakers:
        resolve_subject(
            session,
            subject=subject,
            kinds=(BREAKER_OPEN,),
            resolution="a call to the server succeeded: its breaker closed",
        )
        _open_breakers.discard(subject)


def record_tool_call(session: Session, secret_key: str, record: ToolCallRecord) -> None:
    """Append one gateway call to its call's trace (a ``tool_call`` event, arguments and outcome
    redacted) and, when the tool may change something, to the audit trail (ids only)."""
    outcome = record.outcome
    text = outcome.error if outcome.error is not None else (outcome.result or "")
    data: dict[str, Any] = {
        "tool": record.tool,
        "server": record.server,
        "server_tool": record.server_tool,
        "arguments": record.arguments,
        "status": record.status,
        "ok": outcome.error is None,
        "outcome": text[:500],
        "latency_ms": round(record.latency_ms, 2),
        "attempts": record.attempts,
        "breaker": record.breaker,
        "duplicate": record.duplicate,
    }
    _breaker_alert(session, record)
    if record.call_id is not None:
        event = CallsService(session, secret_key).record_event(
            org_id=record.org_id,
            agent_id=record.agent_id,
            platform=record.platform,
            call_id=record.call_id,
            caller_number=None,
            type="tool_call",
            platform_type="tool_call",
            data=data,
        )
        # The edge hashed the caller already; the raw number never reaches the gateway.
        event.caller_hash = record.caller_hash
    if record.read_only:
        return  # read-only calls stay on the call's trace; the audit keeps what changed things
    # The audit chain is kept forever, so it names ids only: no argument values, no outcome.
    detail = {
        "tool": record.tool,
        "server": record.server,
        "server_tool": record.server_tool,
        "arguments": sorted(record.arguments),
        "status": record.status,
        "ok": outcome.error is None,
        "attempts": record.attempts,
        "duplicate": record.duplicate,
        "call_id": record.call_id,
        "platform": record.platform,
    }
    record_audit(
        session,
        actor=record.actor,
        action="tool.call",
        target=agent_target(record.agent_id, "tool", record.tool),
        org_id=record.org_id,
        detail=detail,
    )
