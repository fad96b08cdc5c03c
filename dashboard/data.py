"""The dashboard's cached readers: one engine per database URL, short-lived query caches.

This is the dashboard's composition root: it alone reads ``Settings`` (so
``BACKLINE_DATABASE_URL`` points it anywhere, tests included) and turns core's read-only query
results into pandas frames and plain dicts for the pages. It never writes: sessions here are
never committed, and a SQLite file that does not exist yet is reported, not created. It never
shows a raw phone number or a caller hash: callers appear by their masked display form.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st
from sqlalchemy import inspect
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session

from core.calls import queries as call_queries
from core.db import make_engine, utcnow
from core.memory import queries as memory_queries
from core.settings import Settings

TTL_S = 5
RECENT_CALLS = 200
ACTIVITY_DAYS = 30
REQUIRED_TABLES = ("agent", "call", "callevent", "callscore", "memory", "fact", "callerprofile")

CALL_COLUMNS = [
    "time",
    "platform",
    "caller",
    "status",
    "ended_reason",
    "score",
    "summary",
    "agent_id",
    "call_id",
]
EVENT_COLUMNS = ["at", "type", "platform_type", "data"]
FACT_COLUMNS = ["key", "value", "valid_from", "valid_to", "status", "platform", "source_call_id"]
ACTIVITY_COLUMNS = ["time", "platform", "score"]
SCORE_COLUMNS = ["part", "value"]


def database_url() -> str:
    """Read per call, so a changed ``BACKLINE_DATABASE_URL`` takes effect on the next run."""
    return Settings().resolved_database_url


@st.cache_resource(show_spinner=False)
def get_engine(url: str) -> Engine:
    return make_engine(url)


def _missing_database(url: str) -> str | None:
    """Why the database cannot be read yet, or None; never creates a SQLite file by probing."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        name = parsed.database
        if name and name != ":memory:" and not Path(name).exists():
            return f"no database file at {name} yet"
    return None


@st.cache_data(ttl=TTL_S, show_spinner=False)
def _database_problem(url: str) -> str | None:
    problem = _missing_database(url)
    if problem:
        return problem
    tables = set(inspect(get_engine(url)).get_table_names())
    missing = [t for t in REQUIRED_TABLES if t not in tables]
    if missing:
        return f"the schema is not created yet (missing tables: {', '.join(missing)})"
    return None


def database_problem() -> str | None:
    """A sentence saying why there is nothing to read (no file, no schema), or None."""
    return _database_problem(database_url())


def _session(url: str) -> Session:
    return Session(get_engine(url))


