"""Keyword terms stemmed by an older stemmer are re-stemmed: the index labels its stems with the
stemmer that made them, a partition from before the label reads as stale, and the worker's start
rebuilds stale partitions from the chunk texts (the index keeps no text)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from cli.worker import rebuild_keyword_terms
from connectors.embedder import MiniLMEmbedder
from connectors.llamaindex import LlamaIndexIngestor
from connectors.sources.url import HttpSourceFetcher
from connectors.vectors.knowledge_embedded import STEMMER, EmbeddedKnowledgeIndex
from core.knowledge import repository as repo
from core.knowledge.ports import IndexEntry
from tests.conftest import loopback_policy
from tests.integration.test_knowledge_ingest import PRICES, first_kb
from tests.knowledge_helpers import Refresher, add_source, file_source, make_tenant

DIM = 8


def _make_legacy(index_root: Path, restem: Callable[[str], str]) -> None:
    """Rewrite every partition under ``index_root`` as the previous release left it: a meta
    table without the stemmer column and terms stemmed another way (``restem`` of each)."""
    for db in index_root.rglob("index.sqlite3"):
        conn = sqlite3.connect(db, isolation_level=None)
        conn.execute("ALTER TABLE meta DROP COLUMN stemmer")
        rows = conn.execute("SELECT key, terms FROM entries").fetchall()
        for key, terms in rows:
            old = {restem(t): n for t, n in json.loads(terms).items()}
            conn.execute("UPDATE entries SET terms = ? WHERE key = ?", (json.dumps(old), key))
        conn.execute("UPDATE meta SET version = version + 1, bm25_version = version + 1")
        conn.close()
        (db.parent / "bm25.npz").unlink()


def _entries(texts: dict[str, str]) -> list[IndexEntry]:
    rng = np.random.default_rng(0)
    return [
        IndexEntry(cid, rng.standard_normal(DIM).astype(np.float32), text)
        for cid, text in texts.items()
    ]


TEXTS = {
    "fees": "Deposits are generously refunded when you cancel a day ahead",
    "hours": "Technicians work weekdays from eight to six",
}
# What nltk's Porter stemmer made of these words: "generously" -> "gener", where the current
# stemmer keeps "generous".
NLTK_PORTER = {"generous": "gener"}


def test_a_partition_from_before_stemmer_labels_is_stale_until_restemmed(tmp_path: Path) -> None:
    writer = EmbeddedKnowledgeIndex(tmp_path)
    writer.upsert("o", "p", _entries(TEXTS))
    assert not writer.keyword_terms_stale("o", "p")
    assert writer.keyword("o", "p", "generous", 5)[0].chunk_id == "fees"
    writer.close()

    _make_legacy(tmp_path, lambda t: NLTK_PORTER.get(t, t))
    reader = EmbeddedKnowledgeIndex(tmp_path)
    assert reader.keyword_terms_stale("o", "p")
    assert reader.keyword("o", "p", "generous", 5) == []  # the old stems miss today's query
    assert reader.keyword("o", "p", "weekdays", 5)[0].chunk_id == "hours"

    rebuilder = EmbeddedKnowledgeIndex(tmp_path)
    assert rebuilder.rebuild_keyword_terms("o", "p", TEXTS) == 2
    assert not rebuilder.keyword_terms_stale("o", "p")
    # The reader that cached the old matrix sees the rebuilt one without a restart.
    assert not reader.keyword_terms_stale("o", "p")
    assert reader.keyword("o", "p", "generous", 5)[0].chunk_id == "fees"
    assert reader.keyword("o", "p", "weekdays", 5)[0].chunk_id == "hours"
    assert reader.count("o", "p") == 2


def test_a_new_partition_is_labelled_with_the_current_stemmer(tmp_path: Path) -> None:
    ix = EmbeddedKnowledgeIndex(tmp_path)
    ix.upsert("o", "p", _entries(TEXTS))
    db = next(tmp_path.rglob("index.sqlite3"))
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT stemmer FROM meta").fetchone() == (STEMMER,)
    assert not ix.keyword_terms_stale("o", "missing")


@pytest.fixture
def refresher(any_engine: Engine, tmp_path: Path, embedder: MiniLMEmbedder) -> Iterator[Refresher]:
    index = EmbeddedKnowledgeIndex(tmp_path / "knowledge")
    yield Refresher(
        any_engine,
        index,
        embedder,
        LlamaIndexIngestor(embedder),
        HttpSourceFetcher(loopback_policy()),
    )
    index.close()


def test_worker_start_restems_stale_knowledge_bases_from_chunk_texts(
    refresher: Refresher, tmp_path: Path
) -> None:
    org, agent = make_tenant(refresher.engine)
    sid = add_source(refresher.engine, org, agent, file_source("prices.md", PRICES))
    refresher.refresh(sid)
    kb = first_kb(refresher.engine, sid)
    count = refresher.index.count(org, kb)
    assert refresher.index.keyword(org, kb, "EV charger", 1)

    _make_legacy(tmp_path / "knowledge", lambda t: f"{t}~")  # no stem matches any more
    assert refresher.index.keyword(org, kb, "EV charger", 1) == []

    worker_index = EmbeddedKnowledgeIndex(tmp_path / "knowledge")
    assert rebuild_keyword_terms(refresher.engine, worker_index) == [kb]
    assert rebuild_keyword_terms(refresher.engine, worker_index) == []  # nothing stale now
    hits = refresher.index.keyword(org, kb, "EV charger installation", 3)
    assert hits and refresher.index.count(org, kb) == count
    with Session(refresher.engine) as session:
        top = repo.chunks_by_ids(session, [hits[0].chunk_id])[hits[0].chunk_id]
    assert "$1,250" in top.text
    worker_index.close()
