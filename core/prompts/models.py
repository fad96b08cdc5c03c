"""Prompt tables: immutable versions, labels and their move history, experiments, rollouts and
their guard checks, and the single-row change marker the API caches poll.

A ``PromptVersion`` row is never updated or deleted once written: a change is a new version.
Everything here is scoped by ``org_id`` and ``agent_id``. No caller number is ever stored here;
experiments assign callers by a keyed hash computed at request time and keep no per-caller rows.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from core.db import utcnow


class PromptVersion(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("agent_id", "version", name="uq_promptversion_agent"),)

    id: int | None = Field(default=None, primary_key=True)
    org_id: str = Field(index=True, max_length=64)
    agent_id: str = Field(index=True, max_length=64)
    version: int
    template: str = Field(sa_column=Column(Text, nullable=False))
    variables: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    model: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    first_message: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    tools: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    # Checks the post-call scorecard runs on the agent's turns: [{name, must_say} or
    # {name, must_not_say}] (case-insensitive regexes; see ComplianceCheckSpec).
    compliance: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    message: str = Field(max_length=2000)
    content_hash: str = Field(max_length=64)
    created_by: str = Field(max_length=128)
    created_at: datetime = Field(default_factory=utcnow)


class PromptLabel(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("agent_id", "name", name="uq_promptlabel_agent"),)

    id: int | None = Field(default=None, primary_key=True)
    org_id: str = Field(index=True, max_length=64)
    agent_id: str = Field(index=True, max_length=64)
    name: str = Field(max_length=64)
    version: int
    protected: bool = False
    require_eval_gate: bool = False
    updated_by: str = Field(max_length=128)
    updated_at: datetime = Field(default_factory=utcnow)
    created_at: datetime = Field(default_factory=utcnow)


class PromptLabelMove(SQLModel, table=True):
    """Every label move, in order: what rollback reads to find the previous version."""

    __table_args__ = (Index("ix_promptlabelmove_label", "agent_id", "label"),)

    id: int | None = Field(default=None, primary_key=True)
    org_id: str = Field(index=True, max_length=64)
    agent_id: str = Field(max_length=64)
    label: str = Field(max_length=64)
    from_version: int | None = None
    to_version: int
    kind: str = Field(max_length=16)  # move | rollback | promote
    actor: str = Field(max_length=128)
    reason: str = Field(max_length=2000)
    at: datetime = Field(default_factory=utcnow)


class PromptExperiment(SQLModel, table=True):
    """A traffic split across versions. ``variants`` is ordered canary-first, control last:
    assignment walks cumulative weights in that order, so growing the canary's weight only
    moves control callers onto the canary, never the reverse."""

    __table_args__ = (Index("ix_promptexperiment_agent_status", "agent_id", "status"),)

    id: int | None = Field(default=None, primary_key=True)
    org_id: str = Field(index=True, max_length=64)
    agent_id: str = Field(max_length=64)
    name: str = Field(max_length=200)
    kind: str = Field(default="ab", max_length=16)  # ab | rollout
    status: str = Field(default="running", max_length=16)
    control_version: int
    variants: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    created_by: str = Field(max_length=128)
    reason: str = Field(default="", max_length=2000)
    stop_reason: str | None = Field(default=None, max_length=2000)
    started_at: datetime = Field(default_factory=utcnow)
    ended_at: datetime | None = None


class PromptRollout(SQLModel, table=True):
    """One canary rollout as the dashboard sees it; the workflow is the source of truth and
    writes its state here through activities."""

    id: int | None = Field(default=None, primary_key=True)
    org_id: str = Field(index=True, max_length=64)
    agent_id: str = Field(index=True, max_length=64)
    workflow_id: str = Field(max_length=200)
    run_id: str = Field(unique=True, max_length=64)
    experiment_id: int
    candidate_version: int
    control_version: int
    plan: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    status: str = Field(default="running", max_length=16)
    step_index: int = 0
    weight: float = 0.0
    step_started_at: datetime | None = None
    created_by: str = Field(max_length=128)
    reason: str = Field(default="", max_length=2000)
    outcome_reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    started_at: datetime = Field(default_factory=utcnow)
    ended_at: datetime | None = None


class PromptRolloutCheck(SQLModel, table=True):
    """One guard look: the sample sizes, each guard's statistic and the verdict."""

    id: int | None = Field(default=None, primary_key=True)
    rollout_id: int = Field(index=True)
    org_id: str = Field(max_length=64)
    step_index: int
    weight: float
    canary_n: int
    control_n: int
    step_canary_n: int
    verdict: str = Field(max_length=16)
    reason: str = Field(sa_column=Column(Text, nullable=False))
    metrics: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    at: datetime = Field(default_factory=utcnow)


class PromptRevision(SQLModel, table=True):
    """A single row (id 1) bumped in the same transaction as any change that alters what is
    served; API processes poll it and reload their cache only when it moved."""

    id: int = Field(default=1, primary_key=True)
    revision: int = 0
    updated_at: datetime = Field(default_factory=utcnow)
