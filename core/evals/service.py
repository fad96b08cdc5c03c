"""Eval runs in the database: register suites, create runs, record each case's result
(transcripts and traces redacted with the agent's PII policy, like stored calls), finish runs.
The caller commits."""

from __future__ import annotations

import uuid
from typing import Any

from sqlmodel import Session

from core.db import utcnow
from core.errors import ConflictError, NotFoundError
from core.evals import repository as repo
from core.evals.models import FINISHED_STATUSES, EvalCaseResult, EvalRun, EvalSuite
from core.evals.schemas import (
    EvalCasePublic,
    EvalCost,
    EvalRunPublic,
    EvalSuitePublic,
    Progress,
)
from core.pii.policy import PiiPolicy
from core.pii.redact import redact_json, redact_turns
from core.tenancy.models import Agent


def new_run_id() -> str:
    return uuid.uuid4().hex[:16]


class EvalService:
    def __init__(self, session: Session) -> None:
        self.session = session

    def _policy(self, agent_id: str) -> PiiPolicy:
        agent = self.session.get(Agent, agent_id)
        return PiiPolicy.from_stored(agent.pii_policy if agent is not None else None)

    # -- suites ---------------------------------------------------------------------------

    def register_suite(
        self, org_id: str, agent_id: str, name: str, files: dict[str, str]
    ) -> EvalSuite:
        suite = repo.get_suite(self.session, agent_id, name)
        if suite is None:
            suite = EvalSuite(org_id=org_id, agent_id=agent_id, name=name, files=files)
        else:
            suite.files, suite.updated_at = files, utcnow()
        self.session.add(suite)
        self.session.flush()
        return suite

    # -- runs -----------------------------------------------------------------------------

    def create_run(
        self,
        org_id: str,
        agent_id: str,
        suite_name: str,
        files: dict[str, str],
        total: int,
        *,
        label: str | None = None,
        version: int | None = None,
        tags: list[str] | None = None,
        repeats: int | None = None,
        baseline_run_id: str | None = None,
        cost_cap_usd: float | None = None,
    ) -> EvalRun:
        if baseline_run_id is not None:
            base = repo.get_run(self.session, baseline_run_id)
            if base is None or base.agent_id != agent_id:
                raise NotFoundError(f"no eval run '{baseline_run_id}' of agent '{agent_id}'")
        else:
            base = repo.latest_accepted(self.session, agent_id, suite_name)
        run = EvalRun(
            id=new_run_id(),
            org_id=org_id,
            agent_id=agent_id,
            suite_name=suite_name,
            files=files,
            total=total,
            target_label=label,
            target_version=version,
            tags=list(tags or []),
            repeats=repeats,
            baseline_run_id=base.id if base is not None else None,
            cost_cap_usd=cost_cap_usd,
        )
        self.session.add(run)
        self.session.flush()
        return run

    def require_run(self, run_id: str) -> EvalRun:
        run = repo.get_run(self.session, run_id)
        if run is None:
            raise NotFoundError(f"no eval run '{run_id}'")
        return run

    def start(self, run_id: str) -> EvalRun:
        run = self.require_run(run_id)
        if run.status == "queued" and not run.cancel_requested:
            run.status, run.started_at = "running", utcnow()
            self.session.add(run)
        return run

    def record_case(self, run_id: str, index: int, result: dict[str, Any]) -> None:
        """Store one case's result (again: replaces it) and update the run's counts."""
        run = self.require_run(run_id)
        policy = self._policy(run.agent_id)
        transcript = result.get("transcript") or []
        texts = redact_turns([str(t.get("text", "")) for t in transcript], policy)
        transcript = [{**t, "text": text} for t, text in zip(transcript, texts, strict=True)]
        trace = redact_json(result.get("trace") or [], policy)
        row = repo.get_case_result(self.session, run_id, index) or EvalCaseResult(
            run_id=run_id, case_index=index, scenario=result["scenario"], status="queued"
        )
        row.scenario = result["scenario"]
        row.persona = result.get("persona")
        row.repeat = int(result.get("repeat", 0))
        row.status = result["status"]
        row.passed = result["status"] == "passed"
        row.reason = result.get("reason") or None
        row.checks = redact_json(result.get("checks") or [], policy)  # type: ignore[assignment]
        row.transcript = transcript
        row.trace = trace if isinstance(trace, list) else []
        row.metrics = result.get("metrics") or {}
        row.seconds = float(result.get("seconds") or 0.0)
        self.session.add(row)
        self.session.flush()
        self._count(run)

    def _count(self, run: EvalRun) -> None:
        rows = repo.case_tallies(self.session, run.id)
        run.done = len(rows)
        run.passed = sum(1 for status, _ in rows if status == "passed")
        run.skipped = sum(1 for status, _ in rows if status == "skipped")
        run.failed = run.done - run.passed - run.skipped
        metrics = [m for _, m in rows]
        run.prompt_tokens = sum(int(m.get("prompt_tokens") or 0) for m in metrics)
        run.completion_tokens = sum(int(m.get("completion_tokens") or 0) for m in metrics)
        costs = [m.get("cost_usd") for m in metrics if "cost_usd" in m]
        run.cost_usd = round(sum(float(c) for c in costs if c is not None), 6)
        run.cost_unknown = sum(1 for c in costs if c is None)
        self.session.add(run)

    def finish(
        self,
        run_id: str,
        status: str,
        verdict: str | None = None,
        scenarios: list[dict[str, Any]] | None = None,
        error: str | None = None,
        stop_reason: str | None = None,
    ) -> EvalRun:
        run = self.require_run(run_id)
        if run.status in FINISHED_STATUSES:
            return run
        run.status, run.verdict, run.error = status, verdict, error
        run.stop_reason = stop_reason
        run.scenarios = scenarios if scenarios is not None else run.scenarios
        run.finished_at = utcnow()
        self._count(run)
        self.session.add(run)
        return run

    def request_cancel(self, run_id: str) -> EvalRun:
        run = self.require_run(run_id)
        if run.status in FINISHED_STATUSES:
            raise ConflictError(f"eval run '{run_id}' has already finished ({run.status})")
        run.cancel_requested = True
        if run.status == "queued":
            run.status, run.finished_at = "cancelled", utcnow()
        self.session.add(run)
        return run

    def accept(self, run_id: str) -> EvalRun:
        run = self.require_run(run_id)
        if run.status not in FINISHED_STATUSES or run.status in ("cancelled", "error"):
            raise ConflictError(
                f"eval run '{run_id}' is {run.status}; only a completed run can be a baseline"
            )
        run.accepted = True
        self.session.add(run)
        return run


