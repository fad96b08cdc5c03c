"""A regression scenario built from a stored call loads with ``load_suite``, scripts the caller's
lines and expects the tools that answered."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from core.calls.models import Call, CallEvent
from evals.from_call import NoCallerTurnsError, scenario_from_call
from evals.scenarios import load_suite

TRANSCRIPT = [
    {"role": "agent", "text": "Thanks for calling Acme Dental, how can I help?"},
    {"role": "caller", "text": "I'd like to book a cleaning on Tuesday at 10:30."},
    {"role": "agent", "text": "Booked for Tuesday at 10:30."},
    {"role": "caller", "text": "Can I pay with my card [CARD]?"},
    {"role": "agent", "text": "Yes, at the front desk."},
]
TOOL_CALLS: list[dict[str, Any]] = [
    {
        "tool": "book_appointment",
        "arguments": {"day": "Tuesday", "time": "10:30", "phone": "+1••••••0123"},
        "status": "ok",
        "ok": True,
    },
    {"tool": "book_appointment", "arguments": {"day": "Tuesday"}, "status": "timeout", "ok": False},
]


def _call(**overrides: object) -> Call:
    fields: dict[str, object] = {
        "org_id": "org-acme",
        "agent_id": "demo",
        "platform": "vapi",
        "platform_call_id": "call-0001",
        "transcript": TRANSCRIPT,
        "prompt_version": "v3",
        "started_at": datetime(2026, 12, 1, 9, 30),
        "analysis": {"transferred": False},
    }
    return Call(**{**fields, **overrides})  # type: ignore[arg-type]


def _events() -> list[CallEvent]:
    recorded: list[tuple[str, dict[str, Any]]] = [
        ("context_request", {"latency_ms": 120.0, "prompt_version": "v3"}),
        ("knowledge_retrieval", {"chunk_ids": ["c1"], "freshness": ["fresh"]}),
        *(("tool_call", tc) for tc in TOOL_CALLS),
    ]
    return [
        CallEvent(
            org_id="org-acme",
            agent_id="demo",
            platform="vapi",
            platform_call_id="call-0001",
            type=kind,
            platform_type=kind,
            data=data,
        )
        for kind, data in recorded
    ]


def _load(tmp_path: Path, text: str) -> object:
    (tmp_path / "suite.yaml").write_text("name: regressions\n")
    (tmp_path / "from_call.yaml").write_text(text)
    return load_suite(tmp_path)


def test_the_scenario_loads_and_replays_the_callers_lines(tmp_path: Path) -> None:
    text = scenario_from_call(_call(), _events(), TOOL_CALLS)

    suite = _load(tmp_path, text)
    (scenario,) = suite.scenarios  # type: ignore[attr-defined]
    assert scenario.name == "regression vapi call-0001"
    assert scenario.agent == "demo" and scenario.version == 3
    assert scenario.turns == [
        "I'd like to book a cleaning on Tuesday at 10:30.",
        "Can I pay with my card [CARD]?",
    ]
    (expected,) = scenario.expect.tools_called  # the failed retry is not an expectation
    assert expected.name == "book_appointment"
    assert expected.matches("book_appointment", {"day": "tuesday", "time": "10:30", "phone": "x"})
    assert not expected.matches("book_appointment", {"day": "Tuesday", "time": "10:30"})
    assert scenario.expect.transfer is False and scenario.expect.max_turns == 5
    assert "1 knowledge retrieval" in scenario.description


def test_tool_call_events_stand_in_when_no_tool_calls_are_given(tmp_path: Path) -> None:
    text = scenario_from_call(_call(prompt_version=None), _events(), [])

    (scenario,) = _load(tmp_path, text).scenarios  # type: ignore[attr-defined]
    assert [t.name for t in scenario.expect.tools_called] == ["book_appointment"]
    assert scenario.version is None


def test_mappings_work_as_well_as_rows(tmp_path: Path) -> None:
    call = {"agent_id": "demo", "platform": "retell", "call_id": "c-2", "transcript": TRANSCRIPT}
    events = [{"type": "call_started", "data": {}}]

    text = scenario_from_call(call, events, [])

    (scenario,) = _load(tmp_path, text).scenarios  # type: ignore[attr-defined]
    assert scenario.name == "regression retell c-2" and scenario.expect.tools_called == []


def test_a_call_without_caller_lines_cannot_be_scripted() -> None:
    with pytest.raises(NoCallerTurnsError):
        scenario_from_call(_call(transcript=[{"role": "agent", "text": "Hello?"}]), [], [])
