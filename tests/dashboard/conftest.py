"""Dashboard fixtures: a seeded (or empty) SQLite file per test, named by BACKLINE_DATABASE_URL.

Streamlit's caches live for the whole process, so they are cleared around every test; otherwise
one test's engine or query result would answer the next test's reads.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import streamlit as st

from tests.dashboard.seed import Seed, create_schema, seed_database


@pytest.fixture(autouse=True)
def _fresh_streamlit_caches() -> Iterator[None]:
    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()


@pytest.fixture
def seeded_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Seed:
    url = f"sqlite:///{tmp_path / 'backline.db'}"
    seed = seed_database(url)
    monkeypatch.setenv("BACKLINE_DATABASE_URL", url)
    return seed


@pytest.fixture
def empty_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'backline.db'}"
    create_schema(url)
    monkeypatch.setenv("BACKLINE_DATABASE_URL", url)
    return url
