"""Migration 0010: the VAPI assistant columns of an agent move into ``platform_settings`` (and
back on downgrade), on SQLite and Postgres alike."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import inspect, text
from sqlmodel import Session

from cli.ops import ROOT
from core.db import make_engine
from core.tenancy.models import Agent
from tests.conftest import PG_ADMIN_URL, PG_HOST, PG_PORT

ASSISTANT = {"name": "Inline", "model": {"provider": "openai", "model": "gpt-4o"}}


@pytest.fixture(params=["sqlite", "postgres"])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    name = f"backline_mig_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield f"postgresql+psycopg://postgres@{PG_HOST}:{PG_PORT}/{name}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
        )
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')


def _config(url: str) -> Config:
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url)
    return cfg


def _settings(value: Any) -> dict[str, Any]:
    # Postgres' JSON comes back parsed, SQLite's as text.
    return json.loads(value) if isinstance(value, str) else dict(value)


def test_upgrade_moves_the_vapi_columns_into_platform_settings_and_back(fresh_url: str) -> None:
    cfg = _config(fresh_url)
    command.upgrade(cfg, "0009")
    engine = make_engine(fresh_url)
    with engine.begin() as c:
        c.execute(
            text("INSERT INTO organization (id, name, created_at) VALUES ('o', 'O', :at)"),
            {"at": "2026-01-01 00:00:00"},
        )
        for agent_id, assistant_id, assistant in (
            ("by-id", "asst-123", None),
            ("inline", None, json.dumps(ASSISTANT)),
            ("both", "asst-9", json.dumps(ASSISTANT)),
            ("neither", None, None),
        ):
            c.execute(
                text(
                    "INSERT INTO agent (id, org_id, name, vapi_assistant_id, vapi_assistant, "
                    "created_at) VALUES (:id, 'o', 'A', :aid, :a, :at)"
                ),
                {"id": agent_id, "aid": assistant_id, "a": assistant, "at": "2026-01-01 00:00:00"},
            )
    command.upgrade(cfg, "0010")
    with engine.connect() as c:
        rows = dict(c.execute(text("SELECT id, platform_settings FROM agent")).all())
        columns = {col["name"] for col in inspect(c).get_columns("agent")}
    assert {k: _settings(v) for k, v in rows.items()} == {
        "by-id": {"vapi": {"assistant_id": "asst-123"}},
        "inline": {"vapi": {"assistant": ASSISTANT}},
        "both": {"vapi": {"assistant_id": "asst-9", "assistant": ASSISTANT}},
        "neither": {},
    }
    assert "vapi_assistant_id" not in columns and "vapi_assistant" not in columns
    # The model reads the migrated rows; a row inserted without the column gets {}.
    with engine.begin() as c:
        c.execute(
            text("INSERT INTO agent (id, org_id, name, created_at) VALUES ('raw', 'o', 'R', :at)"),
            {"at": "2026-01-01 00:00:00"},
        )
    with Session(engine) as s:
        both, raw = s.get(Agent, "both"), s.get(Agent, "raw")
        assert both is not None and raw is not None
        assert both.platform_settings["vapi"]["assistant_id"] == "asst-9"
        assert raw.platform_settings == {}

    command.downgrade(cfg, "0009")
    with engine.connect() as c:
        back = {
            r[0]: (r[1], None if r[2] is None else _settings(r[2]))
            for r in c.execute(text("SELECT id, vapi_assistant_id, vapi_assistant FROM agent"))
        }
    assert back == {
        "by-id": ("asst-123", None),
        "inline": (None, ASSISTANT),
        "both": ("asst-9", ASSISTANT),
        "neither": (None, None),
        "raw": (None, None),
    }
    engine.dispose()
