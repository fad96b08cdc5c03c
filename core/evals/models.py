"""Eval tables: registered suites, runs, per-case results."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from core.db import utcnow

RUN_STATUSES = (
    "queued",
    "running",
    "passed",
    "failed",
    "regressed",
    "inconclusive",
    "cancelled",
    "error",
)
FINISHED_STATUSES = frozenset(RUN_STATUSES) - {"queued", "running"}


class EvalSuite(SQLModel, table=True):
    """A suite registered for an agent (the nightly run and the release gate use it): its YAML
    files as ``{relative path: text}``."""

    __table_args__ = (UniqueConstraint("agent_id", "name"),)

    id: int | None = Field(default=None, primary_key=True)
    org_id: str = Field(index=True, max_length=64)
    agent_id: str = Field(index=True, max_length=64)
    name: str = Field(max_length=200)
    files: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class EvalRun(SQLModel, table=True):
    id: str = Field(primary_key=True, max_length=32)
    org_id: str = Field(index=True, max_length=64)
    agent_id: str = Field(index=True, max_length=64)
    suite_name: str = Field(max_length=200)
    target_label: str | None = Field(default=None, max_length=64)
    target_version: int | None = None
    tags: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    repeats: int | None = None
    files: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    status: str = Field(default="queued", max_length=16, index=True)
    verdict: str | None = Field(default=None, max_length=16)
    # per scenario x persona: passed/runs/skipped and its verdict against the baseline
    scenarios: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    total: int = 0
    done: int = 0
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    error: str | None = Field(default=None, sa_column=Column(Text))
    baseline_run_id: str | None = Field(default=None, max_length=32)
    accepted: bool = False
    cancel_requested: bool = False
    # LLM cost: the cap (USD) that stops scheduling new cases once reached, the tokens and
    # cost of the cases stored so far (``cost_usd`` sums the cases whose cost is known;
    # ``cost_unknown`` counts the others), and why a run stopped before every case ran.
    cost_cap_usd: float | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    cost_unknown: int = 0
    stop_reason: str | None = Field(default=None, sa_column=Column(Text))
    created_at: datetime = Field(default_factory=utcnow, index=True)
    started_at: datetime | None = None
    finished_at: datetime | None = None


class EvalCaseResult(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("run_id", "case_index"),)

    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(foreign_key="evalrun.id", index=True, max_length=32)
    case_index: int
    scenario: str = Field(max_length=200)
    persona: str | None = Field(default=None, max_length=100)
    repeat: int = 0
    status: str = Field(max_length=16)  # passed | failed | skipped | error
    passed: bool = False
    reason: str | None = Field(default=None, sa_column=Column(Text))
    checks: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    transcript: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    trace: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    metrics: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    seconds: float = 0.0
    created_at: datetime = Field(default_factory=utcnow)
