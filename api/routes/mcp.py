"""Tool-gateway routes: MCP servers per organization, tools per agent, test calls, status and
metrics, and Backline's own MCP endpoint at ``/v1/agents/{agent_id}/mcp``.

Scopes: registering or removing servers needs ``admin`` (and stdio servers the operator, since
they run a command on Backline's hosts); enabling, disabling and test calls need ``release``;
reading needs ``viewer``. The MCP endpoint accepts, as a bearer token, an org API key with the
``release`` scope, the agent's own tool credential (its VAPI ``bearer`` token or Bland
``tool_token``), or the operator token. Secrets are accepted on input only and never returned.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import APIRouter, FastAPI, Query, status
from fastapi.responses import JSONResponse, PlainTextResponse
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from api.deps import PrincipalDep, SessionDep, StateDep, TenancyDep, auth
from api.errors import error_body, error_responses
from api.state import AppState
from connectors.egress import acheck_url
from core.errors import AppError, AuthenticationError, InvalidInputError, NotFoundError
from core.tenancy.security import constant_time_equals
from core.tenancy.service import TenancyService
from core.tools import repository as repo
from core.tools.builtins import BUILTIN_TOOLS
from core.tools.gateway import ToolGateway, ToolInvocationRequest
from core.tools.metrics import render_prometheus
from core.tools.models import McpServer
from core.tools.schemas import (
    AgentToolPublic,
    McpServerCreate,
    McpServerPublic,
    RefreshReport,
    ToolCallRequest,
    ToolCallResponse,
    ToolEnable,
    ToolPublic,
)
from core.tools.service import ToolRegistryService

router = APIRouter(prefix="/v1", tags=["tools"])
MCP_PATH = "/v1/agents/{agent_id}/mcp"
# Agent credentials that are bearer tokens for tool calls already (see tenancy CREDENTIAL_KINDS).
AGENT_TOOL_CREDENTIALS = frozenset({"bearer", "tool_token"})
T = TypeVar("T")


class ToolGatewayNotRunningError(AppError):
    """This API process was built without the tool gateway (its lifespan did not start it)."""

    status_code = 503


def _gateway(state: AppState) -> ToolGateway:
    if state.gateway is None:
        raise ToolGatewayNotRunningError("the tool gateway is not running in this process")
    return state.gateway


async def _db(session: Session, fn: Callable[[Session], T]) -> T:
    """Run ``fn`` on the request's session, off the event loop."""
    return await run_in_threadpool(fn, session)


async def _commit(session: Session) -> None:
    """Commit before handing over to the gateway: it reads the servers and tools in its own
    sessions, so it sees only what is committed."""
    await run_in_threadpool(session.commit)


def _registry(state: AppState, session: Session) -> ToolRegistryService:
    return ToolRegistryService(session, state.settings.secret_key.get_secret_value())


# -- servers --------------------------------------------------------------------------------


@router.post(
    "/orgs/{org_id}/tools/servers",
    status_code=status.HTTP_201_CREATED,
    response_model=McpServerPublic,
    summary="Register an MCP server and discover its tools",
    responses=error_responses(409),
    openapi_extra=auth("admin"),
)
async def add_server(
    org_id: str,
    body: McpServerCreate,
    principal: PrincipalDep,
    session: SessionDep,
    tenancy: TenancyDep,
    state: StateDep,
) -> McpServerPublic:
    principal.require("admin", org_id)
    if body.transport == "http" and body.url:
        # Refused up front when the target is known; the pool checks again at every connect.
        await acheck_url(body.url, state.egress, allow_unresolved=True)

    def _add(session: Session) -> int:
        tenancy.require_org(org_id)
        server = _registry(state, session).add_server(
            org_id, body, principal.actor, operator=principal.operator
        )
        assert server.id is not None
        return server.id

    server_id = await _db(session, _add)
    await _commit(session)
    # Discovery failures are reported on the server (last_error), not as a failed request:
    # the server stays registered and can be refreshed once it is up.
    await _gateway(state).refresh_server(server_id)

    def _public(s: Session) -> McpServerPublic:
        s.expire_all()  # discovery wrote the tools and the server's state in its own session
        return ToolRegistryService.public(_server_by_id(s, server_id))

    return await _db(session, _public)


def _server_by_id(session: Session, server_id: int) -> McpServer:
    server = repo.get_server(session, server_id)
    if server is None:
        raise NotFoundError(f"MCP server {server_id} was removed")
    return server


@router.get(
    "/orgs/{org_id}/tools/servers",
    response_model=list[McpServerPublic],
    openapi_extra=auth("viewer"),
)
async def list_servers(
    org_id: str, principal: PrincipalDep, session: SessionDep
) -> list[McpServerPublic]:
    principal.require("viewer", org_id)
    return await _db(
        session, lambda s: [ToolRegistryService.public(x) for x in repo.list_servers(s, org_id)]
    )