def _facts_frame(facts: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(facts, columns=FACT_COLUMNS)
    frame["status"] = ["current" if pd.isna(v) else "closed" for v in frame["valid_to"]]
    frame["valid_from"] = pd.to_datetime(frame["valid_from"], utc=True)
    frame["valid_to"] = pd.to_datetime(frame["valid_to"], utc=True)
    return frame


# -- calls -----------------------------------------------------------------------------------


@st.cache_data(ttl=TTL_S, show_spinner=False)
def _agents(url: str) -> list[dict[str, Any]]:
    with _session(url) as session:
        return [dict(row) for row in call_queries.list_agents_with_calls(session)]


def agents() -> list[dict[str, Any]]:
    """Every agent with its org, name and call count."""
    return _agents(database_url())


@st.cache_data(ttl=TTL_S, show_spinner=False)
def _recent_calls(url: str, agent_id: str | None, limit: int) -> pd.DataFrame:
    with _session(url) as session:
        rows = call_queries.list_recent_calls(session, agent_id, limit)
    frame = pd.DataFrame([dict(r) for r in rows], columns=[*CALL_COLUMNS, "caller_display"])
    frame["caller"] = frame["caller_display"].fillna("unknown caller")
    frame["time"] = pd.to_datetime(frame["time"], utc=True)
    frame["score"] = pd.to_numeric(frame["score"])
    return frame[CALL_COLUMNS]


def recent_calls(agent_id: str | None = None, limit: int = RECENT_CALLS) -> pd.DataFrame:
    """Newest calls first: time, platform, masked caller, status, reason, score, summary."""
    return _recent_calls(database_url(), agent_id, limit)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def _abandoned_calls(url: str, agent_id: str | None, days: int) -> int:
    since = utcnow() - timedelta(days=days)
    with _session(url) as session:
        return call_queries.count_abandoned_calls(session, agent_id, since)


def abandoned_calls(agent_id: str | None = None, days: int = ACTIVITY_DAYS) -> int:
    """Calls closed as abandoned (no end-of-call report ever came) in the last ``days`` days."""
    return _abandoned_calls(database_url(), agent_id, days)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def _call_activity(url: str, agent_id: str | None, days: int) -> pd.DataFrame:
    since = utcnow() - timedelta(days=days)
    with _session(url) as session:
        rows = call_queries.list_call_activity(session, agent_id, since)
    frame = pd.DataFrame([dict(r) for r in rows], columns=ACTIVITY_COLUMNS)
    frame["time"] = pd.to_datetime(frame["time"], utc=True)
    frame["score"] = pd.to_numeric(frame["score"])
    return frame


def call_activity(agent_id: str | None = None, days: int = ACTIVITY_DAYS) -> pd.DataFrame:
    """Time, platform and score of each call in the last ``days`` days (for trend charts)."""
    return _call_activity(database_url(), agent_id, days)


def _layers_frame(layers: dict[str, Any]) -> pd.DataFrame:
    """One row per scorecard layer: its score and its parts (empty for older scores)."""
    rows = [
        {
            "layer": name,
            "score": layer.get("score"),
            "parts": ", ".join(f"{k} {v:.2f}" for k, v in sorted(layer.get("parts", {}).items())),
        }
        for name, layer in layers.items()
        if isinstance(layer, dict)
    ]
    return pd.DataFrame(rows, columns=["layer", "score", "parts"])


@st.cache_data(ttl=TTL_S, show_spinner=False)
def _call_trace(url: str, agent_id: str, platform: str, call_id: str) -> dict[str, Any] | None:
    with _session(url) as session:
        trace = call_queries.get_call_trace(session, agent_id, platform, call_id)
    if trace is None:
        return None
    parts = dict(trace["score_parts"])
    notes = parts.pop("notes", [])
    parts.pop("score", None)  # the total, on its own 0-100 scale; the parts are 0..1
    return {
        "call": dict(trace["call"]),
        "direction": trace["direction"],
        "started_at": trace["started_at"],
        "ended_at": trace["ended_at"],
        "transcript": trace["transcript"],
        "platform_summary": trace["platform_summary"],
        "analysis": trace["analysis"],
        "events": pd.DataFrame(
            [
                {**e, "data": json.dumps(e["data"], sort_keys=True, default=str)}
                for e in trace["events"]
            ],
            columns=EVENT_COLUMNS,
        ),
        "score_parts": pd.DataFrame(
            [(k, float(v)) for k, v in parts.items() if isinstance(v, int | float)],
            columns=SCORE_COLUMNS,
        ),
        "score_notes": [str(n) for n in notes] if isinstance(notes, list) else [str(notes)],
        "score_layers": _layers_frame(trace["score_layers"]),
        "memories": [dict(m) for m in trace["memories"]],
        "facts": _facts_frame([dict(f) for f in trace["facts"]]),
        "facts_closed": _facts_frame([dict(f) for f in trace["facts_closed"]]),
    }


def call_trace(agent_id: str, platform: str, call_id: str) -> dict[str, Any] | None:
    """One call's trace: events frame, transcript, scorecard frame and notes, derived memory."""
    return _call_trace(database_url(), agent_id, platform, call_id)


# -- memory ----------------------------------------------------------------------------------


@st.cache_data(ttl=TTL_S, show_spinner=False)
def _callers(url: str, agent_id: str) -> list[dict[str, Any]]:
    with _session(url) as session:
        return [dict(row) for row in memory_queries.list_callers(session, agent_id)]


def callers(agent_id: str) -> list[dict[str, Any]]:
    """The agent's remembered callers (hash as the key, masked display, call count)."""
    return _callers(database_url(), agent_id)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def _caller_timeline(
    url: str, org_id: str, agent_id: str, caller_hash: str
) -> dict[str, Any] | None:
    with _session(url) as session:
        timeline = memory_queries.get_caller_timeline(session, org_id, agent_id, caller_hash)
    if timeline is None:
        return None
    facts = _facts_frame(timeline["facts"])
    summaries = pd.DataFrame(
        timeline["summaries"],
        columns=["created_at", "platform", "source_call_id", "method", "revision", "text"],
    )
    summaries["created_at"] = pd.to_datetime(summaries["created_at"], utc=True)
    return {
        "as_of": utcnow(),
        "caller_display": timeline["caller_display"],
        "context": timeline["context"],
        "facts": facts,
        "current_facts": facts[facts["status"] == "current"].reset_index(drop=True),
        "summaries": summaries,
    }


def caller_timeline(org_id: str, agent_id: str, caller_hash: str) -> dict[str, Any] | None:
    """Context, all facts (with a current/closed status), current facts and call summaries."""
    return _caller_timeline(database_url(), org_id, agent_id, caller_hash)
