"""The tool gateway: a platform's tool call in, an MCP ``tools/call`` out, an answer the agent
can voice back, always inside the platform's deadline.

Per call: look up the agent's enabled tool (cached, refreshed in the background), fill in a
gateway-derived ``idempotency_key`` when the tool's schema has one, validate the arguments
against the tool's JSON schema (a per-call error when they do not fit), deduplicate
side-effecting calls through the idempotency ledger, apply the per-tool and per-organization
rate limits, ask the server's circuit breaker, then call through the pooled MCP client with
retries and backoff where they are safe. The deadline is the tool's timeout, capped at the
platform's own deadline minus ``SAFETY_MARGIN_S``; past it the caller hears the fallback.
Every call ends in a ``GatewayResult``: the outcome and a record for the call's trace and the
audit log (written by the caller, in its own unit of work).

Retry ownership: a request that never reached the server (no connection) may be re-sent for
any tool; one that may have reached it is re-sent only for idempotent tools (the agent's
override, else the MCP ``readOnlyHint``/``idempotentHint``). A platform's own retry of a
side-effecting call (same call and tool call id, same arguments) is answered from the ledger:
the tool runs once per idempotency key, across processes (the key is unique in the database),
and a concurrent duplicate waits for the first outcome.

Breakers, rate limits and metrics are per process. This module never logs arguments or results
(they may hold caller details) and never raises for a caller's input.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from core.db import session_scope
from core.tools import repository as repo
from core.tools.breaker import CircuitBreaker
from core.tools.builtins import ToolOutcome
from core.tools.metrics import ToolMetrics
from core.tools.ports import (
    McpCallTimeoutError,
    McpClient,
    McpConnectionLostError,
    McpError,
    McpMalformedResultError,
    McpRejectedError,
    McpUnavailableError,
)
from core.tools.ratelimit import RateLimitPolicy
from core.tools.results import (
    IN_PROGRESS,
    RATE_LIMITED,
    argument_error,
    compile_validator,
    fallback_message,
    to_outcome,
    unavailable_tool,
)
from core.tools.schemas import CallStatus, GatewayResult, RefreshReport, ToolCallRecord
from core.tools.service import (
    IDEMPOTENCY_PARAM,
    ResolvedToolConfig,
    ToolRegistryService,
    wants_idempotency_key,
)

log = logging.getLogger("backline.tools")

# Time kept inside the platform's deadline for our own reply and the network back.
SAFETY_MARGIN_S = 1.5
MIN_DEADLINE_S = 0.5
# Enabled tools are re-read this often; a stale entry is served while it reloads.
RESOLVE_TTL_S = 5.0
BACKOFF_BASE_S = 0.05
BACKOFF_MAX_S = 1.0
MIN_ATTEMPT_S = 0.05
LEDGER_POLL_S = 0.05
DISCOVERY_TIMEOUT_S = 15.0
WARM_UP_CONCURRENCY = 4


@dataclass(frozen=True)
class ToolInvocationRequest:
    """One tool call as the gateway sees it, whichever platform or client sent it."""

    org_id: str
    agent_id: str
    platform: str
    call_id: str | None
    tool_call_id: str
    name: str
    arguments: dict[str, Any]
    budget_s: float | None = None  # the platform's own deadline for a tool answer
    caller_hash: str | None = None
    actor: str | None = None


@dataclass(frozen=True)
class _GatewayTool:
    config: ResolvedToolConfig
    validator: Any
    inject_key: bool


@dataclass(frozen=True)
class _Attempts:
    status: CallStatus
    outcome: ToolOutcome
    attempts: int
    sent: bool  # the request may have reached the server


def ledger_key(req: ToolInvocationRequest) -> str:
    """The idempotency key of a call: a retry of the same tool call hashes the same (Retell
    reuses one tool call id per function and call, so the arguments are part of it)."""
    canonical = json.dumps(req.arguments, sort_keys=True, separators=(",", ":"), default=str)
    material = "\x1f".join(
        [
            req.org_id,
            req.agent_id,
            req.platform,
            req.call_id or "",
            req.tool_call_id,
            req.name,
            canonical,
        ]
    )
    return hashlib.sha256(material.encode()).hexdigest()


class ToolGateway:
    def __init__(
        self,
        engine: Engine,
        client: McpClient,
        secret_key: str,
        *,
        org_calls_per_minute: int = 3000,
        clock: Callable[[], float] = time.monotonic,
        resolve_ttl_s: float = RESOLVE_TTL_S,
    ) -> None:
        self._engine = engine
        self._client = client
        self._secret_key = secret_key
        self._clock = clock
        self._ttl = resolve_ttl_s
        self.limits = RateLimitPolicy(org_calls_per_minute)
        self.metrics = ToolMetrics()
        self._breakers: dict[int, CircuitBreaker] = {}
        self._cache: dict[str, tuple[float, dict[str, _GatewayTool]]] = {}
        self._reloading: dict[str, asyncio.Task[dict[str, _GatewayTool]]] = {}
        self._validators: dict[str, Any] = {}
        self._inflight: dict[str, asyncio.Future[tuple[ToolOutcome, CallStatus]]] = {}

    @property
    def client(self) -> McpClient:
        return self._client

    # -- the enabled tools of an agent --------------------------------------------------------
    def _load(self, agent_id: str) -> list[ResolvedToolConfig]:
        with Session(self._engine) as session:
            return ToolRegistryService(session, self._secret_key).resolve_agent_tools(agent_id)

    def _validator(self, schema: dict[str, Any]) -> Any:
        fingerprint = json.dumps(schema, sort_keys=True, default=str)
        if fingerprint not in self._validators:
            self._validators[fingerprint] = compile_validator(schema)
        return self._validators[fingerprint]

    async def _reload(self, agent_id: str) -> dict[str, _GatewayTool]:
        loaded_at = self._clock()
        configs = await asyncio.to_thread(self._load, agent_id)
        tools = {
            c.exposed_name: _GatewayTool(
                config=c,
                validator=self._validator(c.tool.input_schema) if c.available else None,
                inject_key=wants_idempotency_key(c.tool.input_schema),
            )
            for c in configs
        }
        self._cache[agent_id] = (loaded_at, tools)
        return tools

    def _start_reload(self, agent_id: str) -> asyncio.Task[dict[str, _GatewayTool]]:
        task = self._reloading.get(agent_id)
        if task is None or task.done():
            task = asyncio.ensure_future(self._reload(agent_id))
            self._reloading[agent_id] = task
            task.add_done_callback(lambda t: None if t.cancelled() else t.exception())
        return task

    async def _tools_for(self, agent_id: str) -> dict[str, _GatewayTool]:
        hit = self._cache.get(agent_id)
        if hit is None:
            return await self._start_reload(agent_id)
        if self._clock() - hit[0] >= self._ttl:
            # Stale-while-revalidate: the hot path never waits for the periodic re-read.
            self._start_reload(agent_id)
        return hit[1]

    async def enabled_tools(self, agent_id: str) -> list[ResolvedToolConfig]:
        return [t.config for t in (await self._tools_for(agent_id)).values()]

    def invalidate(self, agent_id: str | None = None) -> None:
        """Forget cached tool lists (after enabling, disabling or refreshing)."""
        if agent_id is None:
            self._cache.clear()
        else:
            self._cache.pop(agent_id, None)

    def _breaker(self, config: ResolvedToolConfig) -> CircuitBreaker:
        server_id = config.server.server_id
        breaker = self._breakers.get(server_id)
        if breaker is None:
            breaker = self._breakers[server_id] = CircuitBreaker(config.breaker, self._clock)
        elif breaker.policy != config.breaker:
            breaker.policy = config.breaker
        return breaker

    def breaker_snapshot(self, server_id: int) -> dict[str, Any] | None:
        breaker = self._breakers.get(server_id)
        return breaker.snapshot() if breaker is not None else None

    # -- one call -----------------------------------------------------------------------------
    async def call(self, req: ToolInvocationRequest) -> GatewayResult | None:
        """Run one tool call; None when the agent has no gateway tool by that name."""
        t0 = time.perf_counter()
        started = self._clock()
        gateway_tool = (await self._tools_for(req.agent_id)).get(req.name)
        if gateway_tool is None:
            return None
        cfg = gateway_tool.config
        deadline_s = cfg.timeout_s
        if req.budget_s is not None:
            deadline_s = max(MIN_DEADLINE_S, min(cfg.timeout_s, req.budget_s - SAFETY_MARGIN_S))
        deadline = started + deadline_s
        arguments = dict(req.arguments)

        def finish(
            status: CallStatus,
            outcome: ToolOutcome,
            attempts: int = 0,
            *,
            duplicate: bool = False,
        ) -> GatewayResult:
            latency_ms = (time.perf_counter() - t0) * 1000.0
            self.metrics.observe(cfg.org_id, cfg.exposed_name, status, latency_ms)
            breaker = self._breakers.get(cfg.server.server_id)
            return GatewayResult(
                outcome=outcome,
                record=ToolCallRecord(
                    org_id=cfg.org_id,
                    agent_id=cfg.agent_id,
                    platform=req.platform,
                    call_id=req.call_id,
                    caller_hash=req.caller_hash,
                    actor=req.actor or f"agent:{cfg.agent_id}",
                    tool=cfg.exposed_name,
                    server=cfg.server_name,
                    server_tool=cfg.tool.name,
                    arguments=arguments,
                    status=status,
                    outcome=outcome,
                    latency_ms=latency_ms,
                    attempts=attempts,
                    breaker=breaker.state if breaker is not None else None,
                    duplicate=duplicate,
                    read_only=cfg.tool.read_only is True,
                ),
            )

        if not cfg.available:
            return finish("unavailable", ToolOutcome(error=unavailable_tool(req.name)))
        key = ledger_key(req) if req.call_id is not None else None
        if gateway_tool.inject_key and IDEMPOTENCY_PARAM not in arguments:
            # The server's own idempotency key follows the platform's retry key, so even a
            # retry the ledger cannot see (another deployment) is deduplicated downstream.
            arguments[IDEMPOTENCY_PARAM] = key or uuid.uuid4().hex
        problem = argument_error(req.name, gateway_tool.validator, arguments)
        if problem is not None:
            return finish("invalid_arguments", ToolOutcome(error=problem))
        breaker = self._breaker(cfg)

        async def run() -> _Attempts:
            # Limits count calls that would reach the server: a retry answered from the
            # ledger costs nothing.
            limited = self.limits.acquire(
                cfg.org_id, f"{cfg.server.server_id}:{cfg.tool.name}", cfg.rate_limit_per_minute
            )
            if limited is not None:
                return _Attempts("rate_limited", ToolOutcome(error=RATE_LIMITED), 0, False)
            return await self._attempts(cfg, arguments, breaker, deadline)

        if cfg.idempotent or key is None:
            done = await run()
            return finish(done.status, done.outcome, done.attempts)
        return await self._call_once(key, req, cfg, run, deadline, finish)

    async def _call_once(
        self,
        key: str,
        req: ToolInvocationRequest,
        cfg: ResolvedToolConfig,
        run: Callable[[], Awaitable[_Attempts]],
        deadline: float,
        finish: Callable[..., GatewayResult],
    ) -> GatewayResult:
        """A side-effecting call, run at most once per idempotency key."""
        first = self._inflight.get(key)
        if first is not None:
            try:
                outcome, _ = await asyncio.wait_for(
                    asyncio.shield(first), max(0.0, deadline - self._clock())
                )
            except TimeoutError:
                return finish("in_progress", ToolOutcome(error=IN_PROGRESS), duplicate=True)
            except asyncio.CancelledError:
                if not first.cancelled():
                    raise  # this request itself was cancelled
                # The first run was cancelled mid-call: whether the tool ran is unknown.
                return finish("in_progress", ToolOutcome(error=IN_PROGRESS), duplicate=True)
            return finish("duplicate", outcome, duplicate=True)
        mine: asyncio.Future[tuple[ToolOutcome, CallStatus]] = (
            asyncio.get_running_loop().create_future()
        )
        self._inflight[key] = mine
        try:
            claimed, stored = await asyncio.to_thread(self._claim, key, req, cfg)
            if not claimed:
                earlier = stored or await self._await_other(key, deadline)
                result = (
                    finish("duplicate", earlier, duplicate=True)
                    if earlier is not None
                    else finish("in_progress", ToolOutcome(error=IN_PROGRESS), duplicate=True)
                )
            else:
                done = await run()
                result = finish(done.status, done.outcome, done.attempts)
                if done.sent:
                    await asyncio.to_thread(
                        self._finish_claim, key, done.outcome, done.status, done.attempts
                    )
                else:
                    # Refused before sending (rate limit, breaker open, no connection): the
                    # tool did not run, so a later retry of this call may run it.
                    await asyncio.to_thread(self._release_claim, key)
            mine.set_result((result.outcome, result.record.status))
            return result
        finally:
            if not mine.done():
                mine.cancel()
            self._inflight.pop(key, None)

    def _claim(
        self, key: str, req: ToolInvocationRequest, cfg: ResolvedToolConfig
    ) -> tuple[bool, ToolOutcome | None]:
        with session_scope(self._engine) as session:
            created, row = ToolRegistryService(session).claim_invocation(
                key=key,
                org_id=cfg.org_id,
                agent_id=cfg.agent_id,
                platform=req.platform,
                call_id=req.call_id or "",
                tool_call_id=req.tool_call_id,
                tool=cfg.exposed_name,
            )
            if created or row.status != "done":
                return created, None
            return False, ToolOutcome(result=row.result, error=row.error)

    def _finish_claim(self, key: str, outcome: ToolOutcome, status: str, attempts: int) -> None:
        with session_scope(self._engine) as session:
            ToolRegistryService(session).finish_invocation(key, outcome, status, attempts)

    def _release_claim(self, key: str) -> None:
        with session_scope(self._engine) as session:
            ToolRegistryService(session).release_invocation(key)

    def _stored_outcome(self, key: str) -> ToolOutcome | None:
        with Session(self._engine) as session:
            row = repo.get_invocation(session, key)
            if row is None or row.status != "done":
                return None
            return ToolOutcome(result=row.result, error=row.error)

    async def _await_other(self, key: str, deadline: float) -> ToolOutcome | None:
        """Another process runs this call: wait (polling the ledger) for its outcome."""
        while self._clock() < deadline:
            await asyncio.sleep(min(LEDGER_POLL_S, max(0.0, deadline - self._clock())))
            outcome = await asyncio.to_thread(self._stored_outcome, key)
            if outcome is not None:
                return outcome
        return None

    async def _attempts(
        self,
        cfg: ResolvedToolConfig,
        arguments: dict[str, Any],
        breaker: CircuitBreaker,
        deadline: float,
    ) -> _Attempts:
        fallback = ToolOutcome(error=fallback_message(cfg.display_name, cfg.fallback_message))
        attempts = 0
        sent = False
        status: CallStatus = "unavailable"
        while True:
            remaining = deadline - self._clock()
            if remaining <= 0:
                return _Attempts("timeout", fallback, attempts, sent)
            if not breaker.allow():
                return _Attempts(
                    "breaker_open" if attempts == 0 else status, fallback, attempts, sent
                )
            attempts += 1
            retryable = False
            try:
                raw = await self._client.call_tool(cfg.server, cfg.tool.name, arguments, remaining)
            except McpUnavailableError:
                breaker.record_failure()
                status, retryable = "unavailable", True
            except McpConnectionLostError:
                sent = True
                breaker.record_failure()
                status, retryable = "unavailable", cfg.idempotent
            except McpCallTimeoutError:
                breaker.record_failure()
                return _Attempts("timeout", fallback, attempts, True)
            except McpMalformedResultError:
                breaker.record_failure()
                return _Attempts("malformed_result", fallback, attempts, True)
            except McpRejectedError as exc:
                # The server is up and said no (unknown tool, invalid params).
                breaker.record_success()
                detail = f"{cfg.display_name} rejected the request: {exc}"
                return _Attempts("tool_error", ToolOutcome(error=detail), attempts, True)
            except BaseException:
                breaker.release()
                raise
            else:
                breaker.record_success()
                return _Attempts(
                    "tool_error" if raw.is_error else "ok", to_outcome(raw), attempts, True
                )
            if not retryable or attempts > cfg.max_retries:
                return _Attempts(status, fallback, attempts, sent)
            backoff = min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2 ** (attempts - 1))
            backoff *= 0.5 + random.random() / 2  # jitter: replicas must not retry in lockstep
            if deadline - self._clock() < backoff + MIN_ATTEMPT_S:
                return _Attempts(status, fallback, attempts, sent)
            await asyncio.sleep(backoff)

    # -- discovery ------------------------------------------------------------------------------
    async def refresh_server(self, server_id: int) -> RefreshReport | None:
        """``tools/list`` from one server into its cached tool list."""

        def _spec() -> Any:
            with Session(self._engine) as session:
                server = repo.get_server(session, server_id)
                if server is None:
                    return None
                return ToolRegistryService(session, self._secret_key).server_spec(server)

        spec = await asyncio.to_thread(_spec)
        if spec is None:
            return None
        tools = None
        error: str | None = None
        try:
            tools = await self._client.list_tools(spec, DISCOVERY_TIMEOUT_S)
        except McpError as exc:
            error = f"{type(exc).__name__}: {exc}"

        def _store() -> None:
            with session_scope(self._engine) as session:
                ToolRegistryService(session).store_discovery(server_id, tools, error)

        await asyncio.to_thread(_store)
        self.invalidate()
        return RefreshReport(server=spec.name, tools=[t.name for t in tools or []], error=error)

    async def refresh_all(self, *, only_enabled: bool = False) -> list[RefreshReport]:
        """Refresh every registered server (or those with a tool enabled somewhere)."""

        def _ids() -> list[int]:
            with Session(self._engine) as session:
                servers = (
                    repo.list_servers_with_enabled_tools(session)
                    if only_enabled
                    else repo.list_servers(session)
                )
                return [s.id for s in servers if s.id is not None]

        gate = asyncio.Semaphore(WARM_UP_CONCURRENCY)

        async def _one(server_id: int) -> RefreshReport | None:
            async with gate:
                try:
                    return await self.refresh_server(server_id)
                except Exception:
                    log.exception("refreshing MCP server %s failed", server_id)
                    return None

        reports = await asyncio.gather(*(_one(i) for i in await asyncio.to_thread(_ids)))
        return [r for r in reports if r is not None]

    async def warm_up(self) -> None:
        """Open the pooled sessions of every server an agent uses (and refresh their tools),
        so the first live call does not pay for starting a server."""
        reports = await self.refresh_all(only_enabled=True)
        for report in reports:
            if report.error:
                log.warning("MCP server %s is not reachable yet: %s", report.server, report.error)

    async def forget_server(self, server_id: int) -> None:
        """A server was removed: close its session and drop its breaker."""
        self._breakers.pop(server_id, None)
        self.invalidate()
        with contextlib.suppress(Exception):
            await self._client.disconnect(server_id)

    def purge_ledger(self) -> int:
        with session_scope(self._engine) as session:
            return ToolRegistryService(session).purge_invocations()

    # -- status ---------------------------------------------------------------------------------
    async def status(self, org_id: str) -> dict[str, Any]:
        """Breakers, connections, rate limits and metrics of one organization's tools."""

        def _load() -> list[tuple[int, str, str, int, list[str], Any, str | None, Any]]:
            with Session(self._engine) as session:
                rows = []
                for s in repo.list_servers(session, org_id):
                    assert s.id is not None
                    rows.append(
                        (
                            s.id,
                            s.name,
                            s.transport,
                            s.rate_limit_per_minute,
                            [str(t.get("name")) for t in s.tools or []],
                            s.tools_refreshed_at,
                            s.last_error,
                            (s.breaker_failures, s.breaker_error_rate, s.breaker_cooldown_s),
                        )
                    )
                return rows

        servers = []
        for (
            sid,
            name,
            transport,
            per_minute,
            tools,
            refreshed,
            error,
            policy,
        ) in await asyncio.to_thread(_load):
            breaker = self.breaker_snapshot(sid) or {"state": "closed", "opens_total": 0}
            servers.append(
                {
                    "name": name,
                    "transport": transport,
                    "connected": self._client.is_connected(sid),
                    "tools": tools,
                    "tools_refreshed_at": refreshed,
                    "last_error": error,
                    "breaker": breaker,
                    "breaker_policy": {
                        "failures": policy[0],
                        "error_rate": policy[1],
                        "cooldown_s": policy[2],
                    },
                    "rate_limits": {
                        tool: self.limits.usage(org_id, f"{sid}:{tool}", per_minute)
                        for tool in tools
                    },
                }
            )
        return {
            "org_id": org_id,
            "servers": servers,
            "org_rate_limit": self.limits.usage(org_id),
            "metrics": self.metrics.for_org(org_id),
        }

    def breakers_by_name(self, status: dict[str, Any]) -> dict[str, dict[str, Any]]:
        return {s["name"]: s["breaker"] for s in status["servers"]}

    async def aclose(self) -> None:
        for task in self._reloading.values():
            task.cancel()
        await self._client.aclose()
