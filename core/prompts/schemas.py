"""Prompt API schemas: versions, diffs, labels, experiments, rollouts and the status view."""

from __future__ import annotations

import re
from datetime import datetime
from itertools import pairwise
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, PlainSerializer, model_validator

from core.db import INT_COLUMN_MAX

LABEL_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
TOOL_NAME_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
PRODUCTION = "production"
STAGING = "staging"

Scalar = str | int | float | bool
# A guard look's time as the rollout views have always written it: ISO 8601 with a +00:00 offset.
LookTime = Annotated[
    datetime, PlainSerializer(lambda at: at.isoformat(), return_type=str, when_used="json")
]


def version_ref(version: int) -> str:
    """How a version is named on calls and in metrics: ``v3``."""
    return f"v{version}"


class ToolSpec(BaseModel):
    name: str = Field(pattern=TOOL_NAME_PATTERN)
    description: str | None = Field(default=None, max_length=2000)
    parameters: dict[str, Any] | None = Field(
        default=None, description="JSON schema of the arguments (built-in tools fill their own)"
    )


COMPLIANCE_NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
MAX_COMPLIANCE_CHECKS = 20


class ComplianceCheckSpec(BaseModel):
    """One check of the agent's turns, run by the post-call scorecard: ``must_say`` passes
    when some agent turn matches, ``must_not_say`` when none does. Patterns are Python regexes
    matched case-insensitively (``"recorded|recording"``, ``"\\bguarantee"``)."""

    name: str = Field(pattern=COMPLIANCE_NAME_PATTERN, description="e.g. 'recording_notice'")
    must_say: str | None = Field(default=None, min_length=1, max_length=300)
    must_not_say: str | None = Field(default=None, min_length=1, max_length=300)

    @model_validator(mode="after")
    def _one_rule(self) -> ComplianceCheckSpec:
        rules = [r for r in (self.must_say, self.must_not_say) if r is not None]
        if len(rules) != 1:
            raise ValueError(f"check '{self.name}' needs exactly one of must_say, must_not_say")
        try:
            re.compile(rules[0])
        except re.error as exc:
            raise ValueError(f"check '{self.name}': invalid pattern ({exc})") from None
        return self


class PromptVersionCreate(BaseModel):
    template: str = Field(
        min_length=1,
        max_length=100_000,
        description="System prompt: Backline fills its own {{backline_name}} variables; any "
        "other {{name}} is the platform's to fill (see 'variables' for defaults)",
    )
    variables: dict[str, Scalar] = Field(
        default_factory=dict,
        description="Defaults of the platform variables the version uses: sent with the "
        "platform's variables (VAPI variableValues, Retell dynamic variables, the Bland "
        "dynamic-data reply) unless the call sets its own ('timezone' also sets the clock)",
    )
    model: dict[str, Any] = Field(
        default_factory=dict,
        description="Model settings: 'provider' and 'model' are required when given "
        "(e.g. temperature, maxTokens, retell_agent_id for a Retell agent override)",
    )
    first_message: str | None = Field(default=None, max_length=4000)
    tools: list[ToolSpec] = Field(default_factory=list)
    compliance: list[ComplianceCheckSpec] = Field(
        default_factory=list,
        max_length=MAX_COMPLIANCE_CHECKS,
        description="Checks the post-call scorecard runs on the agent's turns "
        "([{name, must_say} or {name, must_not_say}], case-insensitive regexes)",
    )
    message: str = Field(min_length=1, max_length=2000, description="What changed and why")

    @model_validator(mode="after")
    def _unique_checks(self) -> PromptVersionCreate:
        names = [c.name for c in self.compliance]
        if len(set(names)) != len(names):
            raise ValueError("compliance check names must be unique")
        return self


class PromptVersionPublic(BaseModel):
    agent_id: str
    version: int
    ref: str
    template: str
    variables: dict[str, Any]
    model: dict[str, Any]
    first_message: str | None
    tools: list[dict[str, Any]]
    compliance: list[dict[str, Any]] = Field(default_factory=list)
    message: str
    content_hash: str
    created_by: str
    created_at: datetime
    labels: list[str] = Field(default_factory=list)


class PushResult(PromptVersionPublic):
    created: bool = Field(description="False when identical content already had this version")


