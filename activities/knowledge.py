"""Knowledge activities: thin wrappers that load a source by id, call the knowledge service with
the connectors they hold, and return a dataclass.

Each runs in its own unit of work and is idempotent (content is addressed by hash, chunk ids by
content, index writes go through the source's outbox), so Temporal may retry any of them.
Failures a retry cannot fix (a 404, an unreadable PDF) are raised non-retryable. Alerts are
raised here, after the workflow decided a failure is final; never from inside a retry.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy.engine import Engine
from sqlmodel import Session
from temporalio import activity
from temporalio.exceptions import ApplicationError

from core.audit.service import record_audit
from core.audit.targets import agent_target
from core.db import session_scope
from core.knowledge.ports import (
    FetchFailedError,
    Ingestor,
    KnowledgeIndex,
    SourceFetcher,
    UnreadableContentError,
)
from core.knowledge.service import KnowledgeIndexing, KnowledgeService
from core.monitoring.alerts import (
    KNOWLEDGE_FAILING,
    KNOWLEDGE_STALE,
    knowledge_subject,
    raise_alert,
)
from core.ports import Embedder
from orchestration.knowledge_refresh_types import (
    ACT_AUDIT,
    ACT_FETCH,
    ACT_INGEST,
    ACT_MARK_FAILING,
    ACT_MARK_FRESH,
    ACT_SWEEP,
    FetchInput,
    FetchOutput,
    IngestInput,
    IngestOutput,
    MarkFailingInput,
    MarkFreshInput,
    RefreshAuditInput,
    SweepActivityInput,
    SweepResult,
)

log = logging.getLogger("backline.knowledge")


class KnowledgeActivities:
    def __init__(
        self,
        engine: Engine,
        index: KnowledgeIndex,
        embedder: Embedder,
        ingestor: Ingestor,
        fetcher: SourceFetcher,
    ) -> None:
        self._engine = engine
        self._index = index
        self._embedder = embedder
        self._ingestor = ingestor
        self._fetcher = fetcher

    def _service(self, session: Session) -> KnowledgeIndexing:
        return KnowledgeIndexing(session, self._index, self._embedder)

    @activity.defn(name=ACT_FETCH)
    def fetch_source(self, data: FetchInput) -> FetchOutput:
        with session_scope(self._engine) as session:
            # A crash between an earlier commit and its index writes is finished here first.
            self._service(session).recover_outbox(data.source_id)
        try:
            with session_scope(self._engine) as session:
                outcome = self._service(session).fetch(
                    data.source_id, self._fetcher, data.checked_at, force=data.force
                )
        except FetchFailedError as exc:
            raise ApplicationError(
                exc.detail,
                type="FetchFailed" if exc.retryable else "FetchRejected",
                non_retryable=not exc.retryable,
            ) from exc
        except UnreadableContentError as exc:
            raise ApplicationError(str(exc), type="UnreadableContent", non_retryable=True) from exc
        return FetchOutput(outcome.status, outcome.content_hash, outcome.not_modified)

    @activity.defn(name=ACT_INGEST)
    def ingest_source(self, data: IngestInput) -> IngestOutput:
        def _progress(done: int, total: int) -> None:
            activity.heartbeat(done, total)

        try:
            with session_scope(self._engine) as session:
                service = self._service(session)
                outcome = service.ingest(
                    data.source_id,
                    data.content_hash,
                    self._ingestor,
                    force=data.force,
                    progress=_progress,
                )
        except UnreadableContentError as exc:
            raise ApplicationError(str(exc), type="UnreadableContent", non_retryable=True) from exc
        if outcome is None:
            return IngestOutput(gone=True)
        # Committed: now the search index, then the outbox entry that guarded it.
        for ops in service.apply_pending_index():
            with session_scope(self._engine) as session:
                KnowledgeService(session).clear_outbox(ops.source_id, ops.token)
        return IngestOutput(
            chunks_added=outcome.chunks_added,
            chunks_removed=outcome.chunks_removed,
            chunks_kept=outcome.chunks_kept,
            embedded=outcome.embedded,
            reused=outcome.reused,
            documents=outcome.documents,
            documents_skipped=outcome.documents_skipped,
            chunk_count=outcome.chunk_count,
        )

    @activity.defn(name=ACT_MARK_FRESH)
    def mark_fresh(self, data: MarkFreshInput) -> None:
        with session_scope(self._engine) as session:
            KnowledgeService(session).mark_fresh(data.source_id, data.checked_at)

    @activity.defn(name=ACT_MARK_FAILING)
    def mark_failing(self, data: MarkFailingInput) -> None:
        with session_scope(self._engine) as session:
            source, first = KnowledgeService(session).mark_failing(
                data.source_id, f"{data.stage}: {data.error}", data.at
            )
            if source is None:
                return
            log.warning("knowledge source %s failing: %s", source.id, data.error)
            if first:
                # Once per run of failures; the source's status carries the rest.
                raise_alert(
                    session,
                    org_id=source.org_id,
                    agent_id=source.agent_id,
                    kind=KNOWLEDGE_FAILING,
                    message=(
                        f"Knowledge source '{source.name}' could not be refreshed "
                        f"({data.stage}); its last good content keeps serving until it is "
                        "past its maximum staleness."
                    ),
                    detail={"source_id": source.id, "stage": data.stage, "error": data.error},
                    actor="system:knowledge-refresh",
                    subject=knowledge_subject(source.id),
                )

    @activity.defn(name=ACT_AUDIT)
    def record_refresh(self, data: RefreshAuditInput) -> None:
        with session_scope(self._engine) as session:
            source = KnowledgeService(session).get_source(data.source_id)
            if source is None:
                return
            r = data.result
            record_audit(
                session,
                actor=f"system:knowledge-refresh ({data.requested_by})",
                action=f"knowledge.source.refresh.{r.status}",
                target=agent_target(source.agent_id, "source", source.id),
                org_id=source.org_id,
                detail={
                    "reason": data.reason,
                    "chunks_added": r.chunks_added,
                    "chunks_removed": r.chunks_removed,
                    "chunks_kept": r.chunks_kept,
                    "embedded": r.embedded,
                    "documents": r.documents,
                    "documents_skipped": r.documents_skipped,
                    "not_modified": r.not_modified,
                    "error": r.error,
                },
            )

    @activity.defn(name=ACT_SWEEP)
    def sweep_freshness(self, data: SweepActivityInput) -> SweepResult:
        with session_scope(self._engine) as session:
            service = KnowledgeService(session)
            newly, checked = service.sweep(data.now)
            for source in newly:
                raise_alert(
                    session,
                    org_id=source.org_id,
                    agent_id=source.agent_id,
                    kind=KNOWLEDGE_STALE,
                    message=(
                        f"Knowledge source '{source.name}' is past its maximum staleness; "
                        "its chunks are withheld from answers until a refresh succeeds."
                    ),
                    detail={"source_id": source.id, "verified_at": str(source.verified_at)},
                    actor="system:knowledge-sweep",
                    subject=knowledge_subject(source.id),
                )
            return SweepResult(checked=checked, newly_stale=[s.id for s in newly])

    def all(self) -> list[Callable[..., object]]:
        return [
            self.fetch_source,
            self.ingest_source,
            self.mark_fresh,
            self.mark_failing,
            self.record_refresh,
            self.sweep_freshness,
        ]
