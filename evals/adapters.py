"""Adapters for the eval runner's ports (evals/ports.py) over Backline's own pieces.

* :class:`McpOutcomeChecker`: the ``outcome`` check's tool call, on the suite's sandbox MCP
  server (``tools.sandbox`` in suite.yaml: streamable HTTP ``url`` or stdio ``command``),
  through the egress guard for URLs. One short-lived session per check.
* :class:`MemorySeeder`: a scenario's ``caller.prior_calls`` written into the agent's memory of
  that caller through ``core.memory``'s service, each earlier conversation as one call whose
  summary is its text (no LLM analysis: what the agent may recall is exactly what was said).

* :class:`evals.judge.ChatModelJudge` and :class:`evals.simulator.ChatModelCaller`: the rubric
  judge and the simulated caller, over the chat model, when an LLM is configured
  (``BACKLINE_LLM_BASE_URL``); without one rubric checks are skipped and simulated scenarios are
  reported skipped. With ``deepeval=True`` (``BACKLINE_EVAL_DEEPEVAL``) and deepeval installed,
  ``evals/deepeval_engine.py``'s judge and caller serve instead; deepeval asked for but not
  installed falls back to Backline's own, with a warning.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import logging
from contextlib import AsyncExitStack
from typing import Any

import httpx2
import mcp_types
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from sqlalchemy.engine import Engine

from connectors.egress import mcp_http_client
from core.agent.llm import ChatModel, ModelSettings
from core.calls.events import Turn
from core.db import session_scope, utcnow
from core.egress import EgressPolicy
from core.memory.service import CallMemoryInput, MemoryService
from core.monitoring.judge import DEFAULT_THRESHOLD
from core.pii.phone import caller_hash, mask_number
from core.ports import Embedder, VectorStore
from core.tenancy.agent_info import AgentInfo
from evals.judge import ChatModelJudge
from evals.ports import AgentRuntime, RubricJudge, SimulatedCaller
from evals.runner import Ports
from evals.scenarios import Outcome, SandboxServer
from evals.simulator import ChatModelCaller

__all__ = ["McpOutcomeChecker", "MemorySeeder", "deepeval_missing", "eval_ports"]

log = logging.getLogger(__name__)

CLIENT_INFO = mcp_types.Implementation(name="backline-evals", version="0.1.0")


def _result_value(result: mcp_types.CallToolResult) -> Any:
    """The structured result if any, else the text content parsed as JSON when it is JSON."""
    if result.is_error:
        texts = [b.text for b in result.content if isinstance(b, mcp_types.TextContent)]
        raise RuntimeError(f"the outcome tool failed: {' '.join(texts)[:300]}")
    if result.structured_content is not None:
        return result.structured_content
    texts = [b.text for b in result.content if isinstance(b, mcp_types.TextContent)]
    text = "\n".join(texts)
    try:
        return json.loads(text)
    except ValueError:
        return text


class McpOutcomeChecker:
    """``OutcomeChecker`` over MCP: calls ``outcome.tool`` with ``outcome.args`` on ``server``."""

    def __init__(self, policy: EgressPolicy, timeout_s: float = 30.0) -> None:
        self._policy = policy
        self._timeout_s = timeout_s

    async def call(self, outcome: Outcome, server: SandboxServer | None) -> Any:
        if server is None:
            raise RuntimeError(
                f"no sandbox server for the outcome tool '{outcome.tool}': name one with "
                "server: (a key of tools: sandbox: in suite.yaml)"
            )
        async with AsyncExitStack() as stack:
            transport: Any
            if server.command:
                params = StdioServerParameters(
                    command=server.command[0],
                    args=list(server.command[1:]),
                    env=dict(server.env) or None,
                )
                transport = stdio_client(params)
            else:
                assert server.url is not None
                http = mcp_http_client(self._policy, timeout=httpx2.Timeout(self._timeout_s))
                stack.push_async_callback(http.aclose)
                transport = streamable_http_client(server.url, http_client=http)
            client = await stack.enter_async_context(
                Client(transport, client_info=CLIENT_INFO, cache=None)
            )
            result = await client.call_tool(
                outcome.tool,
                dict(outcome.args),
                read_timeout_seconds=self._timeout_s,
            )
            return _result_value(result)


class MemorySeeder:
    """``PriorCallSeeder`` through ``MemoryService.write_call_memories``."""

    def __init__(
        self, engine: Engine, secret_key: str, embedder: Embedder, vectors: VectorStore
    ) -> None:
        self._engine = engine
        self._secret_key = secret_key
        self._embedder = embedder
        self._vectors = vectors

    async def seed_prior_calls(
        self, agent: AgentInfo, number: str | None, conversations: list[list[Turn]]
    ) -> None:
        if number is None:
            raise ValueError("prior calls need the caller's number (caller: number:)")
        await asyncio.to_thread(self._seed, agent, number, conversations)

    def _seed(self, agent: AgentInfo, number: str, conversations: list[list[Turn]]) -> None:
        hashed = caller_hash(self._secret_key, number)
        memory: MemoryService | None = None
        with session_scope(self._engine) as session:
            memory = MemoryService(session, self._embedder, self._vectors)
            for i, turns in enumerate(conversations):
                memory.write_call_memories(
                    CallMemoryInput(
                        org_id=agent.org_id,
                        agent_id=agent.id,
                        caller_hash=hashed,
                        caller_display=mask_number(number),
                        platform="eval",
                        call_id=f"eval-seed-{hashed[:12]}-{i}",
                        revision=1,
                        ended_at=utcnow(),
                        summary="\n".join(f"{t.role}: {t.text}" for t in turns),
                        facts=(),
                        method="eval_seed",
                    )
                )
        memory.apply_pending_vectors()


def deepeval_missing() -> str | None:
    """Why deepeval cannot serve (None: it is importable)."""
    if importlib.util.find_spec("deepeval") is None:
        return "deepeval is not installed (pip install --no-deps -r requirements-deepeval.txt)"
    return None


def eval_ports(
    runtime: AgentRuntime,
    engine: Engine,
    secret_key: str,
    embedder: Embedder,
    vectors: VectorStore,
    policy: EgressPolicy,
    *,
    model: ChatModel | None = None,
    model_settings: ModelSettings | None = None,
    judge_threshold: float = DEFAULT_THRESHOLD,
    deepeval: bool = False,
) -> Ports:
    """The ports a run uses with Backline's own adapters around ``runtime``: memory seeding
    through core.memory, outcome checks over MCP and, given a chat ``model`` (an LLM is
    configured), the rubric judge and the simulated caller over it (deepeval's with
    ``deepeval`` when it is installed)."""
    judge: RubricJudge | None = None
    caller: SimulatedCaller | None = None
    if model is not None and model_settings is not None:
        missing = deepeval_missing() if deepeval else None
        if deepeval and missing is None:
            from evals.deepeval_engine import DeepEvalCaller, DeepEvalJudge

            judge = DeepEvalJudge(model, model_settings, judge_threshold)
            caller = DeepEvalCaller(model, model_settings)
        else:
            if missing is not None:
                log.warning("BACKLINE_EVAL_DEEPEVAL is on but %s; using Backline's judge", missing)
            judge = ChatModelJudge(model, model_settings, judge_threshold)
            caller = ChatModelCaller(model, model_settings)
    return Ports(
        runtime=runtime,
        seeder=MemorySeeder(engine, secret_key, embedder, vectors),
        outcomes=McpOutcomeChecker(policy),
        judge=judge,
        simulator=caller,
    )