class FieldChanges(BaseModel):
    added: dict[str, Any] = Field(default_factory=dict)
    removed: dict[str, Any] = Field(default_factory=dict)
    changed: dict[str, dict[str, Any]] = Field(default_factory=dict)


class VersionDiff(BaseModel):
    agent_id: str
    from_version: int
    to_version: int
    changed: list[str]
    template: str = Field(description="Unified diff of the system prompt")
    first_message: str
    model: FieldChanges
    variables: FieldChanges
    tools: FieldChanges
    message: str = Field(description="The newer version's change message")


class LabelMove(BaseModel):
    version: int = Field(strict=True, ge=1, le=INT_COLUMN_MAX)
    reason: str = Field(min_length=3, max_length=2000, description="Why (kept in the audit)")
    override_eval_gate: bool = Field(
        default=False,
        description="Move even though the eval gate refuses: needs the release scope; the "
        "override and its reason are audited (prompt.label.gate_override)",
    )


class LabelRollback(BaseModel):
    reason: str = Field(min_length=3, max_length=2000)
    to_version: int | None = Field(
        strict=True,
        default=None,
        ge=1,
        le=INT_COLUMN_MAX,
        description="Default: the version the label pointed at before",
    )


class LabelPolicy(BaseModel):
    protected: bool | None = Field(
        default=None, description="Only the release scope may move a protected label"
    )
    require_eval_gate: bool | None = Field(
        default=None, description="Moving the label needs a passing eval suite"
    )
    reason: str = Field(min_length=3, max_length=2000)


class LabelPublic(BaseModel):
    name: str
    version: int
    ref: str
    protected: bool
    require_eval_gate: bool
    updated_by: str
    updated_at: datetime


class LabelMoveResult(BaseModel):
    label: LabelPublic
    from_version: int | None
    eval_gate: str


class LabelMovePublic(BaseModel):
    label: str
    from_version: int | None
    to_version: int
    kind: str
    actor: str
    reason: str
    at: datetime


class VariantIn(BaseModel):
    version: int = Field(strict=True, ge=1, le=INT_COLUMN_MAX)
    weight: float = Field(strict=True, gt=0, le=1)


class ExperimentCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    variants: list[VariantIn] = Field(
        min_length=1, description="Versions under test; control receives the remaining weight"
    )
    control_version: int | None = Field(
        strict=True,
        default=None,
        ge=1,
        le=INT_COLUMN_MAX,
        description="Default: the version labelled production",
    )
    reason: str = Field(min_length=3, max_length=2000)

    @model_validator(mode="after")
    def _weights_fit(self) -> ExperimentCreate:
        total = sum(v.weight for v in self.variants)
        if total > 1 + 1e-9:
            raise ValueError(
                f"variant weights sum to {total:.3f}; they must leave room for control"
            )
        versions = [v.version for v in self.variants]
        if len(set(versions)) != len(versions):
            raise ValueError("each version may appear once among the variants")
        return self


class ExperimentStop(BaseModel):
    reason: str = Field(min_length=3, max_length=2000)


class VariantPublic(BaseModel):
    version: int
    weight: float


class ExperimentPublic(BaseModel):
    id: int
    agent_id: str
    name: str
    kind: str
    status: str
    control_version: int
    variants: list[VariantPublic]
    created_by: str
    reason: str
    stop_reason: str | None
    started_at: datetime
    ended_at: datetime | None


class Interval(BaseModel):
    low: float | None
    high: float | None


class VersusControl(BaseModel):
    metric: str
    diff: float | None
    ci: Interval = Field(description="Always-valid 95% CI of variant minus control")
    verdict: str


class VariantResult(BaseModel):
    version: int
    ref: str
    role: Literal["control", "variant"]
    weight: float
    calls: int
    score: float | None
    score_ci95: Interval
    task_completion: float | None
    transfer_rate: float | None
    tool_failure_rate: float | None
    latency_ms: float | None
    versus_control: list[VersusControl] = Field(default_factory=list)
    verdict: str


class ExperimentResults(BaseModel):
    experiment: ExperimentPublic
    variants: list[VariantResult]
    verdict: str
    summary: str


