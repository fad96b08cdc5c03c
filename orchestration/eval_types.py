"""I/O dataclasses and ids of ``EvalSuiteWorkflow`` and its activities.

Fields may be added (with defaults) safely; never renamed or removed once shipped. Inputs carry
a run id and case indexes, never suite files or transcripts (those stay in the database).
"""

from __future__ import annotations

from dataclasses import dataclass, field

ACT_EVAL_PREPARE = "evals.prepare_run"
ACT_EVAL_RUN_CASE = "evals.run_case"
ACT_EVAL_FINALIZE = "evals.finalize_run"
ACT_EVAL_CREATE_SCHEDULED = "evals.create_scheduled_run"
SIGNAL_CANCEL = "cancel"
QUERY_PROGRESS = "progress"


def eval_workflow_id(run_id: str) -> str:
    return f"eval-run-{run_id}"


def eval_nightly_schedule_id(agent_id: str, suite_name: str) -> str:
    return f"eval-nightly-{agent_id}-{suite_name}"


def eval_nightly_workflow_id(agent_id: str, suite_name: str) -> str:
    return f"eval-nightly-run-{agent_id}-{suite_name}"


@dataclass
class EvalSuiteInput:
    # Empty when a schedule starts the workflow: the run is then created from the registered
    # suite ``suite_name`` of ``agent_id``, on ``label``, by the first activity.
    run_id: str
    agent_id: str = ""
    suite_name: str = ""
    label: str = "production"


@dataclass
class CreateScheduledInput:
    agent_id: str
    suite_name: str
    label: str = "production"


@dataclass
class PrepareInput:
    run_id: str


@dataclass
class PreparedRun:
    total: int = 0
    concurrency: int = 1
    time_cap_s: float | None = None
    pending: list[int] = field(default_factory=list)  # case indexes without a stored result
    cancelled: bool = False  # cancelled (or finished) before it started
    cost_cap_usd: float | None = None  # stop scheduling cases once this much is spent
    spent_usd: float = 0.0  # by the cases already stored (a resumed run)


@dataclass
class RunCaseInput:
    run_id: str
    index: int


@dataclass
class CaseOutcome:
    index: int
    status: str  # passed | failed | skipped | error
    cancel_requested: bool = False
    cost_usd: float | None = 0.0  # the case's LLM cost; None: unknown (usage not reported)


@dataclass
class FinalizeInput:
    run_id: str
    cancelled: bool = False
    not_run_reason: str | None = None  # recorded on every case left without a result
    stop_reason: str | None = None  # why the run stopped early (a cap), shown on the run


@dataclass
class EvalRunResult:
    run_id: str
    status: str
    verdict: str | None = None
    done: int = 0
    total: int = 0
