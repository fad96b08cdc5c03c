"""The release gate over stored eval runs."""

from __future__ import annotations

from sqlmodel import Session

from core.db import make_engine
from core.evals.gate import StoredRunsEvalGate
from core.evals.service import EvalService

FILES = {"suite.yaml": "name: booking\n", "a.yaml": "name: a\nturns: [x]\n"}


def test_gate_needs_a_passing_run_of_the_version_for_every_suite(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    gate = StoredRunsEvalGate(engine)
    assert not gate.check("o", "ag", 3, required=True).passed  # no suite registered
    assert gate.check("o", "ag", 3, required=False).passed
    with Session(engine) as session:
        service = EvalService(session)
        service.register_suite("o", "ag", "booking", FILES)
        run = service.create_run("o", "ag", "booking", FILES, 1, version=3)
        service.start(run.id)
        service.finish(run.id, "inconclusive")
        session.commit()
    refused = gate.check("o", "ag", 3, required=True)
    assert not refused.passed and "'booking' (its last run is inconclusive)" in refused.detail
    with Session(engine) as session:
        service = EvalService(session)
        run = service.create_run("o", "ag", "booking", FILES, 1, version=3)
        service.start(run.id)
        service.finish(run.id, "passed")
        session.commit()
    assert gate.check("o", "ag", 3, required=True).passed
    assert not gate.check("o", "ag", 4, required=True).passed  # another version: no run
    engine.dispose()
