"""Eval queries. Returns models or None; never commits."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, delete, select

from core.evals.models import EvalCaseResult, EvalRun, EvalSuite


def get_suite(session: Session, agent_id: str, name: str) -> EvalSuite | None:
    return session.exec(
        select(EvalSuite).where(EvalSuite.agent_id == agent_id, EvalSuite.name == name)
    ).first()


def delete_suite(session: Session, agent_id: str, name: str) -> bool:
    suite = get_suite(session, agent_id, name)
    if suite is None:
        return False
    session.delete(suite)
    session.flush()
    return True


def list_suites(session: Session, agent_id: str) -> list[EvalSuite]:
    stmt = select(EvalSuite).where(EvalSuite.agent_id == agent_id).order_by(col(EvalSuite.name))
    return list(session.exec(stmt))


def get_run(session: Session, run_id: str) -> EvalRun | None:
    return session.get(EvalRun, run_id)


def list_runs(
    session: Session,
    org_id: str | None,
    agent_id: str | None = None,
    suite_name: str | None = None,
    limit: int = 50,
) -> list[EvalRun]:
    """Newest first; ``org_id`` None: every organization (the operator)."""
    stmt = select(EvalRun)
    if org_id is not None:
        stmt = stmt.where(EvalRun.org_id == org_id)
    if agent_id is not None:
        stmt = stmt.where(EvalRun.agent_id == agent_id)
    if suite_name is not None:
        stmt = stmt.where(EvalRun.suite_name == suite_name)
    stmt = stmt.order_by(col(EvalRun.created_at).desc(), col(EvalRun.id).desc()).limit(limit)
    return list(session.exec(stmt))


def latest_accepted(
    session: Session, agent_id: str, suite_name: str, before: str | None = None
) -> EvalRun | None:
    """The newest accepted run of this agent's suite (other than ``before``): the baseline."""
    stmt = select(EvalRun).where(
        EvalRun.agent_id == agent_id,
        EvalRun.suite_name == suite_name,
        col(EvalRun.accepted).is_(True),
    )
    if before is not None:
        stmt = stmt.where(EvalRun.id != before)
    return session.exec(stmt.order_by(col(EvalRun.created_at).desc())).first()


def case_results(session: Session, run_id: str) -> list[EvalCaseResult]:
    stmt = (
        select(EvalCaseResult)
        .where(EvalCaseResult.run_id == run_id)
        .order_by(col(EvalCaseResult.case_index))
    )
    return list(session.exec(stmt))


def case_tallies(session: Session, run_id: str) -> list[tuple[str, dict[str, Any]]]:
    """(status, metrics) of each stored case of the run: what the run's counts need, without
    the transcripts, traces and checks."""
    stmt = select(EvalCaseResult.status, EvalCaseResult.metrics).where(
        EvalCaseResult.run_id == run_id
    )
    return [(status, dict(metrics or {})) for status, metrics in session.exec(stmt)]


def get_case_result(session: Session, run_id: str, index: int) -> EvalCaseResult | None:
    return session.exec(
        select(EvalCaseResult).where(
            EvalCaseResult.run_id == run_id, EvalCaseResult.case_index == index
        )
    ).first()


def delete_case_results(session: Session, run_id: str) -> None:
    session.exec(delete(EvalCaseResult).where(col(EvalCaseResult.run_id) == run_id))
