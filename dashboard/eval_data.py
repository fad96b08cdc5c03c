"""Cached readers for the Evals page: stored eval runs and their per-case results.

Read-only like ``dashboard.data`` (whose engine and database URL it shares): sessions are never
committed, and a database without the eval tables is reported rather than touched.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st
from sqlalchemy import inspect
from sqlmodel import Session, col, select

from core.evals.models import EvalCaseResult, EvalRun
from dashboard.data import TTL_S, database_url, get_engine

EVAL_TABLES = ("evalrun", "evalcaseresult")
RUN_COLUMNS = [
    "id",
    "agent_id",
    "suite",
    "status",
    "verdict",
    "passed",
    "failed",
    "skipped",
    "total",
    "pass_rate",
    "target",
    "baseline_run_id",
    "accepted",
    "created_at",
]
CASE_COLUMNS = ["index", "scenario", "persona", "repeat", "status", "failed_checks", "reason"]
DIFF_COLUMNS = ["scenario", "baseline", "candidate", "verdict", "flaky", "reason"]


def _session(url: str) -> Session:
    return Session(get_engine(url))


@st.cache_data(ttl=TTL_S, show_spinner=False)
def _missing_tables(url: str) -> list[str]:
    tables = set(inspect(get_engine(url)).get_table_names())
    return [t for t in EVAL_TABLES if t not in tables]


def missing_tables() -> list[str]:
    """Eval tables the schema lacks (an older database: run ``backline migrate``)."""
    return _missing_tables(database_url())


def pass_rate(passed: int, failed: int) -> float | None:
    """Share of the counted cases (passed + failed; skipped ones are not runs) that passed."""
    counted = passed + failed
    return passed / counted if counted else None


def _target(run: EvalRun) -> str:
    if run.target_version is not None:
        return f"v{run.target_version}"
    return run.target_label or "production"


@st.cache_data(ttl=TTL_S, show_spinner=False)
def _runs(url: str) -> pd.DataFrame:
    with _session(url) as session:
        rows = session.exec(select(EvalRun).order_by(col(EvalRun.created_at).desc())).all()
        records = [
            {
                "id": r.id,
                "agent_id": r.agent_id,
                "suite": r.suite_name,
                "status": r.status,
                "verdict": r.verdict,
                "passed": r.passed,
                "failed": r.failed,
                "skipped": r.skipped,
                "total": r.total,
                "pass_rate": pass_rate(r.passed, r.failed),
                "target": _target(r),
                "baseline_run_id": r.baseline_run_id,
                "accepted": r.accepted,
                "created_at": r.created_at,
                "scenarios": list(r.scenarios or []),
            }
            for r in rows
        ]
    return pd.DataFrame(records, columns=[*RUN_COLUMNS, "scenarios"])


def runs() -> pd.DataFrame:
    """Every stored run, newest first, with its pass rate (None when nothing was counted)."""
    return _runs(database_url())


@st.cache_data(ttl=TTL_S, show_spinner=False)
def _cases(url: str, run_id: str) -> list[dict[str, Any]]:
    with _session(url) as session:
        rows = session.exec(
            select(EvalCaseResult)
            .where(EvalCaseResult.run_id == run_id)
            .order_by(col(EvalCaseResult.case_index))
        ).all()
        return [
            {
                "index": r.case_index,
                "scenario": r.scenario,
                "persona": r.persona,
                "repeat": r.repeat,
                "status": r.status,
                "reason": r.reason or "",
                "checks": list(r.checks or []),
                "transcript": list(r.transcript or []),
            }
            for r in rows
        ]


def cases(run_id: str) -> list[dict[str, Any]]:
    """A run's case results in order: checks and transcript included."""
    return _cases(database_url(), run_id)


def failed_checks(case: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for c in case["checks"] if c.get("passed") is False]


def case_table(case_rows: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                **{k: c[k] for k in CASE_COLUMNS if k in c},
                "failed_checks": ", ".join(x["name"] for x in failed_checks(c)),
            }
            for c in case_rows
        ],
        columns=CASE_COLUMNS,
    )


def _ratio(pair: Any) -> str:
    if isinstance(pair, list | tuple) and len(pair) == 2:
        return f"{pair[0]}/{pair[1]}"
    return "—"


def baseline_diff(scenarios: list[dict[str, Any]]) -> pd.DataFrame:
    """Per scenario (x persona): baseline passes/runs against the candidate's, and the verdict
    (docs/evals.md#verdicts-and-exit-codes), from the run's stored scenario rows."""
    return pd.DataFrame(
        [
            {
                "scenario": s.get("scenario", ""),
                "baseline": _ratio(s.get("baseline")),
                "candidate": _ratio(s.get("candidate")),
                "verdict": s.get("verdict", ""),
                "flaky": bool(s.get("flaky")),
                "reason": s.get("reason") or "",
            }
            for s in scenarios
        ],
        columns=DIFF_COLUMNS,
    )


def transcript_lines(case: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """(role, text, flagged) per turn, for the viewer to highlight where the case went wrong:
    an agent turn that said a phrase a failing ``does not say`` check forbids; when no turn
    did and some check failed, the last agent turn (what the conversation ended on)."""
    failing = failed_checks(case)
    forbidden = [
        str(c["name"]).removeprefix("does not say ").lower()
        for c in failing
        if str(c.get("name", "")).startswith("does not say ")
    ]
    turns = [(str(t.get("role", "")), str(t.get("text", ""))) for t in case["transcript"]]
    flags = [role == "agent" and any(p in text.lower() for p in forbidden) for role, text in turns]
    agent_turns = [i for i, (role, _) in enumerate(turns) if role == "agent"]
    if failing and not any(flags) and agent_turns:
        flags[agent_turns[-1]] = True
    return [(role, text, flag) for (role, text), flag in zip(turns, flags, strict=True)]
