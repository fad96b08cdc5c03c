"""Cached readers for the Prompts & Rollouts page, through ``core.prompts.queries``.

Read-only like ``dashboard.data`` (whose engine and database URL it shares): sessions are never
committed, and a database without the prompt tables is reported rather than touched.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st
from sqlalchemy import inspect
from sqlmodel import Session

from core.prompts import queries
from dashboard.data import TTL_S, database_url, get_engine

PROMPT_TABLES = ("promptversion", "promptlabel", "promptexperiment", "promptrollout", "alert")
VERSION_COLUMNS = ["ref", "labels", "message", "created_by", "created_at", "model", "tools"]
CHECK_COLUMNS = [
    "at",
    "step",
    "weight",
    "canary_n",
    "control_n",
    "step_canary_n",
    "verdict",
    "canary_score",
    "control_score",
    "score_log_lr",
    "score_threshold",
    "reason",
]
VARIANT_COLUMNS = ["ref", "role", "weight", "calls", "score", "ci_low", "ci_high",
                   "task_completion", "transfer_rate", "tool_failure_rate", "latency_ms",
                   "verdict"]  # fmt: skip


def _session(url: str) -> Session:
    return Session(get_engine(url))


@st.cache_data(ttl=TTL_S, show_spinner=False)
def _missing_tables(url: str) -> list[str]:
    tables = set(inspect(get_engine(url)).get_table_names())
    return [t for t in PROMPT_TABLES if t not in tables]


def missing_tables() -> list[str]:
    """Prompt tables the schema lacks (an older database: run ``backline migrate``)."""
    return _missing_tables(database_url())


@st.cache_data(ttl=TTL_S, show_spinner=False)
def _agents(url: str) -> list[dict[str, Any]]:
    with _session(url) as session:
        return queries.list_prompt_agents(session)


def agents() -> list[dict[str, Any]]:
    return _agents(database_url())


@st.cache_data(ttl=TTL_S, show_spinner=False)
def _versions(url: str, agent_id: str) -> pd.DataFrame:
    with _session(url) as session:
        rows = queries.list_versions(session, agent_id)
    frame = pd.DataFrame(rows, columns=[*VERSION_COLUMNS, "version", "template"])
    frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True)
    return frame


def versions(agent_id: str) -> pd.DataFrame:
    """Versions newest first: ref, labels, change message, author, time, model, tools, text."""
    return _versions(database_url(), agent_id)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def _label_history(url: str, agent_id: str) -> pd.DataFrame:
    with _session(url) as session:
        rows = queries.label_history(session, agent_id)
    frame = pd.DataFrame(rows, columns=["at", "label", "from", "to", "kind", "actor", "reason"])
    frame["at"] = pd.to_datetime(frame["at"], utc=True)
    return frame


def label_history(agent_id: str) -> pd.DataFrame:
    return _label_history(database_url(), agent_id)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def _rollouts(url: str, agent_id: str) -> list[dict[str, Any]]:
    with _session(url) as session:
        return queries.list_rollouts(session, agent_id)


def rollouts(agent_id: str) -> list[dict[str, Any]]:
    return _rollouts(database_url(), agent_id)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def _rollout_checks(url: str, rollout_id: int) -> pd.DataFrame:
    with _session(url) as session:
        rows = queries.rollout_checks(session, rollout_id)
    frame = pd.DataFrame(rows, columns=CHECK_COLUMNS)
    frame["at"] = pd.to_datetime(frame["at"], utc=True)
    for column in ("canary_score", "control_score", "score_log_lr", "score_threshold"):
        frame[column] = pd.to_numeric(frame[column])
    return frame


def rollout_checks(rollout_id: int) -> pd.DataFrame:
    """Every guard look of a rollout, oldest first (weights and guard metrics over time)."""
    return _rollout_checks(database_url(), rollout_id)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def _experiments(url: str, agent_id: str) -> list[dict[str, Any]]:
    with _session(url) as session:
        return queries.list_experiments(session, agent_id)


def experiments(agent_id: str) -> list[dict[str, Any]]:
    return _experiments(database_url(), agent_id)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def _experiment_results(url: str, agent_id: str, experiment_id: int) -> dict[str, Any] | None:
    with _session(url) as session:
        results = queries.experiment_results(session, agent_id, experiment_id)
    if results is None:
        return None
    rows = [
        {**v, "ci_low": v["score_ci95"]["low"], "ci_high": v["score_ci95"]["high"]}
        for v in results["variants"]
    ]
    return {
        "verdict": results["verdict"],
        "summary": results["summary"],
        "variants": pd.DataFrame(rows, columns=VARIANT_COLUMNS),
    }


def experiment_results(agent_id: str, experiment_id: int) -> dict[str, Any] | None:
    return _experiment_results(database_url(), agent_id, experiment_id)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def _alerts(url: str, org_id: str, agent_id: str) -> pd.DataFrame:
    with _session(url) as session:
        rows = queries.open_alerts(session, org_id, agent_id)
    frame = pd.DataFrame(rows, columns=["created_at", "kind", "severity", "message"])
    frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True)
    return frame


def open_alerts(org_id: str, agent_id: str) -> pd.DataFrame:
    return _alerts(database_url(), org_id, agent_id)
