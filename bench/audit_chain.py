"""Cost of the hash-chained audit trail: one append (its own transaction, as a request or an
activity writes it), appends from several writers on one organization's chain (they queue on
the chain head) and on separate organizations, and a full verification.

Usage: ``python -m bench.audit_chain [--appends 1000] [--writers 4] [--verify-rows 10000]``.
Creates and drops its own Postgres database (and a SQLite file in a temp dir); prints tables.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
from sqlalchemy.engine import Engine
from sqlmodel import Session

from bench.common import PG_HOST, PG_PORT, fmt_ms, machine_info, say, summarize_ms, table
from cli.ops import migrate
from core.audit.models import AuditEvent
from core.audit.service import record_audit, verify_org_chain
from core.db import make_engine, session_scope

ADMIN_URL = f"postgresql://postgres@{PG_HOST}:{PG_PORT}/postgres"


def _append(engine: Engine, org: str, i: int) -> float:
    start = time.perf_counter()
    with session_scope(engine) as s:
        record_audit(
            s,
            actor="key:bench",
            action="tool.call",
            target=f"agent:a/tool:t{i % 7}",
            org_id=org,
            detail={"call_id": f"c{i}", "status": "ok", "attempts": 1, "arguments": ["a", "b"]},
        )
    return time.perf_counter() - start


def _plain_insert(engine: Engine, org: str, i: int) -> float:
    """The same row without the chain (no head lock, no hash): the baseline."""
    start = time.perf_counter()
    with session_scope(engine) as s:
        s.add(
            AuditEvent(
                org_id=org,
                actor="key:bench",
                action="tool.call",
                target=f"agent:a/tool:t{i % 7}",
                detail={"call_id": f"c{i}", "status": "ok", "attempts": 1},
            )
        )
    return time.perf_counter() - start


def _writers(engine: Engine, orgs: Callable[[int], str], writers: int, each: int) -> float:
    """Appends per second with ``writers`` threads, ``each`` appends per thread."""

    def _run(k: int) -> None:
        for i in range(each):
            _append(engine, orgs(k), i)

    start = time.perf_counter()
    with ThreadPoolExecutor(writers) as pool:
        list(pool.map(_run, range(writers)))
    return writers * each / (time.perf_counter() - start)


def measure(name: str, engine: Engine, args: argparse.Namespace) -> list[list[str]]:
    org = f"bench-{uuid.uuid4().hex[:6]}"
    for i in range(20):  # warm-up: connections, statement caches
        _append(engine, org, i)
    plain = summarize_ms([_plain_insert(engine, f"{org}-plain", i) for i in range(args.appends)])
    lat = summarize_ms([_append(engine, org, i) for i in range(args.appends)])
    each = max(args.appends // args.writers, 1)
    shared = _writers(engine, lambda _k: org, args.writers, each)
    separate = _writers(engine, lambda k: f"{org}-{k}", args.writers, each)
    big = f"{org}-verify"
    with session_scope(engine) as s:  # one transaction: the fixture, not what is measured
        for i in range(args.verify_rows):
            record_audit(s, actor="key:bench", action="x.y", target=f"t{i}", org_id=big)
    start = time.perf_counter()
    with Session(engine) as s:
        report = verify_org_chain(s, big)
    verify_s = time.perf_counter() - start
    assert report.ok and report.checked == args.verify_rows, report
    with Session(engine) as s:
        assert verify_org_chain(s, org).ok
    return [
        [
            name,
            "plain insert, no chain (p50 / p95 ms)",
            f"{fmt_ms(plain['p50'])} / {fmt_ms(plain['p95'])}",
        ],
        [name, "one append (p50 / p95 ms)", f"{fmt_ms(lat['p50'])} / {fmt_ms(lat['p95'])}"],
        [name, f"{args.writers} writers, one org (appends/s)", f"{shared:.0f}"],
        [name, f"{args.writers} writers, {args.writers} orgs (appends/s)", f"{separate:.0f}"],
        [name, f"verify {args.verify_rows} rows (s)", f"{verify_s:.2f}"],
    ]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--appends", type=int, default=1000)
    p.add_argument("--writers", type=int, default=4)
    p.add_argument("--verify-rows", type=int, default=10000)
    args = p.parse_args()
    info = machine_info()
    say(f"{info['cpus']} cores ({info['cpu_model']}), load {info['loadavg_at_start']}")
    rows: list[list[str]] = []
    db = f"backline_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{db}"')
    try:
        url = f"postgresql+psycopg://postgres@{PG_HOST}:{PG_PORT}/{db}"
        migrate(url)
        engine = make_engine(url)
        rows += measure("postgres", engine, args)
        engine.dispose()
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (db,)
            )
            admin.execute(f'DROP DATABASE IF EXISTS "{db}"')
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        migrate(url)
        engine = make_engine(url)
        rows += measure("sqlite", engine, args)
        engine.dispose()
    print(table(["database", "measure", "value"], rows))


if __name__ == "__main__":
    main()
