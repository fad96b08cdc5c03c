"""KnowledgeRefreshWorkflow: bring one source up to date; KnowledgeScheduledRefreshWorkflow
(what a source's Temporal Schedule starts) and KnowledgeFreshnessSweepWorkflow.

Reading ``KnowledgeRefreshWorkflow.run`` tells the story: fetch (URLs conditionally, with ETag /
If-Modified-Since), and when the content changed, ingest it (re-chunk and re-embed only the
sections that changed, delete chunks that vanished), then mark the source fresh and audit.
A fetch or ingest that still fails after its retries marks the source failing and alerts;
nothing is deleted because a fetch failed, so the last good content keeps serving until its
maximum staleness. One workflow id per source (``kb-refresh-{source}``): the scheduled wrapper
starts it as a child with that id and skips when a refresh is already running; "refresh now"
joins a running one (id-conflict policy USE_EXISTING).

Deterministic orchestration only: time is ``workflow.now()``, I/O happens in activities reached
by name, and inputs carry source ids, never content.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import ActivityError, WorkflowAlreadyStartedError

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
    RefreshInput,
    RefreshResult,
    SweepActivityInput,
    SweepInput,
    SweepResult,
    refresh_workflow_id,
)
from orchestration.policies import (
    FETCH_RETRY,
    FETCH_TIMEOUT,
    INGEST_HEARTBEAT,
    INGEST_RETRY,
    INGEST_TIMEOUT,
    KNOWLEDGE_DB_RETRY,
    KNOWLEDGE_DB_TIMEOUT,
)


def _reason(err: ActivityError) -> str:
    cause = err.cause
    return str(cause.message if cause is not None and hasattr(cause, "message") else err)[:1000]


@workflow.defn(name="KnowledgeRefreshWorkflow")
class KnowledgeRefreshWorkflow:
    @workflow.run
    async def run(self, data: RefreshInput) -> RefreshResult:
        checked_at = workflow.now()
        try:
            fetched = await workflow.execute_activity(
                ACT_FETCH,
                FetchInput(data.source_id, checked_at, data.force),
                result_type=FetchOutput,
                start_to_close_timeout=FETCH_TIMEOUT,
                retry_policy=FETCH_RETRY,
            )
        except ActivityError as err:
            return await self._failed(data, "fetch", _reason(err))
        if fetched.status == "gone":
            return RefreshResult(data.source_id, "gone")

        result = RefreshResult(data.source_id, "unchanged", not_modified=fetched.not_modified)
        if fetched.status == "changed" and fetched.content_hash is not None:
            try:
                ingested = await workflow.execute_activity(
                    ACT_INGEST,
                    IngestInput(data.source_id, fetched.content_hash, data.force),
                    result_type=IngestOutput,
                    start_to_close_timeout=INGEST_TIMEOUT,
                    heartbeat_timeout=INGEST_HEARTBEAT,
                    retry_policy=INGEST_RETRY,
                )
            except ActivityError as err:
                return await self._failed(data, "ingest", _reason(err))
            if ingested.gone:
                return RefreshResult(data.source_id, "gone")
            result = RefreshResult(
                data.source_id,
                "updated",
                chunks_added=ingested.chunks_added,
                chunks_removed=ingested.chunks_removed,
                chunks_kept=ingested.chunks_kept,
                embedded=ingested.embedded,
                documents=ingested.documents,
                documents_skipped=ingested.documents_skipped,
                chunk_count=ingested.chunk_count,
            )

        await workflow.execute_activity(
            ACT_MARK_FRESH,
            MarkFreshInput(data.source_id, checked_at),
            start_to_close_timeout=KNOWLEDGE_DB_TIMEOUT,
            retry_policy=KNOWLEDGE_DB_RETRY,
        )
        await self._audit(data, result)
        return result

    async def _failed(self, data: RefreshInput, stage: str, error: str) -> RefreshResult:
        """The last good content stays: only the source's status and error change."""
        await workflow.execute_activity(
            ACT_MARK_FAILING,
            MarkFailingInput(data.source_id, stage, error, workflow.now()),
            start_to_close_timeout=KNOWLEDGE_DB_TIMEOUT,
            retry_policy=KNOWLEDGE_DB_RETRY,
        )
        result = RefreshResult(data.source_id, "failing", error=f"{stage}: {error}")
        await self._audit(data, result)
        return result

    async def _audit(self, data: RefreshInput, result: RefreshResult) -> None:
        await workflow.execute_activity(
            ACT_AUDIT,
            RefreshAuditInput(data.source_id, data.reason, data.requested_by, result),
            start_to_close_timeout=KNOWLEDGE_DB_TIMEOUT,
            retry_policy=KNOWLEDGE_DB_RETRY,
        )


@workflow.defn(name="KnowledgeScheduledRefreshWorkflow")
class KnowledgeScheduledRefreshWorkflow:
    """Started by a source's schedule (whose runs get timestamped ids); runs the refresh under
    the source's own id, so a scheduled and a manual refresh never overlap."""

    @workflow.run
    async def run(self, data: RefreshInput) -> RefreshResult:
        try:
            return await workflow.execute_child_workflow(
                KnowledgeRefreshWorkflow.run,
                data,
                id=refresh_workflow_id(data.source_id),
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            )
        except WorkflowAlreadyStartedError:
            return RefreshResult(
                data.source_id, "skipped", error="a refresh of this source was already running"
            )


@workflow.defn(name="KnowledgeFreshnessSweepWorkflow")
class KnowledgeFreshnessSweepWorkflow:
    """Marks sources past their maximum staleness as stale (and alerts once per source)."""

    @workflow.run
    async def run(self, _data: SweepInput) -> SweepResult:
        result: SweepResult = await workflow.execute_activity(
            ACT_SWEEP,
            SweepActivityInput(workflow.now()),
            result_type=SweepResult,
            start_to_close_timeout=KNOWLEDGE_DB_TIMEOUT,
            retry_policy=KNOWLEDGE_DB_RETRY,
        )
        return result