def suite_public(suite: EvalSuite) -> EvalSuitePublic:
    return EvalSuitePublic(
        agent_id=suite.agent_id,
        name=suite.name,
        files=sorted(suite.files),
        created_at=suite.created_at,
        updated_at=suite.updated_at,
    )


def run_cost(run: EvalRun) -> EvalCost:
    # Some cases unknown and nothing known spent: say unknown rather than 0.
    known = run.cost_unknown == 0 or run.cost_usd > 0
    return EvalCost(
        prompt_tokens=run.prompt_tokens,
        completion_tokens=run.completion_tokens,
        cost_usd=run.cost_usd if known else None,
        cost_unknown_runs=run.cost_unknown,
        cost_cap_usd=run.cost_cap_usd,
    )


def run_warnings(run: EvalRun) -> list[str]:
    """A capped run some of whose cases' cost is unknown: the cap could not be enforced."""
    if not run.cost_unknown or run.cost_cap_usd is None:
        return []
    return [
        f"cost unknown for {run.cost_unknown} of {run.done} case(s): the LLM did not report "
        "token usage or no price is configured for its model (BACKLINE_EVAL_PRICE_PER_1K_*); "
        f"the cost cap {run.cost_cap_usd:.2f} USD could not be fully enforced"
    ]


def run_public(run: EvalRun, cases: list[EvalCaseResult] | None = None) -> EvalRunPublic:
    return EvalRunPublic(
        id=run.id,
        org_id=run.org_id,
        agent_id=run.agent_id,
        suite=run.suite_name,
        label=run.target_label,
        version=run.target_version,
        tags=run.tags,
        status=run.status,
        verdict=run.verdict,
        progress=Progress(done=run.done, total=run.total),
        passed=run.passed,
        failed=run.failed,
        skipped=run.skipped,
        error=run.error,
        baseline_run_id=run.baseline_run_id,
        accepted=run.accepted,
        created_at=run.created_at,
        started_at=run.started_at,
        finished_at=run.finished_at,
        scenarios=run.scenarios,
        cost=run_cost(run),
        stop_reason=run.stop_reason,
        warnings=run_warnings(run),
        cases=None
        if cases is None
        else [
            EvalCasePublic(
                index=c.case_index,
                scenario=c.scenario,
                persona=c.persona,
                repeat=c.repeat,
                status=c.status,
                passed=c.passed,
                reason=c.reason,
                checks=c.checks,
                transcript=c.transcript,
                trace=c.trace,
                metrics=c.metrics,
                seconds=c.seconds,
            )
            for c in cases
        ],
    )
