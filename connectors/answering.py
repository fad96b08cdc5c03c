"""Adapters of the answering service's ports (``core.calls.answering_ports``) over this
process's pieces: the prompt cache, the application database, the embedder and vector store,
and the knowledge retriever. The composition root (the API's ``AppState``) builds them."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session

from core.calls.answering_ports import KnowledgeSearch
from core.calls.service import CallsService
from core.knowledge.schemas import KnowledgeAnswer
from core.memory.recall import CallerRecall
from core.memory.schemas import CallerContext
from core.memory.service import MemoryService
from core.pii.phone import caller_hash
from core.ports import Embedder, VectorStore
from core.prompts.cache import PromptCache
from core.prompts.serving import ServedPrompt, serve_prompt
from core.query_cache import CachedQueryEmbedder
from core.tenancy.agent_info import AgentInfo
from core.tools.schemas import GatewayResult
from core.tools.service import record_tool_call


class CachedPrompts:
    """``PromptSource`` over the process's in-memory ``PromptCache``."""

    def __init__(self, cache: PromptCache, engine: Engine | None = None) -> None:
        self._cache = cache
        self._engine = engine  # reads a version asked for by number that the cache lacks

    def serve(
        self,
        agent: AgentInfo,
        *,
        caller_key: str,
        context: CallerContext,
        now: datetime,
        label: str | None = None,
        call_variables: Mapping[str, str] | None = None,
        version: int | None = None,
    ) -> ServedPrompt | None:
        if (
            version is not None
            and self._engine is not None
            and self._cache.resolve_version(agent.id, version) is None
        ):
            with Session(self._engine) as session:
                self._cache.load_version(session, agent.id, version)
        return serve_prompt(
            self._cache,
            agent_id=agent.id,
            agent_name=agent.name,
            caller_key=caller_key,
            context=context,
            now=now,
            label=label,
            call_variables=call_variables,
            version=version,
        )


class StoredMemory:
    """``CallerMemory`` over the application database and the memory vector store; a
    ``memory_search`` query asked again is embedded once per process, and a caller's memory
    prefetched at call start is searched in process (``core.memory.recall``)."""

    def __init__(self, embedder: Embedder, vectors: VectorStore) -> None:
        self._embedder = CachedQueryEmbedder(embedder)
        self._vectors = vectors
        self.recall = CallerRecall()  # callers' snapshots during their calls

    def service(self, session: Session) -> MemoryService:
        return MemoryService(session, self._embedder, self._vectors, self.recall)


class SqlEventRecorder:
    """``EventRecorder`` over the application database: one session per unit of work."""

    def __init__(self, engine: Engine, secret_key: str) -> None:
        self._engine = engine
        self._secret_key = secret_key

    def unit(self) -> AbstractContextManager[Session]:
        return Session(self._engine, expire_on_commit=False)

    def calls(self, session: Session) -> CallsService:
        return CallsService(session, self._secret_key)

    def record_tool_results(self, session: Session, results: Iterable[GatewayResult]) -> None:
        """Trace and audit records of routed calls, in the caller's unit of work."""
        for result in results:
            record_tool_call(session, self._secret_key, result.record)

    def caller_hash(self, number: str | None) -> str | None:
        return caller_hash(self._secret_key, number) if number else None


class LazyKnowledge:
    """``KnowledgeSearch`` through a retriever built on first use (the knowledge index opens
    files or connects to Weaviate, which the process defers until a request needs it)."""

    def __init__(self, retriever: Callable[[], KnowledgeSearch]) -> None:
        self._retriever = retriever

    def search(self, session: Session, agent_id: str, query: str, *, k: int = 5) -> KnowledgeAnswer:
        return self._retriever().search(session, agent_id, query, k=k)
