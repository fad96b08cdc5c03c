"""The answering service: what Backline answers to each canonical event of a call.

Platform-neutral and framework-free: a webhook route (``api/routes/webhooks.py``) verifies and
parses with its platform's connector, then calls ``AnsweringService.answer``; an agent runtime or
a custom-LLM endpoint can call it the same way. Context requests get the served prompt and the
caller's memory, tool calls the built-ins and the tool gateway, knowledge requests a retrieval;
every event of a call is appended cheaply; an end-of-call payload is answered once its inbox
row is committed (the durable record) and its PostCallWorkflow is started by the post-call
drainer behind the reply. One handler per event kind. Everything outside core comes in through the
ports of ``core.calls.answering_ports``; database work runs in a worker thread, one unit of work
per event.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from anyio import to_thread
from pydantic import BaseModel
from sqlmodel import Session

from core.calls import repository as calls_repo
from core.calls.answering_ports import (
    CallerMemory,
    EventRecorder,
    KnowledgeSearch,
    PostCallStarter,
    PromptSource,
    ToolRouter,
)
from core.calls.events import (
    CallAnalyzed,
    CallEnded,
    CallRef,
    CallStarted,
    CanonicalEvent,
    ContextRequest,
    Informational,
    KnowledgeRequest,
    ToolCall,
    ToolCallBatch,
    TranscriptUpdate,
)
from core.calls.service import CallsService, InboxReceipt
from core.db import utcnow
from core.errors import AppError
from core.knowledge.retrieval import retrieval_event_data
from core.knowledge.schemas import KnowledgeAnswer
from core.knowledge.voice import caller_query, no_question_reason
from core.memory.schemas import CallerContext
from core.memory.service import MemoryService
from core.prompts.serving import ServedPrompt
from core.tenancy.agent_info import AgentInfo
from core.tools.builtins import ToolContext, ToolOutcome, run_builtin
from core.tools.schemas import GatewayResult

log = logging.getLogger("backline.edge")
_EXCERPT_BYTES = 160
AGENT_ID_MAX = 64  # the column's width; longer ids never name an agent
_DIGITS = re.compile(r"\d{3,}")
RETRIEVAL_EVENT = "knowledge_retrieval"
# Workflow starts the drainer has in flight at once (each is one RPC to the workflow engine).
DRAIN_CONCURRENCY = 16


@dataclass(frozen=True)
class PostCallJob:
    """An inbox row whose workflow the drainer is to start (everything the start needs)."""

    inbox_id: int
    platform: str
    call_id: str
    revision: int
    workflow_id: str


@dataclass
class Answer:
    """What core answered for one canonical event; connectors shape it for their platform."""

    context: CallerContext | None = None
    tool_results: list[tuple[ToolCall, ToolOutcome]] = field(default_factory=list)
    documents: list[dict[str, Any]] = field(default_factory=list)
    # The prompt version served at a context request (None: the agent serves none).
    prompt: ServedPrompt | None = None
    # The retrieval behind a knowledge request; connectors shape its hits and outdated signal.
    knowledge: KnowledgeAnswer | None = None


def context_variables(ctx: CallerContext) -> dict[str, str]:
    """Backline's variables live in their own ``backline_`` namespace."""
    return {
        "backline_caller_known": "yes" if ctx.known else "no",
        "backline_memory_summary": ctx.summary,
        "backline_caller_facts": "; ".join(
            f"{k.replace('_', ' ')}: {v}" for k, v in ctx.facts.items()
        ),
        "backline_call_count": str(ctx.call_count),
    }


def prompt_variables(answer: Answer) -> dict[str, str]:
    """Context variables plus, when a version was served, the rendered prompt as
    ``backline_system_prompt`` / ``backline_first_message`` / ``backline_prompt_version``
    (how Retell and Bland deliver it: the platform agent's prompt includes the variable) and
    the version's variable defaults under their own names, for the platform's ``{{name}}``."""
    variables = answer.prompt.variables() if answer.prompt is not None else {}
    # Backline's own namespace always wins over a version default of the same name.
    variables.update(context_variables(answer.context or CallerContext()))
    return variables


def redacted_excerpt(raw: bytes) -> str:
    """What is kept of a body nobody authenticated: its size and a short, digit-masked start
    (enough to recognize a misconfigured sender, too little to store anyone's data)."""
    head = raw[:_EXCERPT_BYTES].decode("utf-8", errors="replace")
    head = _DIGITS.sub(lambda m: "#" * len(m.group()), head)
    head = "".join(c if c.isprintable() else "?" for c in head)
    return f"[unauthenticated request, {len(raw)} bytes, body not kept] {head}"


