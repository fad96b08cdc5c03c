"""The Evals page against a seeded SQLite file: runs over time, the selected run's cases, its
diff against the accepted baseline, and the transcript viewer highlighting the failing turn."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from streamlit.testing.v1 import AppTest

from dashboard import eval_data
from tests.dashboard.seed import BASELINE_RUN, CANDIDATE_RUN, FORBIDDEN, Seed

APP = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"
PAGE = "app_pages/evals.py"
TIMEOUT_S = 60


def _open() -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT_S).run()
    at.switch_page(PAGE).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _table(at: AppTest, key: str) -> pd.DataFrame:
    frame: pd.DataFrame = at.get_by_key(key).dataframe[0].value
    return frame


def test_runs_cases_baseline_diff_and_transcript(seeded_db: Seed) -> None:
    at = _open()
    assert at.title[0].value == "Evals"
    runs = _table(at, "eval_runs")
    assert list(runs["id"]) == [CANDIDATE_RUN, BASELINE_RUN]  # newest first
    # The seed: baseline 4 of 4 passed, the later run 2 of 4.
    assert list(runs["pass_rate"]) == [0.5, 1.0]
    assert at.get_by_key("evals_chart").get("plotly_chart")

    # The newest run is selected: its cases and the diff against its baseline.
    cases = _table(at, "eval_cases")
    assert list(cases["status"]) == ["passed", "passed", "failed", "failed"]
    assert cases["failed_checks"].iloc[2] == f"says $175, does not say {FORBIDDEN}"
    diff = _table(at, "eval_diff")
    drain = diff[diff["scenario"] == "drain cleaning price · angry"].iloc[0]
    assert (drain["baseline"], drain["candidate"]) == ("2/2", "0/2")

    # The transcript viewer opens on a failing case, with its failed checks and the agent
    # turn that said the forbidden phrase highlighted.
    assert at.selectbox(key="eval_case").value == 2
    errors = [e.value for e in at.error]
    assert f"does not say {FORBIDDEN}: said {FORBIDDEN!r}" in errors
    highlighted = [m.value for m in at.markdown if m.value.startswith(":red-background[")]
    assert len(highlighted) == 1 and FORBIDDEN.replace("'", "&#x27;") in highlighted[0]

    # The baseline run has no baseline of its own.
    at.selectbox(key="eval_run").set_value(BASELINE_RUN).run()
    assert not at.exception
    assert any("No baseline" in c.value for c in at.caption)


def test_transcript_flags_and_pass_rate() -> None:
    case = {
        "checks": [{"name": "called order_status", "passed": False}],
        "transcript": [
            {"role": "agent", "text": "Hi"},
            {"role": "caller", "text": "Order 1042?"},
            {"role": "agent", "text": "Let me see."},
        ],
    }
    # No forbidden phrase to point at: the last agent turn is where the case ended wrong.
    assert [f for *_, f in eval_data.transcript_lines(case)] == [False, False, True]
    assert eval_data.pass_rate(0, 0) is None and eval_data.pass_rate(3, 1) == 0.75


def test_an_empty_database_says_how_to_get_runs(empty_db: str) -> None:
    at = _open()
    assert any("No eval runs yet" in i.value for i in at.info)
