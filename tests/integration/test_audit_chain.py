"""The audit hash chain: appends link per organization, and verification names the first row
that was edited, deleted or reordered directly in the database."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from cli.ops import ROOT, migrate
from core.audit.models import AuditEvent
from core.audit.service import record_audit, verify_org_chain
from core.db import make_engine, session_scope
from tests.conftest import PG_ADMIN_URL, PG_HOST, PG_PORT


def _append(engine: Engine, org: str, n: int, action: str = "test.action") -> list[int]:
    ids = []
    for i in range(n):
        with session_scope(engine) as s:
            e = record_audit(s, actor="key:k1", action=action, target=f"agent:a{i}", org_id=org)
            s.flush()
            assert e.id is not None
            ids.append(e.id)
    return ids


def _org() -> str:
    return f"org-{uuid.uuid4().hex[:8]}"


def test_a_clean_chain_verifies_per_org(any_engine: Engine) -> None:
    a, b = _org(), _org()
    _append(any_engine, a, 3)
    _append(any_engine, b, 2)
    with session_scope(any_engine) as s:  # two appends in one unit of work chain in order
        record_audit(s, actor="key:k1", action="x.one", target="t", org_id=a, detail={"n": 1.5})
        record_audit(s, actor="key:k1", action="x.two", target="t", org_id=a)
    with Session(any_engine) as s:
        ra, rb = verify_org_chain(s, a), verify_org_chain(s, b)
        seqs = s.exec(select(AuditEvent.seq).where(AuditEvent.org_id == a)).all()
    assert ra.ok and ra.checked == 5 and ra.head_seq == 5, ra
    assert rb.ok and rb.checked == 2, rb
    assert sorted(seqs) == [1, 2, 3, 4, 5]


def test_an_edited_row_is_named(any_engine: Engine) -> None:
    org = _org()
    ids = _append(any_engine, org, 4)
    with any_engine.begin() as c:
        c.execute(
            text("UPDATE auditevent SET actor = 'key:someone-else' WHERE id = :i"), {"i": ids[1]}
        )
    with Session(any_engine) as s:
        report = verify_org_chain(s, org)
    assert not report.ok and report.first_bad is not None
    assert report.first_bad.problem == "edited" and report.first_bad.row_id == ids[1]
    assert f"row {ids[1]}" in report.first_bad.detail


def test_an_edited_row_with_a_recomputed_hash_breaks_the_next_link(any_engine: Engine) -> None:
    org = _org()
    ids = _append(any_engine, org, 3)
    with any_engine.begin() as c:
        c.execute(
            text("UPDATE auditevent SET hash = :h WHERE id = :i"), {"h": "f" * 64, "i": ids[0]}
        )
    with Session(any_engine) as s:
        report = verify_org_chain(s, org)
    assert report.first_bad is not None and report.first_bad.row_id == ids[0]


def test_a_deleted_row_is_named(any_engine: Engine) -> None:
    org = _org()
    ids = _append(any_engine, org, 4)
    with any_engine.begin() as c:
        c.execute(text("DELETE FROM auditevent WHERE id = :i"), {"i": ids[1]})
    with Session(any_engine) as s:
        report = verify_org_chain(s, org)
    assert report.first_bad is not None
    assert report.first_bad.problem == "deleted" and report.first_bad.row_id == ids[2]
    assert "missing" in report.first_bad.detail


def test_deleting_the_newest_row_is_caught_by_the_head(any_engine: Engine) -> None:
    org = _org()
    ids = _append(any_engine, org, 3)
    with any_engine.begin() as c:
        c.execute(text("DELETE FROM auditevent WHERE id = :i"), {"i": ids[-1]})
    with Session(any_engine) as s:
        report = verify_org_chain(s, org)
    assert report.first_bad is not None and report.first_bad.problem == "deleted"
    assert report.first_bad.seq == 3 and "last rows were deleted" in report.first_bad.detail


def test_a_removed_chain_head_is_named(any_engine: Engine) -> None:
    org = _org()
    _append(any_engine, org, 2)
    with any_engine.begin() as c:
        c.execute(text("DELETE FROM auditchainhead WHERE chain = :o"), {"o": org})
    with Session(any_engine) as s:
        report = verify_org_chain(s, org)
    assert report.first_bad is not None and report.first_bad.problem == "edited"
    assert "head was edited or removed" in report.first_bad.detail


def test_reordered_rows_are_named(any_engine: Engine) -> None:
    org = _org()
    ids = _append(any_engine, org, 4)
    with any_engine.begin() as c:  # swap the positions of the 2nd and 3rd rows
        c.execute(text("UPDATE auditevent SET seq = 99 WHERE id = :i"), {"i": ids[1]})
        c.execute(text("UPDATE auditevent SET seq = 2 WHERE id = :i"), {"i": ids[2]})
        c.execute(text("UPDATE auditevent SET seq = 3 WHERE id = :i"), {"i": ids[1]})
    with Session(any_engine) as s:
        report = verify_org_chain(s, org)
    assert report.first_bad is not None
    assert report.first_bad.problem == "reordered" and report.first_bad.row_id == ids[2]


def test_concurrent_appends_never_fork_the_chain(pg_engine: Engine) -> None:
    org = _org()

    def _writer(k: int) -> None:
        for i in range(8):
            with session_scope(pg_engine) as s:
                record_audit(s, actor=f"key:{k}", action="x.concurrent", target=f"t{i}", org_id=org)

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(_writer, range(4)))
    with Session(pg_engine) as s:
        report = verify_org_chain(s, org)
        seqs = s.exec(
            select(AuditEvent.seq).where(AuditEvent.org_id == org).order_by(col(AuditEvent.seq))
        ).all()
    assert report.ok, report
    assert list(seqs) == list(range(1, 33))


@pytest.fixture(params=["sqlite", "postgres"])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of each kind, for running the migrations step by step."""
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


def test_the_migration_links_rows_written_before_the_chain(fresh_url: str) -> None:
    url = fresh_url
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url)
    command.upgrade(cfg, "0004")
    engine = make_engine(url)
    at = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    with engine.begin() as c:
        for i, org in enumerate(["o1", "o2", "o1", None, "o1"]):
            c.execute(
                text(
                    "INSERT INTO auditevent (org_id, actor, action, target, detail, at) "
                    "VALUES (:o, 'admin', 'org.create', :t, :d, :at)"
                ),
                {"o": org, "t": f"t{i}", "d": '{"b": 2.5, "a": [1, "x"], "é": null}', "at": at},
            )
    migrate(url)
    with Session(engine) as s:
        r1, r2 = verify_org_chain(s, "o1"), verify_org_chain(s, "o2")
        assert r1.ok and r1.checked == 3 and r2.ok and r2.checked == 1, (r1, r2)
    with session_scope(engine) as w:  # new appends continue the backfilled chain
        record_audit(w, actor="admin", action="x.after", target="t", org_id="o1")
    with Session(engine) as s:
        after = verify_org_chain(s, "o1")
    assert after.ok and after.head_seq == 4, after
    engine.dispose()


def test_an_org_without_rows_verifies_empty(any_engine: Engine) -> None:
    with Session(any_engine) as s:
        report = verify_org_chain(s, _org())
    assert report.ok and report.checked == 0
