"""Process-wide state built in the API lifespan: engine, connectors, caches, Temporal client."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Engine
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from temporalio.client import Client

from connectors.answering import CachedPrompts, LazyKnowledge, SqlEventRecorder, StoredMemory
from connectors.chat_llm import OpenAIChatModel
from connectors.retell.llm_ws import RetellCalls
from connectors.tool_routing import BacklineTools, GatewayToolCatalog, GatewayToolRouter
from core.agent.llm import ModelSettings
from core.agent.runtime import AgentRuntime, RuntimeSettings
from core.calls.answering import AnsweringService
from core.calls.ports import PlatformCredential
from core.egress import EgressPolicy, egress_policy
from core.ports import Embedder, VectorStore
from core.prompts.cache import PromptCache
from core.prompts.ports import EvalGate, NoEvalSuiteGate
from core.settings import Settings
from core.tenancy import repository as tenancy_repo
from core.tenancy.agent_info import AgentInfo
from core.tenancy.security import SecretBox
from core.tools.gateway import ToolGateway
from evals.runner import Ports
from orchestration.starters import TemporalPostCallStarter

if TYPE_CHECKING:
    from api.knowledge_runtime import KnowledgeRuntime
    from connectors.mcp.endpoint import McpEndpoint

AGENT_CACHE_TTL_S = 5.0
__all__ = ["AgentDirectory", "AgentInfo", "AppState"]  # AgentInfo lives in core.tenancy


class AgentDirectory:
    """Agents and their decrypted credentials, cached briefly so the hot path skips the DB."""

    def __init__(self, engine: Engine, secret_key: str) -> None:
        self._engine = engine
        self._box = SecretBox(secret_key)
        self._cache: dict[str, tuple[float, AgentInfo | None]] = {}
        self._lock = threading.Lock()

    def cached(self, agent_id: str) -> tuple[bool, AgentInfo | None]:
        """``(True, agent or None)`` from the cache without touching the database (safe on the
        event loop), ``(False, None)`` when it must be loaded."""
        hit = self._cache.get(agent_id)
        if hit is not None and time.monotonic() - hit[0] < AGENT_CACHE_TTL_S:
            return True, hit[1]
        return False, None

    async def aget(self, agent_id: str) -> AgentInfo | None:
        """``get`` for async code: a cache hit stays on the event loop, a load runs in the
        thread pool."""
        found, info = self.cached(agent_id)
        if found:
            return info
        return await run_in_threadpool(self.get, agent_id)

    def get(self, agent_id: str) -> AgentInfo | None:
        now = time.monotonic()
        found, cached = self.cached(agent_id)
        if found:
            return cached
        info = self._load(agent_id)
        with self._lock:
            self._cache[agent_id] = (now, info)
        return info

    def invalidate(self, agent_id: str | None = None) -> None:
        with self._lock:
            if agent_id is None:
                self._cache.clear()
            else:
                self._cache.pop(agent_id, None)

    def _load(self, agent_id: str) -> AgentInfo | None:
        with Session(self._engine) as session:
            agent = tenancy_repo.get_agent(session, agent_id)
            if agent is None:
                return None
            creds: dict[str, list[PlatformCredential]] = {}
            for c in tenancy_repo.list_credentials(session, agent_id):
                creds.setdefault(c.platform, []).append(
                    PlatformCredential(
                        kind=c.kind,
                        secret=self._box.decrypt(c.secret_encrypted),
                        header_name=c.header_name,
                    )
                )
            return AgentInfo(
                id=agent.id,
                org_id=agent.org_id,
                name=agent.name,
                platform_settings=agent.platform_settings or {},
                credentials=creds,
            )


@dataclass
class AppState:
    settings: Settings
    engine: Engine
    embedder: Embedder
    vectors: VectorStore
    agents: AgentDirectory
    temporal: Client | None = None
    temporal_error: str | None = "not connected yet"
    prompts: PromptCache = field(default_factory=PromptCache)
    eval_gate: EvalGate = field(default_factory=NoEvalSuiteGate)
    # MCP tool gateway (built in the lifespan, api.main.start_tools).
    gateway: ToolGateway | None = None
    # Backline's own MCP endpoint (built with the gateway) and the knowledge runtime (index and
    # retriever, built on first use).
    mcp_endpoint: McpEndpoint | None = None
    knowledge: KnowledgeRuntime | None = None
    # Conversations opened over Retell's custom LLM WebSocket, kept for its reconnects.
    retell_calls: RetellCalls = field(default_factory=RetellCalls)
    # Eval runs played in this process: the adapters for an agent (the agent runtime, memory
    # seeding, outcome checks, LLM judge); None (the default until the agent runtime is wired
    # in) ends every run as ``error``. The running tasks are kept here.
    eval_ports: Callable[[AgentInfo], Ports | None] | None = None
    eval_tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    @cached_property
    def egress(self) -> EgressPolicy:
        """The policy for every request a tenant aims (operator settings only)."""
        return egress_policy(self.settings)

    @cached_property
    def recorder(self) -> SqlEventRecorder:
        return SqlEventRecorder(self.engine, self.settings.secret_key.get_secret_value())

    @cached_property
    def answering(self) -> AnsweringService:
        """The answering service over this process's pieces (the composition of its ports)."""
        from api.knowledge_runtime import runtime  # builds the index on first use

        return AnsweringService(
            prompts=CachedPrompts(self.prompts, self.engine),
            memory=StoredMemory(self.embedder, self.vectors),
            knowledge=LazyKnowledge(lambda: runtime(self).retriever),
            tools=GatewayToolRouter(lambda: self.gateway, self.recorder),
            recorder=self.recorder,
            post_call=TemporalPostCallStarter(lambda: self.temporal, self.settings.task_queue),
        )

    @cached_property
    def chat_model(self) -> OpenAIChatModel:
        """The agent runtime's chat model (``BACKLINE_LLM_*``); closed in the lifespan."""
        key = self.settings.llm_api_key
        return OpenAIChatModel(
            self.settings.llm_base_url, key.get_secret_value() if key is not None else None
        )

    @cached_property
    def runtime(self) -> AgentRuntime:
        """The agent runtime over the answering service, the chat model and the agent's tools."""
        return AgentRuntime(
            answering=self.answering,
            model=self.chat_model,
            tools=GatewayToolCatalog(lambda: self.gateway),
            settings=RuntimeSettings(
                model=ModelSettings(
                    model=self.settings.llm_model,
                    timeout_s=self.settings.llm_timeout_s,
                    fallback_model=self.settings.llm_fallback_model,
                ),
                max_tool_rounds=self.settings.agent_max_tool_rounds,
                knowledge_per_turn=self.settings.agent_knowledge_per_turn,
            ),
        )

    def backline_tools(self) -> BacklineTools:
        """The tools Backline's own MCP endpoint serves."""
        answering = self.answering
        return BacklineTools(
            agents=self.agents.get,
            gateway=lambda: self.gateway,
            memory=answering.memory,
            knowledge=answering.knowledge,
            recorder=answering.recorder,
        )