@router.get(
    "/orgs/{org_id}/tools/servers/{name}",
    response_model=McpServerPublic,
    openapi_extra=auth("viewer"),
)
async def get_server(
    org_id: str, name: str, principal: PrincipalDep, session: SessionDep, state: StateDep
) -> McpServerPublic:
    principal.require("viewer", org_id)
    return await _db(
        session,
        lambda s: ToolRegistryService.public(_registry(state, s).require_server(org_id, name)),
    )


@router.delete(
    "/orgs/{org_id}/tools/servers/{name}",
    response_model=McpServerPublic,
    openapi_extra=auth("admin"),
)
async def remove_server(
    org_id: str, name: str, principal: PrincipalDep, session: SessionDep, state: StateDep
) -> McpServerPublic:
    principal.require("admin", org_id)

    def _remove(session: Session) -> McpServerPublic:
        server = _registry(state, session).require_server(org_id, name)
        public = ToolRegistryService.public(server)
        _registry(state, session).remove_server(org_id, name, principal.actor)
        return public

    public = await _db(session, _remove)
    await _commit(session)
    await _gateway(state).forget_server(public.id)
    return public


@router.post(
    "/orgs/{org_id}/tools/servers/{name}/refresh",
    response_model=RefreshReport,
    openapi_extra=auth("admin"),
)
async def refresh_server(
    org_id: str, name: str, principal: PrincipalDep, session: SessionDep, state: StateDep
) -> RefreshReport:
    """Re-read the server's tool list now (it is also re-read on a schedule)."""
    principal.require("admin", org_id)
    server_id = await _db(session, lambda s: _registry(state, s).require_server(org_id, name).id)
    assert server_id is not None
    report = await _gateway(state).refresh_server(server_id)
    if report is None:
        raise NotFoundError(f"MCP server '{name}' was removed")
    return report


# -- tools ----------------------------------------------------------------------------------


@router.get("/orgs/{org_id}/tools", response_model=list[ToolPublic], openapi_extra=auth("viewer"))
async def list_org_tools(
    org_id: str,
    principal: PrincipalDep,
    session: SessionDep,
    state: StateDep,
    agent_id: str | None = Query(default=None, description="Mark the tools enabled on it"),
) -> list[ToolPublic]:
    """Every tool the organization's servers offer, under the name it would be exposed as."""
    principal.require("viewer", org_id)
    return await _db(session, lambda s: _registry(state, s).list_org_tools(org_id, agent_id))


@router.get(
    "/agents/{agent_id}/tools", response_model=list[AgentToolPublic], openapi_extra=auth("viewer")
)
async def list_agent_tools(
    agent_id: str,
    principal: PrincipalDep,
    session: SessionDep,
    tenancy: TenancyDep,
    state: StateDep,
) -> list[AgentToolPublic]:
    def _list(session: Session) -> list[AgentToolPublic]:
        principal.require("viewer", tenancy.require_agent(agent_id).org_id)
        return _registry(state, session).agent_tools_public(agent_id)

    return await _db(session, _list)


@router.put(
    "/agents/{agent_id}/tools/{ref:path}",
    response_model=AgentToolPublic,
    responses=error_responses(409),
    openapi_extra=auth("release"),
)
async def enable_tool(
    agent_id: str,
    ref: str,
    body: ToolEnable,
    principal: PrincipalDep,
    session: SessionDep,
    tenancy: TenancyDep,
    state: StateDep,
) -> AgentToolPublic:
    """Enable a tool (``<server>/<tool>`` or its exposed name) on the agent, with optional
    per-tool overrides. Re-enabling updates the overrides."""

    def _enable(session: Session) -> str:
        agent = tenancy.require_agent(agent_id)
        principal.require("release", agent.org_id)
        return _registry(state, session).enable_tool(agent, ref, body, principal.actor).exposed_name

    name = await _db(session, _enable)
    await _commit(session)
    _gateway(state).invalidate(agent_id)
    tools = await _db(session, lambda s: _registry(state, s).agent_tools_public(agent_id))
    return next(t for t in tools if t.name == name)


@router.delete(
    "/agents/{agent_id}/tools/{ref:path}",
    responses=error_responses(409),
    openapi_extra=auth("release"),
)
async def disable_tool(
    agent_id: str,
    ref: str,
    principal: PrincipalDep,
    session: SessionDep,
    tenancy: TenancyDep,
    state: StateDep,
) -> dict[str, str]:
    def _disable(session: Session) -> dict[str, str]:
        agent = tenancy.require_agent(agent_id)
        principal.require("release", agent.org_id)
        row = _registry(state, session).disable_tool(agent, ref, principal.actor)
        return {"agent_id": agent_id, "name": row.exposed_name, "status": "disabled"}

    disabled = await _db(session, _disable)
    await _commit(session)
    _gateway(state).invalidate(agent_id)
    return disabled


