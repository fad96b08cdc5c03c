"""I/O dataclasses of the knowledge workflows and activities, the activities' names and the
business-key ids.

Fields may be added (with defaults) safely; never renamed or removed once shipped, because they
live in workflow histories. Inputs carry source ids, never content, settings or secrets.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

ACT_FETCH = "knowledge.fetch_source"
ACT_INGEST = "knowledge.ingest_source"
ACT_MARK_FRESH = "knowledge.mark_fresh"
ACT_MARK_FAILING = "knowledge.mark_failing"
ACT_AUDIT = "knowledge.record_refresh"
ACT_SWEEP = "knowledge.sweep_freshness"

SWEEP_SCHEDULE_ID = "kb-freshness-sweep"
SWEEP_INTERVAL_S = 300


def refresh_workflow_id(source_id: str) -> str:
    """One id per source: two refreshes of one source can never run at once."""
    return f"kb-refresh-{source_id}"


def refresh_schedule_id(source_id: str) -> str:
    return f"kb-refresh-schedule-{source_id}"


@dataclass
class RefreshInput:
    source_id: str
    reason: str = "manual"  # manual | schedule | created | content_updated
    requested_by: str = "system"
    force: bool = False  # ignore validators and the docstore: re-read and re-embed everything


@dataclass
class RefreshResult:
    source_id: str
    status: str  # updated | unchanged | failing | gone | skipped
    chunks_added: int = 0
    chunks_removed: int = 0
    chunks_kept: int = 0
    embedded: int = 0
    documents: int = 0
    documents_skipped: int = 0
    chunk_count: int = 0
    not_modified: bool = False
    error: str | None = None


@dataclass
class FetchInput:
    source_id: str
    checked_at: datetime
    force: bool = False


@dataclass
class FetchOutput:
    status: str  # changed | unchanged | gone
    content_hash: str | None = None
    not_modified: bool = False


@dataclass
class IngestInput:
    source_id: str
    content_hash: str
    force: bool = False


@dataclass
class IngestOutput:
    gone: bool = False
    chunks_added: int = 0
    chunks_removed: int = 0
    chunks_kept: int = 0
    embedded: int = 0
    reused: int = 0
    documents: int = 0
    documents_skipped: int = 0
    chunk_count: int = 0


@dataclass
class MarkFreshInput:
    source_id: str
    checked_at: datetime


@dataclass
class MarkFailingInput:
    source_id: str
    stage: str  # fetch | ingest
    error: str
    at: datetime


@dataclass
class RefreshAuditInput:
    source_id: str
    reason: str
    requested_by: str
    result: RefreshResult


@dataclass
class SweepInput:
    pass


@dataclass
class SweepActivityInput:
    now: datetime


@dataclass
class SweepResult:
    checked: int = 0
    newly_stale: list[str] = field(default_factory=list)
