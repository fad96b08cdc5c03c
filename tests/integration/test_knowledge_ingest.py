"""Ingestion and refresh steps on SQLite and Postgres, with the real embedder, llama-index and
the embedded index; URL sources against a loopback server speaking ETag / Last-Modified."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from connectors.embedder import MiniLMEmbedder
from connectors.llamaindex import LlamaIndexIngestor
from connectors.sources.url import HttpSourceFetcher
from connectors.vectors.knowledge_embedded import EmbeddedKnowledgeIndex
from core.db import session_scope, utcnow
from core.knowledge import repository as repo
from core.knowledge.ports import FetchFailedError
from core.knowledge.retrieval import KnowledgeRetriever
from core.knowledge.schemas import SourceCreate, SourceUpdate
from core.knowledge.service import KnowledgeIndexing, KnowledgeService
from tests.conftest import loopback_policy
from tests.knowledge_helpers import (
    DEMO,
    Page,
    Refresher,
    SiteServer,
    add_source,
    file_source,
    make_tenant,
)

PRICES = b"""# Price list

## Plumbing

- Water heater flush: $149.
- Drain cleaning: $175 per drain.

## Electrical

- Ceiling fan installation: $210.
- EV charger installation: $1,250.

## Appliances

Dishwasher repair labor is $135 for the first hour.
"""


@pytest.fixture(scope="module")
def ingestor(embedder: MiniLMEmbedder) -> LlamaIndexIngestor:
    return LlamaIndexIngestor(embedder)


@pytest.fixture
def refresher(
    any_engine: Engine, tmp_path: Path, embedder: MiniLMEmbedder, ingestor: LlamaIndexIngestor
) -> Iterator[Refresher]:
    index = EmbeddedKnowledgeIndex(tmp_path / "knowledge")
    yield Refresher(any_engine, index, embedder, ingestor, HttpSourceFetcher(loopback_policy()))
    index.close()


def _chunks(engine: Engine, source_id: str) -> dict[str, str]:
    with Session(engine) as session:
        return {c.id: c.text for c in repo.chunks_for_source(session, source_id)}


def _search(r: Refresher, agent_id: str, query: str, **kw: object) -> object:
    with Session(r.engine) as session:
        return KnowledgeRetriever(r.embedder, r.index).search(session, agent_id, query, **kw)  # type: ignore[arg-type]


def test_unchanged_content_is_skipped_and_a_changed_section_alone_is_reembedded(
    refresher: Refresher,
) -> None:
    org, agent = make_tenant(refresher.engine)
    sid = add_source(refresher.engine, org, agent, file_source("prices.md", PRICES))

    status, first = refresher.refresh(sid)
    assert status == "changed" and first is not None
    assert first.documents == 3 and first.embedded == first.chunks_added == first.chunk_count
    before = _chunks(refresher.engine, sid)
    assert refresher.index.count(org, first_kb(refresher.engine, sid)) == len(before)

    status, again = refresher.refresh(sid)
    assert (status, again) == ("unchanged", None)

    with session_scope(refresher.engine) as session:
        KnowledgeService(session).update_source(
            sid,
            SourceUpdate.model_validate(
                file_source("prices.md", PRICES.replace(b"$210", b"$240")).model_dump()
            ),
            "test",
        )
    status, changed = refresher.refresh(sid)
    assert status == "changed" and changed is not None
    assert changed.documents_skipped == 2  # plumbing and appliances: untouched
    assert changed.embedded == 1 and changed.chunks_removed == 1 and changed.chunks_added == 1
    after = _chunks(refresher.engine, sid)
    assert len(set(before) & set(after)) == len(before) - 1  # every other chunk kept its id
    answer = _search(refresher, agent, "how much to install a ceiling fan", k=1)
    assert "$240" in answer.hits[0].text  # type: ignore[attr-defined]
    assert refresher.index.count(org, first_kb(refresher.engine, sid)) == len(after)


def first_kb(engine: Engine, source_id: str) -> str:
    with Session(engine) as session:
        source = repo.get_source(session, source_id)
        assert source is not None
        return source.kb_id


def test_a_vanished_section_loses_its_chunks_in_rows_and_index(refresher: Refresher) -> None:
    org, agent = make_tenant(refresher.engine)
    sid = add_source(refresher.engine, org, agent, file_source("prices.md", PRICES))
    refresher.refresh(sid)
    without_electrical = (
        PRICES.split(b"## Electrical")[0] + b"## Appliances" + (PRICES.split(b"## Appliances")[1])
    )
    with session_scope(refresher.engine) as session:
        KnowledgeService(session).update_source(
            sid,
            SourceUpdate.model_validate(file_source("prices.md", without_electrical).model_dump()),
            "test",
        )
    _, outcome = refresher.refresh(sid)
    assert outcome is not None and outcome.chunks_removed >= 1 and outcome.embedded == 0
    assert not any("$1,250" in t for t in _chunks(refresher.engine, sid).values())
    hits = refresher.index.keyword(org, first_kb(refresher.engine, sid), "charger", 5)
    assert hits == []


def test_url_source_revalidates_with_etag_and_takes_changes(refresher: Refresher) -> None:
    org, agent = make_tenant(refresher.engine)
    with SiteServer() as site:
        site.pages["/hours"] = Page(b"<html><body><h1>Hours</h1><p>Open 7 to 7.</p></body></html>")
        sid = add_source(
            refresher.engine,
            org,
            agent,
            SourceCreate(kind="url", name="hours", url=site.url("/hours")),
        )
        assert refresher.refresh(sid)[0] == "changed"
        assert site.log.conditional() == []

        assert refresher.refresh(sid)[0] == "unchanged"
        conditional = site.log.conditional()
        assert len(conditional) == 1
        assert conditional[0]["if_none_match"] == site.pages["/hours"].etag
        assert conditional[0]["if_modified_since"] is not None

        site.pages["/hours"] = Page(b"<html><body><h1>Hours</h1><p>Open 8 to 6.</p></body></html>")
        assert refresher.refresh(sid)[0] == "changed"
        assert any("8 to 6" in t for t in _chunks(refresher.engine, sid).values())


def test_failing_fetch_keeps_the_last_good_content_until_it_is_too_stale(
    refresher: Refresher,
) -> None:
    org, agent = make_tenant(refresher.engine)
    with SiteServer() as site:
        site.pages["/prices"] = Page(PRICES, content_type="text/markdown")
        sid = add_source(
            refresher.engine,
            org,
            agent,
            SourceCreate(
                kind="url",
                name="prices",
                url=site.url("/prices"),
                refresh_interval_s=3600,
                max_staleness_s=86400,
            ),
        )
        good_at = utcnow()
        refresher.refresh(sid, at=good_at)
        kept = _chunks(refresher.engine, sid)
        site.fail = True
        with pytest.raises(FetchFailedError) as failure:
            refresher.refresh(sid, at=good_at + timedelta(hours=2))
        assert failure.value.retryable
    with session_scope(refresher.engine) as session:
        svc = KnowledgeService(session)
        source, first = svc.mark_failing(sid, "fetch: 503", good_at + timedelta(hours=2))
        assert source is not None and first and source.status == "failing"
    assert _chunks(refresher.engine, sid) == kept  # nothing deleted because a fetch failed

    soon = _search(
        refresher, agent, "water heater flush price", k=2, now=good_at + timedelta(hours=3)
    )
    assert soon.status == "ok" and soon.hits[0].freshness == "failing"  # type: ignore[attr-defined]
    assert "$149" in soon.hits[0].text  # type: ignore[attr-defined]

    late = _search(
        refresher, agent, "water heater flush price", k=2, now=good_at + timedelta(days=2)
    )
    assert late.status == "outdated" and late.hits == []  # type: ignore[attr-defined]
    assert late.withheld and late.spoken_fallback  # type: ignore[attr-defined]


def test_committed_index_writes_that_never_ran_are_recovered(refresher: Refresher) -> None:
    org, agent = make_tenant(refresher.engine)
    sid = add_source(refresher.engine, org, agent, file_source("prices.md", PRICES))
    with session_scope(refresher.engine) as session:
        fetched = KnowledgeService(session).fetch(sid, refresher.fetcher, utcnow())
    assert fetched.content_hash is not None
    with session_scope(refresher.engine) as session:
        svc = KnowledgeIndexing(session, refresher.index, refresher.embedder)
        svc.ingest(sid, fetched.content_hash, refresher.ingestor)
    # The process "crashed" here: rows committed, index untouched, outbox says what is owed.
    kb = first_kb(refresher.engine, sid)
    assert refresher.index.count(org, kb) == 0
    with session_scope(refresher.engine) as session:
        assert KnowledgeIndexing(session, refresher.index, refresher.embedder).recover_outbox(sid)
    assert refresher.index.count(org, kb) == len(_chunks(refresher.engine, sid))
    with Session(refresher.engine) as session:
        source = repo.get_source(session, sid)
        assert source is not None and source.index_outbox is None


def test_retrieval_never_crosses_agents(refresher: Refresher) -> None:
    org_a, agent_a = make_tenant(refresher.engine)
    org_b, agent_b = make_tenant(refresher.engine)
    refresher.refresh(add_source(refresher.engine, org_a, agent_a, file_source("p.md", PRICES)))
    secret = b"# Secret\n\nThe vault code for the ceiling fan warehouse is 4417.\n"
    refresher.refresh(add_source(refresher.engine, org_b, agent_b, file_source("s.md", secret)))
    answer = _search(refresher, agent_a, "vault code ceiling fan warehouse", k=5)
    assert all("4417" not in h.text for h in answer.hits)  # type: ignore[attr-defined]
    assert {h.source_name for h in answer.hits} == {"p.md"}  # type: ignore[attr-defined]


def test_deleting_a_source_removes_rows_blobs_docstore_and_index_entries(
    refresher: Refresher,
) -> None:
    org, agent = make_tenant(refresher.engine)
    sid = add_source(refresher.engine, org, agent, file_source("prices.md", PRICES))
    refresher.refresh(sid)
    kb = first_kb(refresher.engine, sid)
    with session_scope(refresher.engine) as session:
        svc = KnowledgeIndexing(session, refresher.index, refresher.embedder)
        svc.delete_source(sid, "test")
    svc.apply_pending_index()
    assert refresher.index.count(org, kb) == 0
    with Session(refresher.engine) as session:
        assert repo.get_source(session, sid) is None
        assert repo.chunks_for_source(session, sid) == []
        assert repo.get_blob(session, sid, "x") is None
        assert repo.kv_all(session, f"source:{sid}", "docstore/metadata") == {}


@pytest.mark.parametrize("name", ["service_area.html", "care_plan_terms.txt", "hours.md"])
def test_demo_formats_ingest_into_titled_sections(refresher: Refresher, name: str) -> None:
    org, agent = make_tenant(refresher.engine)
    sid = add_source(refresher.engine, org, agent, file_source(name, (DEMO / name).read_bytes()))
    _, outcome = refresher.refresh(sid)
    assert outcome is not None and outcome.chunk_count >= 1
    with Session(refresher.engine) as session:
        rows = repo.chunks_for_source(session, sid)
    assert all(r.title for r in rows)
    assert all(r.fetched_at is not None and r.content_hash for r in rows)
    if name == "service_area.html":
        assert {"Where we work > Zone 2 — $35 travel fee"} <= {r.section for r in rows}
        assert not any("analytics" in r.text or "License #" in r.text for r in rows)
