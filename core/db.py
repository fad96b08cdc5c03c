"""Database engine and session helpers (SQLite file by default, Postgres for scale-out).

Repositories receive a ``Session``; they never commit. Commits happen at the boundary: the API
request dependency, the activity wrapper, the CLI command.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import Engine
from sqlmodel import Session, create_engine

# The largest value an INTEGER column holds (Postgres int4): ids, versions and counts sent by a
# client are bounded by it, so an out-of-range number is a 422, not a database error.
INT_COLUMN_MAX = 2**31 - 1


def utcnow() -> datetime:
    """Aware UTC now: every timestamp column stores aware UTC datetimes."""
    return datetime.now(UTC)


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Build an engine; SQLite gets WAL and a busy timeout so API and worker can share the file."""
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            # Deleted rows are overwritten with zeros, not left in free pages (forget, purges).
            cursor.execute("PRAGMA secure_delete=ON")
            cursor.close()

        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


log = logging.getLogger("backline.db")


def scrub_deleted(engine: Engine, tables: Sequence[str], *, full: bool = False) -> None:
    """Make rows already deleted and committed unreadable where the database keeps old copies.

    SQLite (``secure_delete`` is on for every connection) still holds the old page images in
    its write-ahead log until a checkpoint: a TRUNCATE checkpoint copies the zeroed pages home
    and empties the -wal file. Postgres keeps dead tuples in the table's pages until VACUUM
    removes them (and their index entries); their bytes stay in the page's free space until it
    is reused, unless ``full`` rewrites the tables (VACUUM FULL: an exclusive lock while it
    runs). VACUUM cannot run in a transaction, hence the autocommit connection.
    """
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            busy = conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").first()
        if busy is not None and busy[0]:
            # A reader held the log; the next checkpoint (automatic or ours) finishes the job.
            log.warning("WAL checkpoint after a deletion was blocked by a reader")
        return
    if engine.dialect.name == "postgresql":
        preparer = engine.dialect.identifier_preparer
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for table in tables:
                verb = "VACUUM FULL" if full else "VACUUM"
                conn.execute(text(f"{verb} {preparer.quote(table)}"))


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
