"""I/O dataclasses of PostCallWorkflow and its activities (one in, one out, ids rather than
transcripts), and the activities' names.

Fields may be added (with defaults) safely; never renamed or removed once shipped, because
they live in workflow histories. Nothing personal travels here: no transcript, summary, fact,
number or caller hash; activities load what they need by id and store what they derive, so a
history holds ids, counts and method names only. Fields that once carried text keep their
defaults and stay empty (histories recorded before may still hold them).
"""

from __future__ import annotations

from dataclasses import dataclass, field

ACT_INGEST = "post_call.ingest_call"
ACT_ANALYZE_LLM = "post_call.analyze_call_llm"
ACT_ANALYZE_RULES = "post_call.analyze_call_rules"
ACT_WRITE_MEMORIES = "post_call.write_memories"
ACT_SCORE = "post_call.score_call"
ACT_AUDIT = "post_call.record_audit"


@dataclass
class PostCallInput:
    inbox_id: int
    platform: str
    call_id: str
    revision: int = 1


@dataclass
class IngestResult:
    call_pk: int | None
    org_id: str
    agent_id: str
    caller_hash: str | None = None  # no longer sent: the hash identifies the caller
    superseded: bool = False
    # Reported by the worker that ran ingest: whether its deployment has an LLM configured.
    llm_available: bool = True


@dataclass
class CallInput:
    call_pk: int


@dataclass
class AnalysisResult:
    """The analysis is stored on the call (by id); only its shape travels."""

    summary: str = ""  # legacy: filled only in histories recorded before analyses were stored
    facts: list[list[str]] = field(default_factory=list)  # legacy, as above
    method: str = "extractive+rules"
    call_pk: int | None = None
    revision: int | None = None
    fact_count: int = 0


@dataclass
class WriteMemoryInput:
    call_pk: int
    summary: str = ""  # legacy: empty means "read the analysis stored on the call"
    facts: list[list[str]] = field(default_factory=list)  # legacy, as above
    method: str = ""


@dataclass
class WriteMemoryResult:
    memories: int
    facts_added: int
    facts_closed: int
    skipped_reason: str | None = None


@dataclass
class ScoreResult:
    score: float


@dataclass
class AuditInput:
    org_id: str
    action: str
    target: str
    detail: dict[str, str | int | float | bool | None] = field(default_factory=dict)


@dataclass
class PostCallResult:
    status: str
    call_pk: int | None = None
    analysis_method: str | None = None
    memories: int = 0
    facts_added: int = 0
    facts_closed: int = 0
    score: float | None = None
