"""Dashboard pages rendered by streamlit's AppTest against a seeded SQLite file.

The app runs from its real entry file (``st.navigation`` and all); pages are reached with
``switch_page`` the way a click in the sidebar reaches them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import streamlit as st
from sqlmodel import Session
from streamlit.testing.v1 import AppTest

from core.calls.models import Call
from core.db import make_engine
from core.pii.phone import caller_hash
from tests.dashboard.seed import (
    AGENT_ID,
    CARD,
    MARIA,
    OLIVER,
    ORG_ID,
    QUIET_AGENT_ID,
    SECRET_KEY,
    Seed,
)

APP = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"
MEMORY_PAGE = "app_pages/memory.py"
# The first run imports pandas and plotly; the default 3 s is too tight on a cold machine.
TIMEOUT_S = 60


def _open(page: str | None = None) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT_S).run()
    if page is not None:
        at.switch_page(page).run()
    _assert_no_exception(at)
    return at


def _assert_no_exception(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def _table(at: AppTest, key: str) -> pd.DataFrame:
    """The table inside the container keyed ``key`` (read-only tables carry no key of their own)."""
    frame: pd.DataFrame = at.get_by_key(key).dataframe[0].value
    return frame


def _page_text(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption]
    parts += [str(o) for s in at.selectbox for o in s.options]
    return "\n".join(parts)


def test_calls_page_lists_the_seeded_calls_with_masked_callers(seeded_db: Seed) -> None:
    at = _open()

    assert at.title[0].value == "Calls"
    table = _table(at, "calls_table")
    assert list(table["call_id"]) == [c.call_id for c in reversed(seeded_db.calls)]
    assert set(table["platform"]) == {"vapi", "retell"}
    assert set(table["caller"]) == {seeded_db.calls[0].caller_display, "+44••••••0958"}
    assert table["score"].notna().all()
    assert "Oliver asked whether Delta Dental" in table["summary"].iloc[0]
    assert len(at.get("plotly_chart")) >= 2
    for number in (MARIA, OLIVER):
        assert number not in table.to_csv()
        assert number not in _page_text(at)


def test_agent_filter_narrows_calls_and_shows_empty_state(seeded_db: Seed) -> None:
    at = _open()

    at.selectbox(key="calls_agent").select(AGENT_ID).run()
    _assert_no_exception(at)
    assert len(_table(at, "calls_table")) == len(seeded_db.calls)

    at.selectbox(key="calls_agent").select(QUIET_AGENT_ID).run()
    _assert_no_exception(at)
    assert any("No calls recorded yet" in i.value for i in at.info)
    assert not at.dataframe


def test_selecting_a_call_shows_its_events_transcript_score_and_memories(
    seeded_db: Seed,
) -> None:
    first = seeded_db.calls[0]
    at = _open()

    at.selectbox(key="trace_call").select((AGENT_ID, first.platform, first.call_id)).run()
    _assert_no_exception(at)

    events = _table(at, "trace_events")
    assert list(events["type"]) == [
        "call_started",
        "context_request",
        "knowledge_retrieval",
        "tool_calls",
        "tool_call",
        "transcript_update",
        "call_ended",
    ]
    assert events["at"].is_monotonic_increasing
    assert json.loads(events["data"].iloc[-1]) == {"ended_reason": first.ended_reason}

    said = [m.markdown[0].value for m in at.chat_message]
    assert said[0] == first.turns[0][1]
    assert any("[CARD]" in text for text in said)
    assert not any(CARD in text for text in said)

    assert any(m.label == "Quality score" for m in at.metric)
    layers = _table(at, "trace_layers")
    assert list(layers["layer"]) == ["infrastructure", "execution", "reaction", "outcome"]
    text = _page_text(at)
    assert first.summary in text
    learned = _table(at, "trace_facts")
    assert dict(zip(learned["key"], learned["value"], strict=True)) == {
        "name": "Maria",
        "preferred_day": "Tuesday",
    }
    # The first call's preferred day was later superseded: its row is closed.
    assert dict(zip(learned["key"], learned["status"], strict=True))["preferred_day"] == "closed"


def test_a_call_that_superseded_a_fact_lists_it(seeded_db: Seed) -> None:
    second = seeded_db.calls[1]
    at = _open()

    at.selectbox(key="trace_call").select((AGENT_ID, second.platform, second.call_id)).run()
    _assert_no_exception(at)

    closed = _table(at, "trace_facts_closed")
    assert list(closed["value"]) == ["Tuesday"]
    assert list(_table(at, "trace_facts")["value"]) == ["Thursday"]
    assert second.summary in _page_text(at)


def test_memory_page_shows_current_facts_and_the_closed_fact_in_history(
    seeded_db: Seed,
) -> None:
    at = _open(MEMORY_PAGE)
    assert at.title[0].value == "Memory"

    caller = at.selectbox(key="caller")
    assert caller.options == ["+44••••••0958 · 1 call", "+1••••••0123 · 2 calls"]
    caller.select(caller_hash(SECRET_KEY, MARIA)).run()
    _assert_no_exception(at)

    current = _table(at, "current_facts")
    assert dict(zip(current["key"], current["value"], strict=True)) == {
        "name": "Maria",
        "preferred_day": "Thursday",
    }
    history = _table(at, "fact_history")
    closed = history[history["status"] == "closed"]
    assert list(closed["value"]) == ["Tuesday"]
    assert closed["valid_to"].notna().all()
    assert len(at.get("plotly_chart")) == 1

    text = _page_text(at)
    for call in seeded_db.calls[:2]:
        assert call.summary in text
    assert seeded_db.calls[2].summary not in text
    assert MARIA not in text


def test_memory_page_for_an_agent_without_callers_says_so(seeded_db: Seed) -> None:
    at = _open(MEMORY_PAGE)

    at.selectbox(key="memory_agent").select(QUIET_AGENT_ID).run()
    _assert_no_exception(at)
    assert any("No callers remembered" in i.value for i in at.info)


@pytest.mark.parametrize("page", [None, MEMORY_PAGE])
def test_empty_database_shows_the_empty_state(empty_db: str, page: str | None) -> None:
    at = _open(page)

    assert len(at.info) == 1
    assert at.info[0].value.startswith("No ")
    assert not at.dataframe


@pytest.mark.parametrize("page", [None, MEMORY_PAGE])
def test_missing_database_file_is_reported_and_not_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, page: str | None
) -> None:
    missing = tmp_path / "nowhere" / "backline.db"
    monkeypatch.setenv("BACKLINE_DATABASE_URL", f"sqlite:///{missing}")

    at = _open(page)

    assert "no database file" in at.info[0].value
    assert not missing.exists()


def test_abandoned_calls_show_as_such_and_stay_out_of_the_call_count(seeded_db: Seed) -> None:
    before = {m.label: m.value for m in _open().metric}
    engine = make_engine(seeded_db.url)
    with Session(engine) as session:
        session.add(Call(org_id=ORG_ID, agent_id=AGENT_ID, platform="vapi",
                         platform_call_id="never-ended", status="abandoned"))  # fmt: skip
        session.commit()
    engine.dispose()
    st.cache_data.clear()
    at = _open()
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Abandoned"] == "1"
    assert metrics["Calls, last 30 days"] == before["Calls, last 30 days"]
    table = _table(at, "calls_table")
    assert table.set_index("call_id").loc["never-ended", "status"] == "abandoned"
