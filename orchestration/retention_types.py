"""I/O dataclasses and ids of ``RetentionWorkflow`` and its activities.

Fields may be added (with defaults) safely; never renamed or removed once shipped. Inputs carry
organization ids and the workflow's clock, never data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

RETENTION_SCHEDULE_ID = "retention-purge"
RETENTION_WORKFLOW_ID = "retention-purge-run"
RETENTION_INTERVAL_S = 3600

ACT_LIST_ORGS = "retention.list_orgs"
ACT_PURGE_ORG = "retention.purge_org"
ACT_PURGE_UNOWNED = "retention.purge_unowned"


@dataclass
class RetentionInput:
    org_ids: list[str] | None = None  # None: every organization (what the schedule runs)


@dataclass
class ListOrgsInput:
    pass


@dataclass
class OrgList:
    org_ids: list[str] = field(default_factory=list)


@dataclass
class PurgeOrgInput:
    org_id: str
    now: datetime


@dataclass
class PurgeUnownedInput:
    now: datetime


@dataclass
class OrgPurged:
    org_id: str
    raw_payloads: int = 0
    transcripts: int = 0
    memories: int = 0


@dataclass
class PurgeUnownedResult:
    raw_payloads: int = 0


@dataclass
class RetentionResult:
    orgs: list[OrgPurged] = field(default_factory=list)
    unowned_raw_payloads: int = 0
