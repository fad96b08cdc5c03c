"""PostCallWorkflow: from an accepted end-of-call payload to memories, a score and audit events.

Deterministic orchestration only: no I/O, no wall clock. Each step is an idempotent activity,
so a worker crash resumes where it stopped and a retry never duplicates memories.

Short database steps (ingest, rule-based analysis, score, audit) run as local activities: each
workflow-task round trip costs ~50 ms of server time on the dev server, and local activities
run inside the task. The LLM call and the memory write (embedding) stay regular activities, so
their retries and timeouts are visible as activity events in history.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError

from orchestration.policies import DB_ACTIVITY_TIMEOUT, DB_RETRY, LLM_ACTIVITY_TIMEOUT, LLM_RETRY
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
    PostCallResult,
    ScoreResult,
    WriteMemoryInput,
    WriteMemoryResult,
)


@workflow.defn(name="PostCallWorkflow")
class PostCallWorkflow:
    @workflow.run
    async def run(self, data: PostCallInput) -> PostCallResult:
        ingest = await workflow.execute_local_activity(
            ACT_INGEST,
            data,
            result_type=IngestResult,
            start_to_close_timeout=DB_ACTIVITY_TIMEOUT,
            retry_policy=DB_RETRY,
        )
        if ingest.superseded or ingest.call_pk is None:
            return PostCallResult(status="superseded", call_pk=ingest.call_pk)
        call = CallInput(call_pk=ingest.call_pk)

        analysis: AnalysisResult | None = None
        if ingest.llm_available:
            try:
                analysis = await workflow.execute_activity(
                    ACT_ANALYZE_LLM,
                    call,
                    result_type=AnalysisResult,
                    start_to_close_timeout=LLM_ACTIVITY_TIMEOUT,
                    retry_policy=LLM_RETRY,
                )
            except ActivityError:
                workflow.logger.info("LLM analysis gave up; using the non-LLM path")
        if analysis is None:
            # No LLM, or it gave up after its retries: the non-LLM path is real too.
            analysis = await workflow.execute_local_activity(
                ACT_ANALYZE_RULES,
                call,
                result_type=AnalysisResult,
                start_to_close_timeout=DB_ACTIVITY_TIMEOUT,
                retry_policy=DB_RETRY,
            )

        written = await workflow.execute_activity(
            ACT_WRITE_MEMORIES,
            WriteMemoryInput(
                call_pk=ingest.call_pk,
                summary=analysis.summary,
                facts=analysis.facts,
                method=analysis.method,
            ),
            result_type=WriteMemoryResult,
            start_to_close_timeout=DB_ACTIVITY_TIMEOUT,
            retry_policy=DB_RETRY,
        )
        score = await workflow.execute_local_activity(
            ACT_SCORE,
            call,
            result_type=ScoreResult,
            start_to_close_timeout=DB_ACTIVITY_TIMEOUT,
            retry_policy=DB_RETRY,
        )
        await workflow.execute_local_activity(
            ACT_AUDIT,
            AuditInput(
                org_id=ingest.org_id,
                action="call.processed",
                target=f"call:{data.platform}:{data.call_id}",
                detail={
                    "revision": data.revision,
                    "analysis": analysis.method,
                    "memories": written.memories,
                    "facts_added": written.facts_added,
                    "facts_closed": written.facts_closed,
                    "score": score.score,
                },
            ),
            start_to_close_timeout=DB_ACTIVITY_TIMEOUT,
            retry_policy=DB_RETRY,
        )
        return PostCallResult(
            status="processed",
            call_pk=ingest.call_pk,
            analysis_method=analysis.method,
            memories=written.memories,
            facts_added=written.facts_added,
            facts_closed=written.facts_closed,
            score=score.score,
        )
