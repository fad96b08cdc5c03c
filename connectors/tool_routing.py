"""Platform tool calls through the MCP tool gateway (the answering service's ``ToolRouter``), and
an agent's tools on Backline's own MCP endpoint (``BacklineTools``, its ``ToolProvider``).

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
from collections.abc import Callable
from typing import Any

from anyio import to_thread

from connectors.registry import PLATFORMS
from core.agent.llm import ToolSpec
from core.agent.runtime import builtin_tool_specs, merge_tools, version_tool_specs
from core.calls.answering import CallKnowledge
from core.calls.answering_ports import CallerMemory, EventRecorder, KnowledgeSearch
from core.calls.events import ToolCallBatch
from core.prompts.serving import ServedPrompt
from core.tenancy.agent_info import AgentInfo
from core.tools.builtins import BUILTIN_TOOLS, MEMORY_SEARCH, ToolContext, ToolOutcome, run_builtin
from core.tools.gateway import ToolGateway, ToolInvocationRequest
from core.tools.ports import ExposedTool
from core.tools.schemas import GatewayResult, ToolCallRecord
from core.tools.service import platform_parameters

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


class GatewayToolRouter:
    """``ToolRouter`` over the process's gateway (``gateway`` answers None until it is built)."""

    def __init__(self, gateway: Callable[[], ToolGateway | None], recorder: EventRecorder) -> None:
        self._gateway = gateway
        self._recorder = recorder

    async def route(self, agent: AgentInfo, batch: ToolCallBatch) -> dict[int, GatewayResult]:
        """Run a batch's non-built-in tool calls through the gateway, concurrently; keyed by
        the call's position in the batch. Calls the agent has no gateway tool for are left
        out."""
        gateway = self._gateway()
        pending = [(i, tc) for i, tc in enumerate(batch.calls) if tc.name not in BUILTIN_TOOLS]
        if gateway is None or not pending:
            return {}

        async def one(i: int) -> GatewayResult | None:
            tc = batch.calls[i]
            ref = tc.call or batch.call
            req = ToolInvocationRequest(
                org_id=agent.org_id,
                agent_id=agent.id,
                platform=ref.platform if ref is not None else "unknown",
                call_id=ref.call_id if ref is not None else None,
                tool_call_id=tc.tool_call_id,
                name=tc.name,
                arguments=tc.arguments,
                budget_s=tool_budget_s(ref.platform if ref is not None else ""),
                caller_hash=self._recorder.caller_hash(ref.caller_number if ref else None),
            )
            try:
                return await gateway.call(req)
            except Exception:
                # A bug or a database outage must still answer the platform with HTTP 200.
                log.exception("tool gateway failed on %s", tc.name)
                return failed(req)

        results = await asyncio.gather(*(one(i) for i, _ in pending))
        return {i: r for (i, _), r in zip(pending, results, strict=True) if r is not None}


def failed(req: ToolInvocationRequest) -> GatewayResult:
    """The result of a call the gateway itself failed on (never the tool's own error)."""
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

    def __init__(
        self,
        *,
        agents: Callable[[str], AgentInfo | None],
        gateway: Callable[[], ToolGateway | None],
        memory: CallerMemory,
        knowledge: KnowledgeSearch,
        recorder: EventRecorder,
    ) -> None:
        self._agents = agents
        self._gateway = gateway
        self._memory = memory
        self._knowledge = knowledge
        self._recorder = recorder

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
        gateway = self._gateway()
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
        agent = await to_thread.run_sync(self._agents, agent_id)
        if agent is None:
            return ToolOutcome(error=f"agent '{agent_id}' does not exist")
        if name in BUILTIN_TOOLS:
            return await to_thread.run_sync(self._builtin, agent, name, arguments)
        gateway = self._gateway()
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
                result = failed(req)
        if result is None:
            return ToolOutcome(error=f"Unknown tool '{name}': this agent has no such tool.")
        routed = result

        def _record() -> None:
            with self._recorder.unit() as session:
                self._recorder.record_tool_results(session, [routed])
                session.commit()

        await to_thread.run_sync(_record)
        return result.outcome

    def _builtin(self, agent: AgentInfo, name: str, arguments: dict[str, Any]) -> ToolOutcome:
        args = dict(arguments)
        number = args.pop(CALLER_NUMBER_ARG, None)
        hashed = self._recorder.caller_hash(str(number)) if number else None
        with self._recorder.unit() as session:
            memory = self._memory.service(session)
            knowledge = CallKnowledge(self._knowledge, session, agent)
            ctx = ToolContext(agent.org_id, agent.id, hashed)
            outcome = run_builtin(name, args, ctx, memory, knowledge)
            session.commit()
        return outcome or ToolOutcome(error=f"Unknown tool '{name}'.")


class GatewayToolCatalog:
    """``ToolCatalog`` (``core.agent.runtime``) over the process's gateway: the built-ins, the
    agent's enabled (and available) gateway tools and, with ``served``, the version's declared
    tools."""

    def __init__(self, gateway: Callable[[], ToolGateway | None]) -> None:
        self._gateway = gateway

    async def tools_for(
        self, agent: AgentInfo, served: ServedPrompt | None = None
    ) -> list[ToolSpec]:
        tools = builtin_tool_specs()
        gateway = self._gateway()
        if gateway is not None:
            for cfg in await gateway.enabled_tools(agent.id):
                if not cfg.available:
                    continue
                tools.append(
                    ToolSpec(
                        cfg.exposed_name,
                        cfg.tool.description or cfg.tool.title or cfg.exposed_name,
                        platform_parameters(cfg.tool.input_schema),
                    )
                )
        return merge_tools(tools, version_tool_specs(served))