# A rollout step holds at most this long (and 365 days fit any timer the workflow sets).
MAX_STEP_S = 365 * 86400


class RolloutStepIn(BaseModel):
    weight: float = Field(strict=True, gt=0, le=1)
    hold_s: float = Field(
        strict=True, ge=0, le=MAX_STEP_S, description="Minimum time at this weight"
    )
    min_canary_calls: int = Field(
        strict=True,
        ge=0,
        le=INT_COLUMN_MAX,
        description="Canary calls needed in this step (at least the guards' 20 per arm)",
    )
    max_duration_s: float = Field(
        strict=True,
        gt=0,
        le=MAX_STEP_S,
        description="Past this without a look that tested the guards the rollout pauses and alerts",
    )


DEFAULT_STEPS: tuple[RolloutStepIn, ...] = (
    RolloutStepIn(weight=0.05, hold_s=1800, min_canary_calls=50, max_duration_s=86400),
    RolloutStepIn(weight=0.25, hold_s=1800, min_canary_calls=100, max_duration_s=86400),
    RolloutStepIn(weight=0.50, hold_s=1800, min_canary_calls=100, max_duration_s=86400),
    RolloutStepIn(weight=1.00, hold_s=1800, min_canary_calls=100, max_duration_s=86400),
)


class RolloutCreate(BaseModel):
    candidate_version: int | None = Field(strict=True, default=None, ge=1, le=INT_COLUMN_MAX)
    candidate_label: str | None = Field(default=None, pattern=LABEL_PATTERN)
    steps: list[RolloutStepIn] | None = Field(
        default=None, description="Default: 5% -> 25% -> 50% -> 100%, 30 min holds"
    )
    check_interval_s: float = Field(strict=True, default=60.0, ge=0.1, le=3600)
    reason: str = Field(min_length=3, max_length=2000)

    @model_validator(mode="after")
    def _one_candidate_and_rising_steps(self) -> RolloutCreate:
        if (self.candidate_version is None) == (self.candidate_label is None):
            raise ValueError("name the candidate by candidate_version or candidate_label")
        weights = [s.weight for s in self.steps or DEFAULT_STEPS]
        if any(b <= a for a, b in pairwise(weights)):
            raise ValueError("step weights must rise (a canary's callers must never move back)")
        return self


class RolloutAction(BaseModel):
    reason: str = Field(default="", max_length=2000)


class RolloutPublic(BaseModel):
    id: int
    agent_id: str
    workflow_id: str
    run_id: str
    experiment_id: int
    candidate_version: int
    control_version: int
    plan: list[dict[str, Any]]
    status: str
    step_index: int
    weight: float
    step_started_at: datetime | None
    created_by: str
    reason: str
    outcome_reason: str | None
    started_at: datetime
    ended_at: datetime | None


class RolloutCheckPublic(BaseModel):
    """One guard look of a rollout: samples, each guard's statistic, the verdict."""

    at: LookTime
    step_index: int
    weight: float
    canary_n: int
    control_n: int
    step_canary_n: int
    verdict: str
    reason: str
    metrics: dict[str, Any]


class RolloutLastCheck(BaseModel):
    """The latest guard look, as the current-rollout view shows it."""

    at: LookTime
    verdict: str
    reason: str
    metrics: dict[str, Any]


class CurrentRollout(BaseModel):
    rollout: RolloutPublic
    live: dict[str, Any] | None = Field(
        description="While the rollout runs, its live status (workflow query); null otherwise "
        "or when no worker answers"
    )
    last_check: RolloutLastCheck | None


class RolloutStarted(BaseModel):
    workflow_id: str
    run_id: str | None
    candidate_version: int
    control_version: int


class ServedPlan(BaseModel):
    """What a caller of this agent is served right now."""

    mode: Literal["none", "label", "experiment"]
    version: int | None = None
    experiment_id: int | None = None
    split: list[VariantPublic] = Field(default_factory=list)


class PromptStatus(BaseModel):
    agent_id: str
    versions: int
    latest_version: int | None
    labels: list[LabelPublic]
    served: ServedPlan
    experiment: ExperimentPublic | None
    rollout: RolloutPublic | None
    live: dict[str, Any] | None = Field(
        default=None, description="The running rollout's live status (workflow query)"
    )
