"""A tool server's open circuit breaker raises one alert through the alert path every source
uses (rules, channels, delivery); the next successful call to that server resolves it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlmodel import Session, SQLModel, select

import core.tenancy.models  # noqa: F401  (registers the tables before create_all)
from core.db import make_engine
from core.monitoring.models import Alert
from core.tools.builtins import ToolOutcome
from core.tools.schemas import ToolCallRecord
from core.tools.service import BREAKER_OPEN, record_tool_call


def _record(status: Any, breaker: str | None, error: str | None = None) -> ToolCallRecord:
    return ToolCallRecord(
        org_id="o1",
        agent_id="a1",
        platform="vapi",
        call_id=None,
        caller_hash=None,
        actor="agent:a1",
        tool="list_slots",
        server="appointments",
        server_tool="list_slots",
        arguments={},
        status=status,
        outcome=ToolOutcome(error=error) if error else ToolOutcome(result="ok"),
        latency_ms=1.0,
        attempts=1,
        breaker=breaker,
        duplicate=False,
    )


def test_an_open_breaker_alerts_once_and_a_success_resolves_it(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'tools.db'}")
    SQLModel.metadata.create_all(engine)
    with Session(engine) as session:
        record_tool_call(session, "k" * 32, _record("ok", "closed"))
        assert session.exec(select(Alert)).all() == []  # a healthy call alerts nobody

        record_tool_call(session, "k" * 32, _record("unavailable", "open", "down"))
        record_tool_call(session, "k" * 32, _record("breaker_open", "open", "refused"))
        session.commit()
        alert = session.exec(select(Alert)).one()  # one alert while it stays open
        assert alert.kind == BREAKER_OPEN and alert.state == "firing"
        assert "appointments" in alert.message and alert.agent_id == "a1"

        record_tool_call(session, "k" * 32, _record("ok", "closed"))
        session.commit()
        session.refresh(alert)
        assert alert.state == "resolved"
    engine.dispose()
