"""A regressed eval run raises an alert through the alert path every source uses; a later
passing run of the same suite resolves it."""

from __future__ import annotations

from pathlib import Path

from sqlmodel import Session, SQLModel, select

import core.tenancy.models  # noqa: F401  (registers the tables before create_all)
from core.db import make_engine
from core.evals.models import EvalRun
from core.monitoring.models import Alert
from evals.execution import EVAL_REGRESSED, _alert_on_regression

ROWS = [
    {"key": "hours/angry", "verdict": "regressed"},
    {"key": "booking/none", "verdict": "pass"},
]


def _run(session: Session, run_id: str, status: str) -> EvalRun:
    run = EvalRun(
        id=run_id, org_id="o1", agent_id="a1", suite_name="demo", target_version=7, status=status
    )
    session.add(run)
    session.flush()
    return run


def test_a_regressed_run_alerts_and_a_passing_one_resolves(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'evals.db'}")
    SQLModel.metadata.create_all(engine)
    with Session(engine) as session:
        _alert_on_regression(session, _run(session, "r1", "regressed"), ROWS)
        session.commit()
        alert = session.exec(select(Alert)).one()
        assert alert.kind == EVAL_REGRESSED and alert.state == "firing"
        assert alert.agent_id == "a1" and "version 7" in alert.message
        assert alert.detail["scenarios"] == ["hours/angry"] and alert.detail["run_id"] == "r1"

        _alert_on_regression(session, _run(session, "r2", "inconclusive"), ROWS)
        session.commit()
        session.refresh(alert)
        assert alert.state == "firing"  # an inconclusive run clears nothing

        _alert_on_regression(session, _run(session, "r3", "passed"), [])
        session.commit()
        session.refresh(alert)
        assert alert.state == "resolved" and "r3" in (alert.resolution or "")
    engine.dispose()
