"""The API's side of the tool gateway: building it in the lifespan, routing platform tool calls
from the edge to it, and serving an agent's tools on Backline's own MCP endpoint.

Deadlines: a platform waits a bounded time for a tool answer (the timeouts our exported tool
definitions set: VAPI 15 s of its 20 s default, Retell 10 s of its 2 min default; Bland is
configurable and gets the same 10 s), each platform's ``tool_deadline_s``. The gateway
answers ``SAFETY_MARGIN_S`` inside that, with a fallback sentence if the tool has not answered
by then, so a caller never hears a platform timeout. This module never logs tool arguments or
results.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import AsyncExitStack
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from api import knowledge_runtime
from api.state import AgentInfo, AppState
from connectors.mcp.endpoint import McpEndpoint
from connectors.mcp.pool import McpClientPool
from connectors.registry import PLATFORMS
from core.calls.events import ToolCallBatch
from core.db import session_scope
from core.memory.service import MemoryService
from core.pii.phone import caller_hash
from core.tools.builtins import BUILTIN_TOOLS, MEMORY_SEARCH, ToolContext, ToolOutcome, run_builtin
from core.tools.gateway import ToolGateway, ToolInvocationRequest
from core.tools.ports import ExposedTool
from core.tools.schemas import GatewayResult, ToolCallRecord
from core.tools.service import platform_parameters, record_tool_call

log = logging.getLogger("backline.tools")

# A call whose platform is unknown (Retell's args_at_root form) gets the tightest budget.
UNKNOWN_PLATFORM_BUDGET_S = min(p.tool_deadline_s for p in PLATFORMS.values())
CALLER_NUMBER_ARG = "caller_number"
INTERNAL_ERROR = (
    "Something went wrong on our side while running that tool; please try again in a moment."
)


def tool_budget_s(platform: str) -> float:
    """How long a tool call from ``platform`` may take before the gateway answers."""
    known = PLATFORMS.get(platform)
    return known.tool_deadline_s if known is not None else UNKNOWN_PLATFORM_BUDGET_S


def _secret(state: AppState) -> str:
    return state.settings.secret_key.get_secret_value()


async def start(state: AppState, scheduler: AsyncIOScheduler) -> AsyncExitStack:
    """Build the pool, the gateway and the MCP endpoint; closed by the returned stack."""
    stack = AsyncExitStack()
    gateway = ToolGateway(
        state.engine,
        McpClientPool(state.egress),
        _secret(state),
        org_calls_per_minute=state.settings.tools_org_calls_per_minute,
    )
    state.gateway = gateway
    stack.push_async_callback(gateway.aclose)
    endpoint = McpEndpoint(BacklineTools(state))
    await stack.enter_async_context(endpoint.running())
    state.mcp_endpoint = endpoint
    scheduler.add_job(
        gateway.refresh_all,
        "interval",
        seconds=state.settings.tools_refresh_interval_s,
        max_instances=1,
        coalesce=True,
    )
    scheduler.add_job(
        run_in_threadpool, "interval", hours=1, args=[gateway.purge_ledger], max_instances=1
    )
    # Warm the sessions of servers agents use, without holding up startup.
    warm = asyncio.create_task(gateway.warm_up(), name="mcp-warm-up")
    stack.callback(warm.cancel)
    return stack


async def route_tool_calls(
    state: AppState, agent: AgentInfo, batch: ToolCallBatch
) -> dict[int, GatewayResult]:
    """Run a batch's non-built-in tool calls through the gateway, concurrently; keyed by the
    call's position in the batch. Calls the agent has no gateway tool for are left out."""
    gateway = state.gateway
    pending = [(i, tc) for i, tc in enumerate(batch.calls) if tc.name not in BUILTIN_TOOLS]
    if gateway is None or not pending:
        return {}

    async def one(i: int) -> GatewayResult | None:
        tc = batch.calls[i]
        ref = tc.call or batch.call
        number = ref.caller_number if ref is not None else None
        req = ToolInvocationRequest(
            org_id=agent.org_id,
            agent_id=agent.id,
            platform=ref.platform if ref is not None else "unknown",
            call_id=ref.call_id if ref is not None else None,
            tool_call_id=tc.tool_call_id,
            name=tc.name,
            arguments=tc.arguments,
            budget_s=tool_budget_s(ref.platform if ref is not None else ""),
            caller_hash=caller_hash(_secret(state), number) if number else None,
        )
        try:
            return await gateway.call(req)
        except Exception:
            # A bug or a database outage must still answer the platform with HTTP 200.
            log.exception("tool gateway failed on %s", tc.name)
            return _failed(req)

    results = await asyncio.gather(*(one(i) for i, _ in pending))
    return {i: r for (i, _), r in zip(pending, results, strict=True) if r is not None}


