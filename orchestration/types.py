"""Workflow and activity I/O dataclasses: one in, one out, ids rather than transcripts.

Fields may be added (with defaults) safely; never renamed or removed once shipped, because
they live in workflow histories.
"""

from __future__ import annotations

from dataclasses import dataclass, field


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
    caller_hash: str | None
    superseded: bool = False
    # Reported by the worker that ran ingest: whether its deployment has an LLM configured.
    llm_available: bool = True


@dataclass
class CallInput:
    call_pk: int


@dataclass
class AnalysisResult:
    summary: str
    facts: list[list[str]] = field(default_factory=list)
    method: str = "extractive+rules"


@dataclass
class WriteMemoryInput:
    call_pk: int
    summary: str
    facts: list[list[str]]
    method: str


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
