"""Post-call activities: thin wrappers that load by id, call a core service, return a dataclass.

Each runs in its own unit of work (commit at the end) and is idempotent, so Temporal may retry
any of them. Failures retrying cannot fix are raised non-retryable.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session
from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from connectors.registry import parse_call_ended
from core.agent.llm import ChatModel, ModelSettings
from core.audit.service import record_audit_once
from core.calls.events import Turn
from core.calls.models import Call
from core.calls.service import CallsService
from core.db import session_scope, utcnow
from core.errors import AppError
from core.memory.analysis import CallAnalysis, analyze_call_rules, redact_analysis
from core.memory.ports import AnalyzerError, AnalyzerUnavailableError, CallAnalyzer
from core.memory.service import CallMemoryInput, MemoryService
from core.monitoring import repository as monitoring_repo
from core.monitoring.judge import DEFAULT_THRESHOLD, judge_call, sampled
from core.monitoring.service import MonitoringService
from core.monitoring.traces import CallTrace, TraceExporter
from core.ports import Embedder, VectorStore
from orchestration.post_call_types import (
    ACT_ANALYZE_LLM,
    ACT_ANALYZE_RULES,
    ACT_AUDIT,
    ACT_INGEST,
    ACT_SCORE,
    ACT_WRITE_MEMORIES,
    AnalysisResult,
    AuditInput,
    CallInput,
    IngestResult,
    PostCallInput,
    ScoreResult,
    WriteMemoryInput,
    WriteMemoryResult,
)


@dataclass(frozen=True)
class CallJudge:
    """The LLM judge of a sample of scored calls (``BACKLINE_JUDGE_SAMPLE_RATE``). ``model``
    makes a fresh chat model per judged call (each is judged in its own event loop, in the
    activity's thread); ``budget_s`` bounds the whole judgement, well inside the score
    activity's timeout: a slower judge leaves the call unjudged, never retries the activity."""

    model: Callable[[], ChatModel]
    settings: ModelSettings
    sample_rate: float
    threshold: float = DEFAULT_THRESHOLD
    budget_s: float = 6.0


class PostCallActivities:
    def __init__(
        self,
        engine: Engine,
        secret_key: str,
        embedder: Embedder,
        vectors: VectorStore,
        analyzer: CallAnalyzer | None,
        trace_exporter: TraceExporter | None = None,
        judge: CallJudge | None = None,
    ) -> None:
        self._engine = engine
        self._judge = judge
        self._trace_exporter = trace_exporter
        self._secret_key = secret_key
        self._embedder = embedder
        self._vectors = vectors
        self._analyzer = analyzer

    @staticmethod
    def _load_call(session: Session, call_pk: int) -> Call:
        call = session.get(Call, call_pk)
        if call is None:
            raise ApplicationError(f"call {call_pk} not found", type="NotFound", non_retryable=True)
        return call

    @activity.defn(name=ACT_INGEST)
    def ingest_call(self, data: PostCallInput) -> IngestResult:
        with session_scope(self._engine) as session:
            calls = CallsService(session, self._secret_key)
            inbox = calls.get_inbox(data.inbox_id)
            if inbox is None or inbox.payload is None:
                raise ApplicationError(
                    f"inbox row {data.inbox_id} is gone or its payload was purged",
                    type="NotFound",
                    non_retryable=True,
                )
            try:
                ended = parse_call_ended(inbox.platform, inbox.payload.encode())
            except AppError as exc:
                raise ApplicationError(
                    exc.detail, type="MalformedPayload", non_retryable=True
                ) from exc
            call = calls.store_ended_call(
                org_id=inbox.org_id, agent_id=inbox.agent_id, ended=ended, revision=data.revision
            )
            calls.mark_dispatched(data.inbox_id)
            llm = self._analyzer is not None
            if call is None:
                return IngestResult(
                    None, inbox.org_id, inbox.agent_id, superseded=True, llm_available=llm
                )
            return IngestResult(call.id, inbox.org_id, inbox.agent_id, llm_available=llm)

    @activity.defn(name=ACT_ANALYZE_LLM)
    def analyze_call_llm(self, data: CallInput) -> AnalysisResult:
        if self._analyzer is None:
            raise ApplicationError(
                "no LLM configured (set BACKLINE_LLM_BASE_URL); using the non-LLM path",
                type="LLMNotConfigured",
                non_retryable=True,
                # Expected whenever no LLM is set: not an incident, so not logged as one.
                category=ApplicationErrorCategory.BENIGN,
            )
        with session_scope(self._engine) as session:
            calls = CallsService(session, self._secret_key)
            call = self._load_call(session, data.call_pk)
            ended = calls.ended_event(call)
            policy = calls.pii_policy(call.agent_id)
        try:
            result = self._analyzer.analyze(ended.turns)
        except AnalyzerUnavailableError as exc:
            raise ApplicationError(str(exc), type="LLMUnavailable", non_retryable=True) from exc
        except AnalyzerError as exc:
            # A schema error may quote the LLM's output (call text): history gets the reason's
            # head only, and not the chained cause (the failure converter would record it);
            # the whole message stays in this worker's log.
            activity.logger.warning("LLM analysis of call %s failed: %s", data.call_pk, exc)
            raise ApplicationError(str(exc).split(":", 1)[0], type="LLMError") from None
        return self._store_analysis(data.call_pk, redact_analysis(result, policy))

    @activity.defn(name=ACT_ANALYZE_RULES)
    def analyze_call_rules(self, data: CallInput) -> AnalysisResult:
        with session_scope(self._engine) as session:
            calls = CallsService(session, self._secret_key)
            call = self._load_call(session, data.call_pk)
            ended = calls.ended_event(call)
            policy = calls.pii_policy(call.agent_id)
        # Redacted before it is stored on the call, from where the memory write reads it.
        analysis = redact_analysis(analyze_call_rules(ended.turns), policy)
        return self._store_analysis(data.call_pk, analysis)

    def _store_analysis(self, call_pk: int, result: CallAnalysis) -> AnalysisResult:
        """Keep the analysis on the call; the workflow learns only its method and size."""
        with session_scope(self._engine) as session:
            call = self._load_call(session, call_pk)
            facts = [(f.key, f.value) for f in result.facts]
            CallsService(session, self._secret_key).save_analysis(
                call, result.summary, facts, result.method
            )
            return AnalysisResult(
                method=result.method,
                call_pk=call_pk,
                revision=call.revision,
                fact_count=len(facts),
            )

    @activity.defn(name=ACT_WRITE_MEMORIES)
    def write_memories(self, data: WriteMemoryInput) -> WriteMemoryResult:
        with session_scope(self._engine) as session:
            call = self._load_call(session, data.call_pk)
            calls = CallsService(session, self._secret_key)
            if data.summary or data.facts:
                # Histories recorded before analyses were stored still carry the text.
                summary, facts, method = data.summary, [(k, v) for k, v in data.facts], data.method
            else:
                stored = calls.stored_analysis(call)
                if stored is None:
                    # An older history whose analysis found nothing to carry: redo it here.
                    fallback = analyze_call_rules(calls.ended_event(call).turns)
                    facts = [(f.key, f.value) for f in fallback.facts]
                    stored = (fallback.summary, facts, fallback.method)
                summary, facts, method = stored
            calls.save_summary(call, summary, method)
            if call.caller_hash is None:
                return WriteMemoryResult(0, 0, 0, skipped_reason="call has no caller number")
            memory = MemoryService(session, self._embedder, self._vectors)
            result = memory.write_call_memories(
                CallMemoryInput(
                    org_id=call.org_id,
                    agent_id=call.agent_id,
                    caller_hash=call.caller_hash,
                    caller_display=call.caller_display,
                    platform=call.platform,
                    call_id=call.platform_call_id,
                    revision=call.revision,
                    ended_at=call.ended_at or utcnow(),
                    summary=summary,
                    facts=facts,
                    method=method,
                )
            )
        memory.apply_pending_vectors()
        return WriteMemoryResult(result.memories, result.facts_added, result.facts_closed)

    @activity.defn(name=ACT_SCORE)
    def score_call(self, data: CallInput) -> ScoreResult:
        with session_scope(self._engine) as session:
            call = self._load_call(session, data.call_pk)
            ended = CallsService(session, self._secret_key).ended_event(call)
            monitoring = MonitoringService(session)
            card = monitoring.score_and_store(call, ended)
            trace = monitoring.call_trace(call) if self._trace_exporter is not None else None
            key = (call.agent_id, call.platform, call.platform_call_id)
        if trace is not None:
            # After the commit, so a slow collector never holds the transaction open.
            self._export_trace(trace)
        if self._judge is not None and sampled(*key, self._judge.sample_rate):
            self._judge_call(key, ended.turns)
        return ScoreResult(score=card.score)

    def _judge_call(self, key: tuple[str, str, str], turns: Sequence[Turn]) -> None:
        """Best effort, after the card is stored: the judged metrics of a sampled call, kept
        beside its scorecard (``CallScore.metrics["judged"]``). A judge that fails or runs out
        of time costs the grades, never the call (the result returned is the card's score)."""
        judge = self._judge
        assert judge is not None

        async def run() -> dict[str, Any]:
            model = judge.model()
            try:
                return await asyncio.wait_for(
                    judge_call(model, judge.settings, turns, threshold=judge.threshold),
                    judge.budget_s,
                )
            finally:
                close = getattr(model, "aclose", None)
                if close is not None:
                    await close()

        try:
            judged = asyncio.run(run())
            with session_scope(self._engine) as session:
                row = monitoring_repo.get_score(session, *key)
                if row is not None:
                    row.metrics = {**(row.metrics or {}), "judged": judged}
                    session.add(row)
        except Exception as exc:
            activity.logger.warning("call %s/%s not judged: %r", key[1], key[2], exc)

    def _export_trace(self, trace: CallTrace) -> None:
        """Best effort: a collector that is down or refuses costs the trace, never the call
        (the workflow's history is the same with or without an exporter)."""
        assert self._trace_exporter is not None
        try:
            self._trace_exporter.export(trace)
        except Exception as exc:
            activity.logger.warning(
                "trace of call %s/%s not exported: %s", trace.platform, trace.call_id, exc
            )

    @activity.defn(name=ACT_AUDIT)
    def record_audit(self, data: AuditInput) -> None:
        with session_scope(self._engine) as session:
            # A retry after a lost completion must not append the same event twice.
            record_audit_once(
                session,
                actor="system:post-call",
                action=data.action,
                target=data.target,
                org_id=data.org_id,
                detail=dict(data.detail),
            )

    def all(self) -> list[Callable[..., object]]:
        return [
            self.ingest_call,
            self.analyze_call_llm,
            self.analyze_call_rules,
            self.write_memories,
            self.score_call,
            self.record_audit,
        ]