def _failed(req: ToolInvocationRequest) -> GatewayResult:
    outcome = ToolOutcome(error=INTERNAL_ERROR)
    return GatewayResult(
        outcome=outcome,
        record=ToolCallRecord(
            org_id=req.org_id,
            agent_id=req.agent_id,
            platform=req.platform,
            call_id=req.call_id,
            caller_hash=req.caller_hash,
            actor=req.actor or f"agent:{req.agent_id}",
            tool=req.name,
            server="",
            server_tool="",
            arguments=req.arguments,
            status="unavailable",
            outcome=outcome,
            latency_ms=0.0,
            attempts=0,
            breaker=None,
            duplicate=False,
        ),
    )


def record_results(session: Session, state: AppState, results: dict[int, GatewayResult]) -> None:
    """Trace and audit records of routed calls, in the caller's unit of work."""
    for result in results.values():
        record_tool_call(session, _secret(state), result.record)


def _builtin_schema(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    schema = platform_parameters(spec["parameters"])
    if name == MEMORY_SEARCH:
        # On a platform the call carries the caller; an MCP client names them instead.
        schema["properties"][CALLER_NUMBER_ARG] = {
            "type": "string",
            "description": "The caller's phone number (E.164), whose memory to search",
        }
    return schema


class BacklineTools:
    """``ToolProvider`` for the MCP endpoint: the built-ins and the agent's gateway tools."""

    def __init__(self, state: AppState) -> None:
        self._state = state

    async def list_tools(self, agent_id: str) -> list[ExposedTool]:
        tools = [
            ExposedTool(
                name=name,
                description=str(spec["description"]),
                input_schema=_builtin_schema(name, spec),
                read_only=True,
                idempotent=True,
            )
            for name, spec in BUILTIN_TOOLS.items()
        ]
        gateway = self._state.gateway
        if gateway is not None:
            for cfg in await gateway.enabled_tools(agent_id):
                if not cfg.available:
                    continue
                tools.append(
                    ExposedTool(
                        name=cfg.exposed_name,
                        description=cfg.tool.description or cfg.tool.title or cfg.exposed_name,
                        input_schema=platform_parameters(cfg.tool.input_schema),
                        read_only=cfg.tool.read_only,
                        idempotent=cfg.idempotent,
                        destructive=cfg.tool.destructive,
                    )
                )
        return tools

    async def call_tool(
        self,
        agent_id: str,
        name: str,
        arguments: dict[str, Any],
        *,
        actor: str,
        call_id: str | None,
        tool_call_id: str,
    ) -> ToolOutcome:
        state = self._state
        agent = await run_in_threadpool(state.agents.get, agent_id)
        if agent is None:
            return ToolOutcome(error=f"agent '{agent_id}' does not exist")
        if name in BUILTIN_TOOLS:
            return await run_in_threadpool(self._builtin, agent, name, arguments)
        gateway = state.gateway
        result = None
        if gateway is not None:
            req = ToolInvocationRequest(
                org_id=agent.org_id,
                agent_id=agent.id,
                platform="mcp",
                call_id=call_id,
                tool_call_id=tool_call_id,
                name=name,
                arguments=arguments,
                actor=actor,
            )
            try:
                result = await gateway.call(req)
            except Exception:
                log.exception("tool gateway failed on %s", name)
                result = _failed(req)
        if result is None:
            return ToolOutcome(error=f"Unknown tool '{name}': this agent has no such tool.")

        def _record() -> None:
            with session_scope(state.engine) as session:
                record_results(session, state, {0: result})

        await run_in_threadpool(_record)
        return result.outcome

    def _builtin(self, agent: AgentInfo, name: str, arguments: dict[str, Any]) -> ToolOutcome:
        args = dict(arguments)
        number = args.pop(CALLER_NUMBER_ARG, None)
        hashed = caller_hash(_secret(self._state), str(number)) if number else None
        with session_scope(self._state.engine) as session:
            memory = MemoryService(session, self._state.embedder, self._state.vectors)
            knowledge = knowledge_runtime.CallKnowledge(self._state, session, agent)
            ctx = ToolContext(agent.org_id, agent.id, hashed)
            outcome = run_builtin(name, args, ctx, memory, knowledge)
        return outcome or ToolOutcome(error=f"Unknown tool '{name}'.")
