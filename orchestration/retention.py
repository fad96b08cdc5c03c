"""RetentionWorkflow: apply every organization's retention windows (raw payloads, transcripts,
memories), then the default window to payloads no organization owns. A Temporal Schedule
(``retention-purge``, hourly) starts it; one organization per activity, so a failure retries
that organization alone.

Deterministic orchestration only: the purge clock is ``workflow.now()``, I/O is in activities
reached by name.
"""

from __future__ import annotations

from temporalio import workflow

from orchestration.policies import DB_ACTIVITY_TIMEOUT, DB_RETRY, PURGE_TIMEOUT
from orchestration.retention_types import (
    ACT_LIST_ORGS,
    ACT_PURGE_ORG,
    ACT_PURGE_UNOWNED,
    ListOrgsInput,
    OrgList,
    OrgPurged,
    PurgeOrgInput,
    PurgeUnownedInput,
    PurgeUnownedResult,
    RetentionInput,
    RetentionResult,
)


@workflow.defn(name="RetentionWorkflow")
class RetentionWorkflow:
    @workflow.run
    async def run(self, data: RetentionInput) -> RetentionResult:
        org_ids = data.org_ids
        if org_ids is None:
            listed: OrgList = await workflow.execute_activity(
                ACT_LIST_ORGS,
                ListOrgsInput(),
                result_type=OrgList,
                start_to_close_timeout=DB_ACTIVITY_TIMEOUT,
                retry_policy=DB_RETRY,
            )
            org_ids = listed.org_ids
        now = workflow.now()
        result = RetentionResult()
        for org_id in org_ids:
            purged: OrgPurged = await workflow.execute_activity(
                ACT_PURGE_ORG,
                PurgeOrgInput(org_id=org_id, now=now),
                result_type=OrgPurged,
                start_to_close_timeout=PURGE_TIMEOUT,
                retry_policy=DB_RETRY,
            )
            result.orgs.append(purged)
        if data.org_ids is None:
            unowned: PurgeUnownedResult = await workflow.execute_activity(
                ACT_PURGE_UNOWNED,
                PurgeUnownedInput(now=now),
                result_type=PurgeUnownedResult,
                start_to_close_timeout=PURGE_TIMEOUT,
                retry_policy=DB_RETRY,
            )
            result.unowned_raw_payloads = unowned.raw_payloads
        return result
