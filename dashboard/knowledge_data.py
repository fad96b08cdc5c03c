"""Cached readers for the Knowledge page, through ``core.knowledge.queries``.

Read-only like ``dashboard.data`` (whose engine and database URL it shares): sessions are never
committed, and a database without the knowledge tables is reported rather than touched.
Freshness is judged at read time, so a source turns stale on the page without any write.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pandas as pd
import streamlit as st
from sqlalchemy import inspect
from sqlmodel import Session

from core.db import utcnow
from core.knowledge import queries
from core.monitoring.queries import open_alert_rows
from dashboard.data import TTL_S, database_url, get_engine

KNOWLEDGE_TABLES = (
    "knowledgebase", "knowledgesource", "knowledgechunk", "callevent", "agent", "alert"
)  # fmt: skip
ALERT_COLUMNS = ["id", "created_at", "kind", "severity", "state", "message"]
SOURCE_COLUMNS = [
    "name", "kb", "kind", "freshness", "age_s", "verified_at", "last_attempt_at", "chunks",
    "documents", "refresh_interval_s", "max_staleness_s", "failures", "last_error", "url",
    "source_id",
]  # fmt: skip
RETRIEVAL_COLUMNS = ["at", "platform", "call_id", "via", "status", "latency_ms", "hits",
                     "withheld", "query"]  # fmt: skip
LATENCY_DAYS = 7


def _session(url: str) -> Session:
    return Session(get_engine(url))


@st.cache_data(ttl=TTL_S, show_spinner=False)
def _missing_tables(url: str) -> list[str]:
    tables = set(inspect(get_engine(url)).get_table_names())
    return [t for t in KNOWLEDGE_TABLES if t not in tables]


def missing_tables() -> list[str]:
    """Knowledge tables the schema lacks (an older database: run ``backline migrate``)."""
    return _missing_tables(database_url())


@st.cache_data(ttl=TTL_S, show_spinner=False)
def _agents(url: str) -> list[dict[str, Any]]:
    with _session(url) as session:
        return [dict(r) for r in queries.list_knowledge_agents(session)]


def agents() -> list[dict[str, Any]]:
    return _agents(database_url())


@st.cache_data(ttl=TTL_S, show_spinner=False)
def _sources(url: str, agent_id: str) -> pd.DataFrame:
    with _session(url) as session:
        rows = queries.list_source_rows(session, agent_id, utcnow())
    frame = pd.DataFrame([dict(r) for r in rows], columns=SOURCE_COLUMNS)
    for column in ("verified_at", "last_attempt_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame


def sources(agent_id: str) -> pd.DataFrame:
    """The agent's sources with freshness judged now (fresh, stale, failing, pending)."""
    return _sources(database_url(), agent_id)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def _retrievals(url: str, agent_id: str, days: int) -> pd.DataFrame:
    with _session(url) as session:
        rows = queries.list_retrievals(session, agent_id, utcnow() - timedelta(days=days))
    frame = pd.DataFrame([dict(r) for r in rows], columns=RETRIEVAL_COLUMNS)
    frame["at"] = pd.to_datetime(frame["at"], utc=True)
    frame["latency_ms"] = pd.to_numeric(frame["latency_ms"])
    return frame


def retrievals(agent_id: str, days: int = LATENCY_DAYS) -> pd.DataFrame:
    """Every retrieval recorded on the agent's calls in the last ``days`` days."""
    return _retrievals(database_url(), agent_id, days)


def clear() -> None:
    """After a refresh request, so the next render reads the new state."""
    _sources.clear()
    _retrievals.clear()


@st.cache_data(ttl=TTL_S, show_spinner=False)
def _alerts(url: str, agent_id: str) -> pd.DataFrame:
    with _session(url) as session:
        rows = open_alert_rows(session, agent_id, "knowledge_")
    frame = pd.DataFrame(rows, columns=ALERT_COLUMNS)
    frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True)
    return frame


def open_alerts(agent_id: str) -> pd.DataFrame:
    """The agent's open knowledge alerts (failing or stale sources), newest first."""
    return _alerts(database_url(), agent_id)