def clip(text: str, limit: int = 160) -> str:
    """A log-sized excerpt: ids and errors can be as long as whatever a caller sent."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def record_retrieval(
    calls: CallsService, agent: AgentInfo, call: CallRef, answer: KnowledgeAnswer, via: str
) -> None:
    """One retrieval joins the call's trace (the query is redacted on append)."""
    calls.record_event(
        org_id=agent.org_id,
        agent_id=agent.id,
        platform=call.platform,
        call_id=call.call_id,
        caller_number=call.caller_number,
        type=RETRIEVAL_EVENT,
        platform_type=via,
        data=retrieval_event_data(answer, via),
    )


class CallKnowledge:
    """``knowledge_search`` bound to one call's agent and unit of work; remembers each answer
    for the call's trace."""

    def __init__(self, search: KnowledgeSearch, session: Session, agent: AgentInfo) -> None:
        self._search = search
        self._session = session
        self._agent = agent
        self.answers: list[KnowledgeAnswer] = []

    def __call__(self, query: str, limit: int) -> KnowledgeAnswer:
        answer = self._search.search(self._session, self._agent.id, query, k=limit)
        self.answers.append(answer)
        return answer

    def record(self, calls: CallsService, call: CallRef | None) -> None:
        if call is None:
            return
        for answer in self.answers:
            record_retrieval(calls, self._agent, call, answer, "knowledge_search")


@dataclass
class _Work:
    """One event being answered: its unit of work and what the handler found."""

    agent: AgentInfo
    session: Session
    calls: CallsService
    memory: MemoryService
    label: str | None
    routed: dict[int, GatewayResult]
    version: int | None = None
    answer: Answer = field(default_factory=Answer)
    platform_type: str = ""


Handler = Callable[[_Work, Any], dict[str, Any]]


def run_tool(
    tc: ToolCall,
    ctx: ToolContext,
    memory: MemoryService,
    routed: GatewayResult | None = None,
    knowledge: CallKnowledge | None = None,
) -> ToolOutcome:
    """A built-in answers first, then the gateway's result; otherwise the tool is unknown."""
    outcome = run_builtin(tc.name, tc.arguments, ctx, memory, knowledge)
    if outcome is None and routed is not None:
        outcome = routed.outcome  # answered by the MCP tool gateway (the ToolRouter port)
    if outcome is None:
        return ToolOutcome(error=f"Unknown tool '{tc.name}': this agent has no such tool.")
    return outcome


