"""The release gate over stored eval runs: a prompt version may be promoted to a label that
requires it when every eval suite registered for the agent has a ``passed`` run of that
version (a run that showed no regression against its baseline with enough runs to tell;
``inconclusive`` is not a pass)."""

from __future__ import annotations

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from core.evals import repository as repo
from core.evals.models import EvalRun
from core.prompts.ports import NO_SUITE, EvalGateResult


class StoredRunsEvalGate:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def check(self, org_id: str, agent_id: str, version: int, *, required: bool) -> EvalGateResult:
        with Session(self._engine) as session:
            suites = repo.list_suites(session, agent_id)
            if not suites:
                if required:
                    return EvalGateResult(
                        False,
                        f"{NO_SUITE}; this label requires a passing eval suite before promotion "
                        "(register one with backline eval suite push, or turn "
                        "require_eval_gate off)",
                    )
                return EvalGateResult(True, f"{NO_SUITE} (not required)")
            missing = []
            for suite in suites:
                stmt = (
                    select(EvalRun)
                    .where(
                        EvalRun.agent_id == agent_id,
                        EvalRun.suite_name == suite.name,
                        EvalRun.target_version == version,
                        col(EvalRun.finished_at).is_not(None),
                    )
                    .order_by(col(EvalRun.finished_at).desc())
                )
                latest = session.exec(stmt).first()
                if latest is None or latest.status != "passed":
                    found = f"its last run is {latest.status}" if latest else "no run"
                    missing.append(f"'{suite.name}' ({found})")
        if not missing:
            return EvalGateResult(True, f"eval suites passed on version {version}")
        detail = (
            f"version {version} has no passing eval run of suite {', '.join(missing)}; run "
            f"`backline eval run {agent_id} <suite folder> --version {version}`"
        )
        if required:
            return EvalGateResult(False, detail)
        return EvalGateResult(True, f"{detail} (not required)")
