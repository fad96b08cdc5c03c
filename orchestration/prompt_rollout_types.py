"""I/O dataclasses of PromptRolloutWorkflow, its activities, signals and query, and the
activities' names.

Fields may be added (with defaults) safely; never renamed or removed once shipped, because
they live in workflow histories. Inputs carry ids and the plan, never settings or secrets.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ACT_BEGIN = "prompts.begin_rollout"
ACT_SET_WEIGHT = "prompts.set_canary_weight"
ACT_CHECK = "prompts.check_guards"
ACT_ROLL_BACK = "prompts.roll_back"
ACT_PROMOTE = "prompts.promote"
ACT_SET_STATUS = "prompts.set_rollout_status"


@dataclass
class RolloutStep:
    weight: float
    hold_s: float
    min_canary_calls: int
    max_duration_s: float


@dataclass
class CheckSummary:
    """One guard look as the status query shows it (the full look is in the database)."""

    at: str
    step_index: int
    weight: float
    verdict: str
    canary_n: int
    control_n: int
    step_canary_n: int
    canary_score: float | None = None
    control_score: float | None = None
    reason: str = ""


@dataclass
class RolloutResume:
    """State carried across continue-as-new; None on a fresh start."""

    rollout_id: int
    experiment_id: int
    control_version: int
    step_index: int
    step_elapsed_s: float
    step_budget_s: float
    paused: bool
    history: list[CheckSummary] = field(default_factory=list)


@dataclass
class RolloutInput:
    org_id: str
    agent_id: str
    candidate_version: int
    steps: list[RolloutStep]
    check_interval_s: float
    actor: str
    reason: str
    resume: RolloutResume | None = None


@dataclass
class RolloutSignal:
    actor: str = "unknown"
    reason: str = ""


@dataclass
class RolloutStatus:
    state: str
    agent_id: str
    candidate_version: int
    control_version: int | None
    rollout_id: int | None
    step_index: int
    steps: int
    weight: float
    weights: list[float]
    step_elapsed_s: float
    paused: bool
    canary_n: int = 0
    control_n: int = 0
    step_canary_n: int = 0
    last_verdict: str | None = None
    reason: str = ""
    history: list[CheckSummary] = field(default_factory=list)


@dataclass
class RolloutResult:
    outcome: str  # promoted | rolled_back | aborted
    reason: str
    step_index: int
    rollout_id: int


@dataclass
class BeginRolloutInput:
    agent_id: str
    candidate_version: int
    steps: list[RolloutStep]
    actor: str
    reason: str
    workflow_id: str
    run_id: str


@dataclass
class BeginRolloutResult:
    rollout_id: int
    experiment_id: int
    control_version: int


@dataclass
class SetWeightInput:
    rollout_id: int
    step_index: int
    weight: float


@dataclass
class GuardCheckInput:
    rollout_id: int
    step_index: int


@dataclass
class GuardCheckResult:
    verdict: str  # ok | breach | insufficient
    reason: str
    canary_n: int
    control_n: int
    step_canary_n: int
    canary_score: float | None = None
    control_score: float | None = None
    breached: list[str] = field(default_factory=list)


@dataclass
class FinishInput:
    rollout_id: int
    outcome: str  # rolled_back | aborted | promoted
    actor: str
    reason: str
    alert: bool = False


@dataclass
class PromoteResult:
    promoted: bool
    reason: str


@dataclass
class StatusInput:
    rollout_id: int
    status: str  # running | paused
    actor: str
    reason: str
    alert: bool = False