class AnsweringService:
    """Answers canonical events for an agent; see the module docstring."""

    def __init__(
        self,
        *,
        prompts: PromptSource,
        memory: CallerMemory,
        knowledge: KnowledgeSearch,
        tools: ToolRouter,
        recorder: EventRecorder,
        post_call: PostCallStarter,
    ) -> None:
        self.prompts = prompts
        self.memory = memory
        self.knowledge = knowledge
        self.tools = tools
        self.recorder = recorder
        self.post_call = post_call
        # Inbox rows accepted by this process whose workflow is not started yet. Memory only:
        # the inbox row is the durable record, and rows lost here with the process are started
        # by the periodic dispatcher (``api.main.dispatch_pending``) after it restarts.
        self._handed_off: deque[PostCallJob] = deque()
        self._wake: asyncio.Event | None = None
        # Memory prefetches running after context replies (held so they are not collected).
        self._prefetches: set[asyncio.Task[None]] = set()
        # One handler per event kind; a kind without one (transfer requests, a stray end of
        # call) is only appended to the call's events.
        self._handlers: dict[type[BaseModel], Handler] = {
            ContextRequest: self._context,
            ToolCallBatch: self._tool_calls,
            KnowledgeRequest: self._knowledge,
            TranscriptUpdate: self._transcript,
            CallStarted: self._call_started,
            CallAnalyzed: self._call_analyzed,
            Informational: self._informational,
        }

    # -- entry ----------------------------------------------------------------------------------

    async def answer(
        self,
        agent: AgentInfo,
        event: CanonicalEvent,
        *,
        label: str | None = None,
        version: int | None = None,
    ) -> Answer:
        """Answer one event (``label``: serve that prompt label's version, e.g. staging;
        ``version``: serve exactly that version number, as evals of a candidate do)."""
        routed = await self.tools.route(agent, event) if isinstance(event, ToolCallBatch) else {}
        answer = await to_thread.run_sync(self._answer_sync, agent, event, label, routed, version)
        if (
            isinstance(event, ContextRequest)
            and answer.context is not None
            and answer.context.known
        ):
            self._prefetch_soon(agent, event.call.caller_number)
        return answer

    def _prefetch_soon(self, agent: AgentInfo, caller_number: str | None) -> None:
        """After the context reply, off its path: load the caller's memory into this process
        so the call's ``memory_search`` calls score in process."""
        caller_hash = self.recorder.caller_hash(caller_number)
        if caller_hash is None:
            return
        task = asyncio.create_task(
            to_thread.run_sync(self._prefetch_sync, agent.org_id, agent.id, caller_hash)
        )
        self._prefetches.add(task)
        task.add_done_callback(self._prefetches.discard)

    def _prefetch_sync(self, org_id: str, agent_id: str, caller_hash: str) -> None:
        try:
            with self.recorder.unit() as session:
                self.memory.service(session).prefetch(org_id, agent_id, caller_hash)
        except Exception as exc:  # a search without the snapshot reads the database instead
            log.warning("memory prefetch failed: %s", clip(str(exc)))

    def _answer_sync(
        self,
        agent: AgentInfo,
        event: CanonicalEvent,
        label: str | None = None,
        routed: dict[int, GatewayResult] | None = None,
        version: int | None = None,
    ) -> Answer:
        with self.recorder.unit() as session:
            work = _Work(
                agent=agent,
                session=session,
                calls=self.recorder.calls(session),
                memory=self.memory.service(session),
                label=label,
                routed=routed or {},
                version=version,
                platform_type=event.kind,
            )
            handler = self._handlers.get(type(event))
            data = handler(work, event) if handler is not None else {}
            call: CallRef | None = getattr(event, "call", None)
            if call is not None:
                work.calls.record_event(
                    org_id=agent.org_id,
                    agent_id=agent.id,
                    platform=call.platform,
                    call_id=call.call_id,
                    caller_number=call.caller_number,
                    type=event.kind,
                    platform_type=work.platform_type,
                    data=data,
                )
            session.commit()
        return work.answer

    # -- handlers (run in the worker thread, inside the event's unit of work) --------------------

    def _context(self, work: _Work, event: ContextRequest) -> dict[str, Any]:
        agent, calls, number = work.agent, work.calls, event.call.caller_number
        fetch_started = time.perf_counter()
        caller_hash = calls.caller_hash(number)
        context = work.memory.get_context(agent.org_id, agent.id, caller_hash)
        work.answer.context = context
        data: dict[str, Any] = {"caller_known": context.known}
        if caller_hash is None:
            data["no_memory"] = calls.no_memory_reason(number)
        # From the in-process cache: no database round trip for the prompt.
        prompt = self.prompts.serve(
            agent,
            caller_key=caller_hash or f"call:{event.call.call_id}",
            context=context,
            now=utcnow(),
            label=work.label,
            call_variables=event.variables,
            version=work.version,
        )
        work.answer.prompt = prompt
        # How long the caller's context and prompt took (the scorecard's context fetch).
        data["latency_ms"] = round((time.perf_counter() - fetch_started) * 1000, 2)
        if prompt is not None:
            data.update(prompt_version=prompt.ref, prompt_source=prompt.source)
            calls.touch_call(
                org_id=agent.org_id,
                agent_id=agent.id,
                platform=event.call.platform,
                call_id=event.call.call_id,
                caller_number=number,
                direction=event.call.direction,
                prompt_version=prompt.ref,
            )
        return data

    def _tool_calls(self, work: _Work, event: ToolCallBatch) -> dict[str, Any]:
        agent, call = work.agent, event.call
        number = call.caller_number if call else None
        tool_ctx = ToolContext(agent.org_id, agent.id, work.calls.caller_hash(number))
        knowledge = CallKnowledge(self.knowledge, work.session, agent)
        results = [
            (tc, run_tool(tc, tool_ctx, work.memory, work.routed.get(i), knowledge))
            for i, tc in enumerate(event.calls)
        ]
        work.answer.tool_results = results
        knowledge.record(work.calls, call)  # each knowledge_search joins the call's trace
        # Gateway calls join the call's trace and the audit log in this same commit.
        self.recorder.record_tool_results(work.session, work.routed.values())
        return {
            "tools": [tc.name for tc in event.calls],
            "errors": sum(o.error is not None for _, o in results),
        }

    def _knowledge(self, work: _Work, event: KnowledgeRequest) -> dict[str, Any]:
        """A platform's knowledge request: one retrieval, no network call and no LLM."""
        query = caller_query(event.turns)
        if not query:
            answer = KnowledgeAnswer(query="", normalized_query="", status="empty")
            data = retrieval_event_data(answer, "knowledge_request")
            data["reason"] = no_question_reason(event.turns)
        else:
            answer = self.knowledge.search(work.session, work.agent.id, query, k=5)
            data = retrieval_event_data(answer, "knowledge_request")
        work.answer.knowledge = answer
        return data

    def _transcript(self, work: _Work, event: TranscriptUpdate) -> dict[str, Any]:
        return {"role": event.role, "text": event.text, "final": event.final}

    def _call_started(self, work: _Work, event: CallStarted) -> dict[str, Any]:
        work.calls.touch_call(
            org_id=work.agent.org_id,
            agent_id=work.agent.id,
            platform=event.call.platform,
            call_id=event.call.call_id,
            caller_number=event.call.caller_number,
            direction=event.call.direction,
        )
        return {}

    def _call_analyzed(self, work: _Work, event: CallAnalyzed) -> dict[str, Any]:
        work.calls.enrich_call(org_id=work.agent.org_id, agent_id=work.agent.id, analyzed=event)
        return {"sentiment": event.sentiment, "success": event.platform_success}

    def _informational(self, work: _Work, event: Informational) -> dict[str, Any]:
        work.platform_type = event.platform_type
        return dict(event.data)

    # -- a retrieval outside any platform event -------------------------------------------------

    async def retrieve(
        self, agent: AgentInfo, call: CallRef, query: str, *, k: int = 5, via: str = "agent_turn"
    ) -> KnowledgeAnswer:
        """One retrieval for a caller's turn (the agent runtime's per-turn knowledge), recorded
        on the call as a ``knowledge_retrieval`` event, like ``knowledge_search`` results."""

        def _run() -> KnowledgeAnswer:
            with self.recorder.unit() as session:
                answer = self.knowledge.search(session, agent.id, query, k=k)
                record_retrieval(self.recorder.calls(session), agent, call, answer, via)
                session.commit()
            return answer

        return await to_thread.run_sync(_run)

    # -- a context answer past its time budget ---------------------------------------------------

    def fallback_answer(self, agent: AgentInfo, event: ContextRequest) -> Answer:
        """For a context request that missed its time budget: no memory, but the served prompt
        still (cache and render only, no database), so a platform whose prompt *is* the
        variable never runs with an empty one. The late answer still records the version."""
        answer = Answer(context=CallerContext())
        answer.prompt = self.prompts.serve(
            agent,
            caller_key=self.recorder.caller_hash(event.call.caller_number)
            or f"call:{event.call.call_id}",
            context=CallerContext(),
            now=utcnow(),
            call_variables=event.variables,
        )
        return answer

    # -- refused webhooks -----------------------------------------------------------------------

    async def record_rejection(
        self,
        platform: str,
        agent: AgentInfo | None,
        agent_id: str,
        exc: AppError,
        raw: bytes,
        *,
        authenticated: bool = False,
        caller_number: str | None = None,
    ) -> None:
        """Record a refused webhook. Only an authenticated sender's body is kept whole (for the
        integrator to fix and replay); an unauthenticated one keeps metadata and a short
        excerpt, and no caller."""
        if not authenticated:
            raw, caller_number = redacted_excerpt(raw).encode("utf-8"), None

        def _store() -> None:
            with self.recorder.unit() as session:
                self.recorder.calls(session).reject(
                    platform=platform,
                    agent_id=agent_id[:AGENT_ID_MAX],  # from the URL, as long as anyone sent
                    org_id=agent.org_id if agent else None,
                    reason=type(exc).__name__,
                    detail=exc.detail,
                    status_code=exc.status_code,
                    raw=raw,
                    caller_number=caller_number,
                )
                session.commit()

        await to_thread.run_sync(_store)

    # -- end of call ----------------------------------------------------------------------------

    async def accept_call_ended(
        self, agent: AgentInfo, event: CallEnded, raw: bytes
    ) -> dict[str, Any]:
        """Inbox the payload (idempotent) and answer once the row is committed; its workflow is
        started behind the reply (``run_post_call_drainer``), so a slow or unreachable workflow
        engine never holds the platform's request. ``workflow_started`` is therefore null."""

        def _receive() -> InboxReceipt:
            with self.recorder.unit() as session:
                receipt = self.recorder.calls(session).receive_call_ended(
                    org_id=agent.org_id,
                    agent_id=agent.id,
                    platform=event.call.platform,
                    call_id=event.call.call_id,
                    raw=raw,
                    caller_number=event.call.caller_number,
                )
                session.commit()
                return receipt

        receipt = await to_thread.run_sync(_receive)
        # A duplicate is handed off too: its first delivery may not have started yet, and a
        # second start of the same workflow id is refused by the engine (the start is idempotent).
        self.hand_off(
            PostCallJob(
                receipt.inbox_id,
                event.call.platform,
                event.call.call_id,
                receipt.revision,
                receipt.workflow_id,
            )
        )
        return {
            "status": "accepted",
            "duplicate": not receipt.created,
            "revision": receipt.revision,
            "workflow_id": receipt.workflow_id,
            "workflow_started": None,
        }

    def hand_off(self, job: PostCallJob) -> None:
        """Queue a committed inbox row for the drainer; never waits."""
        self._handed_off.append(job)
        if self._wake is not None:
            self._wake.set()

    async def run_post_call_drainer(self) -> None:
        """Start handed-off rows' workflows as they arrive, until cancelled (the API lifespan
        runs one per process). A start that fails leaves its row to the periodic dispatcher,
        which retries with back-off."""
        self._wake = asyncio.Event()
        try:
            while True:
                if not self._handed_off:
                    await self._wake.wait()
                self._wake.clear()
                try:
                    await self.drain_post_calls()
                except Exception as exc:  # the rows stay in the inbox for the dispatcher
                    log.warning("post-call drainer: %s", clip(str(exc)))
        finally:
            self._wake = None

    async def drain_post_calls(self) -> int:
        """Start the workflows of every row handed off so far, ``DRAIN_CONCURRENCY`` at a time,
        and mark each batch's started rows in one write; answers how many were started now."""
        started = 0
        while self._handed_off:
            batch = [
                self._handed_off.popleft()
                for _ in range(min(DRAIN_CONCURRENCY, len(self._handed_off)))
            ]
            results = await asyncio.gather(*(self._start_quietly(job) for job in batch))
            done = [job.inbox_id for job, ok in zip(batch, results, strict=True) if ok is not None]
            started += sum(1 for ok in results if ok)
            if done:
                await to_thread.run_sync(self._mark_dispatched, done)
        return started

    async def _start_quietly(self, job: PostCallJob) -> bool | None:
        """Start the row's workflow; None when it could not start now (the dispatcher
        retries)."""
        try:
            return await self.post_call.start(
                inbox_id=job.inbox_id,
                platform=job.platform,
                call_id=job.call_id,
                revision=job.revision,
                workflow_id=job.workflow_id,
            )
        except Exception as exc:
            log.warning("could not start %s yet: %s", clip(job.workflow_id), clip(str(exc)))
            return None

    def _mark_dispatched(self, inbox_ids: list[int]) -> None:
        with self.recorder.unit() as session:
            self.recorder.calls(session).mark_many_dispatched(inbox_ids)
            session.commit()

    async def earlier_call_ended(
        self, agent: AgentInfo, platform: str, call_id: str
    ) -> list[dict[str, Any]]:
        """The end-of-call payloads of a call already in the inbox (oldest first), for a
        platform's correction to be laid over."""

        def _load() -> list[str]:
            with self.recorder.unit() as session:
                return calls_repo.inbox_payloads_for_call(
                    session, agent.id, platform, "call_ended", call_id
                )

        bodies: list[dict[str, Any]] = []
        for text in await to_thread.run_sync(_load):
            try:
                body = json.loads(text)
            except json.JSONDecodeError:
                continue  # the inbox only holds payloads that parsed; a bad one is not a base
            if isinstance(body, dict):
                bodies.append(body)
        return bodies

    async def start_inbox_workflow(
        self, inbox_id: int, platform: str, call_id: str, revision: int, workflow_id: str
    ) -> bool | None:
        """Start the inbox row's workflow and mark the row dispatched; None when no workflow
        engine is reachable now; raises when the start failed."""
        started = await self.post_call.start(
            inbox_id=inbox_id,
            platform=platform,
            call_id=call_id,
            revision=revision,
            workflow_id=workflow_id,
        )
        if started is None:
            return None

        def _mark() -> None:
            with self.recorder.unit() as session:
                self.recorder.calls(session).mark_dispatched(inbox_id)
                session.commit()

        await to_thread.run_sync(_mark)
        return started