@router.post(
    "/agents/{agent_id}/tools/{name}/call",
    response_model=ToolCallResponse,
    openapi_extra=auth("release"),
)
async def call_tool(
    agent_id: str,
    name: str,
    body: ToolCallRequest,
    principal: PrincipalDep,
    session: SessionDep,
    tenancy: TenancyDep,
    state: StateDep,
) -> ToolCallResponse:
    """Call one of the agent's gateway tools, exactly as a live call would (deadline, limits,
    breaker, idempotency), and record it on the trace (platform ``api``) and audit log."""
    org_id = await _db(session, lambda _s: tenancy.require_agent(agent_id).org_id)
    principal.require("release", org_id)
    if name in BUILTIN_TOOLS:
        raise InvalidInputError(
            f"'{name}' is a built-in; it needs a live call's caller (use the MCP endpoint)"
        )
    call_id = body.call_id
    result = await _gateway(state).call(
        ToolInvocationRequest(
            org_id=org_id,
            agent_id=agent_id,
            platform="api",
            call_id=call_id,
            # Without an explicit id each request is its own tool call (never deduplicated).
            tool_call_id=body.tool_call_id or uuid.uuid4().hex,
            name=name,
            arguments=body.arguments,
            actor=principal.actor,
        )
    )
    if result is None:
        raise NotFoundError(
            f"agent '{agent_id}' has no enabled tool '{name}'; see GET /v1/agents/{agent_id}/tools"
        )
    await _db(session, lambda s: state.answering.recorder.record_tool_results(s, [result]))
    record = result.record
    return ToolCallResponse(
        tool=record.tool,
        status=record.status,
        result=result.outcome.result,
        error=result.outcome.error,
        latency_ms=round(record.latency_ms, 2),
        attempts=record.attempts,
        breaker=record.breaker,
        duplicate=record.duplicate,
    )


# -- status and metrics ---------------------------------------------------------------------


@router.get("/orgs/{org_id}/tools/status", openapi_extra=auth("viewer"))
async def tools_status(org_id: str, principal: PrincipalDep, state: StateDep) -> dict[str, Any]:
    """Per server: connection, breaker state, tool list, rate-limit headroom; per tool: calls
    by outcome and latency. Counted in this API process."""
    principal.require("viewer", org_id)
    return await _gateway(state).status(org_id)


@router.get(
    "/orgs/{org_id}/tools/metrics", response_class=PlainTextResponse, openapi_extra=auth("viewer")
)
async def tools_metrics(org_id: str, principal: PrincipalDep, state: StateDep) -> str:
    """The same figures in Prometheus text format."""
    principal.require("viewer", org_id)
    gateway = _gateway(state)
    status_ = await gateway.status(org_id)
    return render_prometheus(org_id, gateway.metrics, gateway.breakers_by_name(status_))


# -- Backline as an MCP server --------------------------------------------------------------


def _authenticate(state: AppState, agent_id: str, token: str | None) -> str:
    """The audit actor for a bearer token on the agent's MCP endpoint, or an AppError."""
    agent = state.agents.get(agent_id)
    if agent is None:
        raise NotFoundError(f"agent '{agent_id}' does not exist")
    if not token:
        raise AuthenticationError(
            "missing bearer token: send 'Authorization: Bearer <org API key with the release "
            "scope, or the agent's tool credential>'"
        )
    for platform, creds in agent.credentials.items():
        for cred in creds:
            if cred.kind in AGENT_TOOL_CREDENTIALS and constant_time_equals(cred.secret, token):
                return f"agent:{agent_id}/{platform}-{cred.kind}"
    s = state.settings
    # A plain ASGI route (below) has no FastAPI dependencies, so no request session: one read.
    with Session(state.engine) as session:
        principal = TenancyService(
            session, s.secret_key.get_secret_value(), s.admin_token.get_secret_value()
        ).authenticate(token)
    principal.require("release", agent.org_id)
    return principal.actor


class McpHttpEndpoint:
    """ASGI app at ``/v1/agents/{agent_id}/mcp``: authenticate, then hand to the MCP SDK."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state: AppState = scope["app"].state.backline
        endpoint = state.mcp_endpoint
        agent_id = str(scope.get("path_params", {}).get("agent_id", ""))
        header = Headers(scope=scope).get("authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else None
        try:
            if endpoint is None:
                raise ToolGatewayNotRunningError("the MCP endpoint is not running in this process")
            actor = await run_in_threadpool(_authenticate, state, agent_id, token)
        except AppError as exc:
            headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
            response = JSONResponse(
                error_body(type(exc).__name__, exc.detail),
                status_code=exc.status_code,
                headers=headers,
            )
            await response(scope, receive, send)
            return
        await endpoint.handle(scope, receive, send, agent_id=agent_id, actor=actor)


def mount_endpoint(app: FastAPI) -> None:
    """Serve every agent's tools as one MCP endpoint (streamable HTTP)."""
    # A plain ASGI route (not an APIRoute): the MCP SDK answers the HTTP exchange itself.
    app.router.routes.append(Route(MCP_PATH, endpoint=McpHttpEndpoint(), include_in_schema=False))
