"""Knowledge ingest cost and retrieval latency of one base inside a large store.

1. **Ingest**: wall time to ingest (a) the demo corpus (``examples/knowledge``) and (b) a
   generated corpus of about 5k chunks through the production path, in-process (the knowledge
   service's add / fetch / ingest / index writes / mark fresh, the llama-index pipeline and the
   real MiniLM, a temp SQLite database and data dir), against the embedder alone embedding the
   same chunk texts in the same batch size. Then a refresh of the unchanged sources (what the
   refresh workflow runs: fetch says unchanged, mark fresh) and, for reference, a re-ingest of
   the same content (the docstore skips every section), as a share of the full ingest.
2. **Retrieval, one base inside a big store**: the whole retriever (normalizer, query embedding,
   dense + BM25, RRF, chunk rows, freshness) for an agent whose base holds 20k chunks, in a
   store holding 100k chunks (four other agents' bases hold the rest), queries sent open loop at
   a fixed rate (latency counted from each query's scheduled time); then the same for a single
   100k-chunk base. In-process, not over HTTP. Vectors come from the cached MiniLM corpus
   (``bench.knowledge_corpus``).

3. **The same over HTTP** (``--http``): the 20k-in-100k store built straight into the database
   and data dir of a running stack (API process, Temporal dev server, no worker; five tenants,
   one 20k base each), then VAPI ``knowledge-base-request`` webhooks for the first agent's base
   at a fixed rate, open loop (latency from each request's scheduled send time), each question
   unique (frozen questions, some with simulated ASR word errors, and a running number) so the
   query-embedding cache never hits. Every reply must carry documents. Prints p50/p95/p99 and
   the API process's CPU ms per request. Postgres unless ``--sqlite``.

    python -m bench.knowledge_ingest [--chunks 5000] [--rate 20] [--queries 300]
        [--skip-ingest] [--skip-retrieval] [--skip-100k] [--http [--sqlite] [--profile-api]]
        [--json out.json]
"""

from __future__ import annotations

import argparse
import base64
import os
import random
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.common import table, write_json
from bench.knowledge_corpus import chunk_texts, embeddings
from bench.knowledge_latency import pct, queries

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "examples" / "knowledge"


def say(msg: str) -> None:
    print(f"[knowledge_ingest] {msg}", file=sys.stderr, flush=True)


def generated_corpus(chunks: int, files: int = 10) -> list[tuple[str, bytes]]:
    """Markdown files, one section per intended chunk (two corpus paragraphs, ~130 tokens,
    under the 160-token chunk size)."""
    texts = chunk_texts(chunks * 2, seed=23)
    per_file = max(1, chunks // files)
    out = []
    for f in range(0, chunks, per_file):
        parts = [f"# Service handbook part {f // per_file + 1}\n"]
        for i in range(f, min(f + per_file, chunks)):
            parts.append(f"## Topic {i}\n\n{texts[2 * i]} {texts[2 * i + 1]}\n")
        out.append((f"handbook-{f // per_file + 1:02d}.md", "\n".join(parts).encode()))
    return out


class Pipeline:
    """The refresh activities' steps, in-process against a temp database and data dir."""

    def __init__(self, workdir: Path) -> None:
        from cli.ops import migrate
        from connectors.embedder import shared_embedder
        from connectors.knowledge import build_fetcher, build_ingestor, build_knowledge_index
        from core.db import make_engine, session_scope
        from core.egress import EgressPolicy
        from core.tenancy.schemas import AgentCreate, OrganizationCreate
        from core.tenancy.service import TenancyService

        url = f"sqlite:///{workdir / 'backline.db'}"
        migrate(url)
        self.engine = make_engine(url)
        self.embedder = shared_embedder()
        self.embedder.warm_up()
        self.index = build_knowledge_index(workdir)
        self.ingestor = build_ingestor(self.embedder)
        self.fetcher = build_fetcher(EgressPolicy())
        with session_scope(self.engine) as session:
            tenancy = TenancyService(session, "bench-secret", "bench-admin")
            tenancy.create_org(OrganizationCreate(id="bench", name="Bench"), "bench")
            tenancy.create_agent("bench", AgentCreate(id="demo", name="Acme"), "bench")

    def add(self, name: str, raw: bytes) -> str:
        from core.db import session_scope
        from core.knowledge.schemas import SourceCreate
        from core.knowledge.service import KnowledgeService

        with session_scope(self.engine) as session:
            data = SourceCreate(
                kind="file",
                name=name,
                filename=name,
                content_base64=base64.b64encode(raw).decode(),
            )
            return KnowledgeService(session).add_source("bench", "demo", data, "bench").id

    def refresh(self, source_id: str, reingest: bool = False) -> tuple[str, int]:
        """fetch -> (ingest -> index writes -> clear outbox) -> mark fresh, as the workflow."""
        from core.db import session_scope, utcnow
        from core.knowledge.service import KnowledgeIndexing, KnowledgeService

        now = utcnow()
        with session_scope(self.engine) as session:
            KnowledgeIndexing(session, self.index, self.embedder).recover_outbox(source_id)
        with session_scope(self.engine) as session:
            fetched = KnowledgeService(session).fetch(source_id, self.fetcher, now)
        chunks = 0
        if fetched.status == "changed" or reingest:
            assert fetched.content_hash is not None
            with session_scope(self.engine) as session:
                svc = KnowledgeIndexing(session, self.index, self.embedder)
                outcome = svc.ingest(source_id, fetched.content_hash, self.ingestor)
                assert outcome is not None
                chunks = outcome.embedded
            for ops in svc.apply_pending_index():
                with session_scope(self.engine) as session:
                    KnowledgeService(session).clear_outbox(ops.source_id, ops.token)
        with session_scope(self.engine) as session:
            KnowledgeService(session).mark_fresh(source_id, now)
        return fetched.status, chunks

    def chunk_texts(self) -> list[str]:
        from sqlmodel import Session, select

        from core.knowledge.models import KnowledgeChunk
        from core.knowledge.text import index_text

        with Session(self.engine) as session:
            rows = session.exec(
                select(KnowledgeChunk).order_by(
                    KnowledgeChunk.source_id, KnowledgeChunk.section_order, KnowledgeChunk.position
                )
            ).all()
            return [index_text(r.title, r.section, r.text) for r in rows]


def ingest_case(label: str, files: Sequence[tuple[str, bytes]]) -> dict[str, Any]:
    from connectors.llamaindex import CHUNK_TOKENS, EMBED_BATCH

    with tempfile.TemporaryDirectory(prefix="backline-kbi-") as tmp:
        pipe = Pipeline(Path(tmp))
        t = time.perf_counter()
        ids = [pipe.add(name, raw) for name, raw in files]
        embedded = sum(pipe.refresh(i)[1] for i in ids)
        full = time.perf_counter() - t
        say(f"{label}: ingested {embedded} chunks in {full:.1f}s")
        texts = pipe.chunk_texts()
        t = time.perf_counter()
        for start in range(0, len(texts), EMBED_BATCH):
            pipe.embedder.embed(texts[start : start + EMBED_BATCH])
        embed_only = time.perf_counter() - t
        say(f"{label}: embedder alone {embed_only:.1f}s")
        t = time.perf_counter()
        statuses = [pipe.refresh(i)[0] for i in ids]
        refresh = time.perf_counter() - t
        assert set(statuses) == {"unchanged"}, statuses
        t = time.perf_counter()
        reembedded = sum(pipe.refresh(i, reingest=True)[1] for i in ids)
        reingest = time.perf_counter() - t
        assert reembedded == 0, reembedded
        pipe.index.close()
        pipe.engine.dispose()
    return {
        "corpus": label,
        "sources": len(files),
        "chunks": len(texts),
        "chunk_tokens": CHUNK_TOKENS,
        "batch": EMBED_BATCH,
        "ingest_s": full,
        "embed_only_s": embed_only,
        "overhead_pct": 100 * (full - embed_only) / embed_only,
        "refresh_unchanged_s": refresh,
        "refresh_pct": 100 * refresh / full,
        "reingest_unchanged_s": reingest,
        "reingest_pct": 100 * reingest / full,
    }


def ingest_level(chunks: int) -> dict[str, Any]:
    demo = [(p.name, p.read_bytes()) for p in sorted(DEMO.iterdir())]
    results = [ingest_case("demo (examples/knowledge)", demo)]
    results.append(ingest_case(f"generated ({chunks:,} sections)", generated_corpus(chunks)))
    rows = [
        [
            r["corpus"],
            r["sources"],
            f"{r['chunks']:,}",
            f"{r['ingest_s']:.2f}",
            f"{r['embed_only_s']:.2f}",
            f"{r['overhead_pct']:+.1f}%",
            f"{r['refresh_unchanged_s'] * 1000:.0f} ms ({r['refresh_pct']:.2f}%)",
            f"{r['reingest_unchanged_s'] * 1000:.0f} ms ({r['reingest_pct']:.1f}%)",
        ]
        for r in results
    ]
    head = ["corpus", "sources", "chunks", "ingest s", "embedder alone s", "overhead",
            "refresh, unchanged", "re-ingest, same content"]  # fmt: skip
    return {"results": results, "table": table(head, rows)}


# -- retrieval: one base inside a big store ----------------------------------------------------


def fill_store(
    tmp: Path,
    layout: Sequence[tuple[str, int]],
    *,
    url: str | None = None,
    orgs: dict[str, str] | None = None,
) -> tuple[Any, Any]:
    """Chunk rows and an embedded index (``tmp / "knowledge"``, the API's layout under its data
    dir) with one base per agent. ``url`` is an already migrated database (a new SQLite file in
    ``tmp`` if not given); ``orgs`` maps an agent to its organisation (``bench`` if absent)."""
    from sqlmodel import Session

    from cli.ops import migrate
    from connectors.vectors.knowledge_embedded import EmbeddedKnowledgeIndex
    from core.db import make_engine, utcnow
    from core.knowledge.models import KnowledgeBase, KnowledgeChunk, KnowledgeSource
    from core.knowledge.normalize import vocabulary_terms
    from core.knowledge.ports import IndexEntry
    from core.knowledge.text import index_text

    total = sum(n for _, n in layout)
    vectors = embeddings(100_000)
    texts = chunk_texts(100_000)
    if url is None:
        url = f"sqlite:///{tmp}/app.db"
        migrate(url)
    engine = make_engine(url)
    index = EmbeddedKnowledgeIndex(tmp / "knowledge", ann_min_entries=10_000)
    now = utcnow()
    offset = 0
    for agent, n in layout:
        kb = f"kb-{agent}"
        org = (orgs or {}).get(agent, "bench")
        picks = [(offset + i) % len(texts) for i in range(n)]
        offset += n
        with Session(engine) as s:
            vocab = vocabulary_terms([texts[j] for j in picks])
            s.add(KnowledgeBase(id=kb, org_id=org, agent_id=agent, name="default",
                                vocabulary=vocab))  # fmt: skip
            s.add(KnowledgeSource(id=f"src-{agent}", org_id=org, agent_id=agent, kb_id=kb,
                                  kind="file", name="corpus", verified_at=now,
                                  status="fresh"))  # fmt: skip
            s.commit()
            s.bulk_save_objects(
                [
                    KnowledgeChunk(
                        id=f"{agent}-c{i}",
                        org_id=org,
                        agent_id=agent,
                        kb_id=kb,
                        source_id=f"src-{agent}",
                        doc_key=f"d{i // 20}",
                        position=i % 20,
                        text=texts[j],
                        content_hash=str(j),
                        fetched_at=now,
                    )
                    for i, j in enumerate(picks)
                ]
            )
            s.commit()
        entries = [
            IndexEntry(f"{agent}-c{i}", vectors[j], index_text("", "", texts[j]))
            for i, j in enumerate(picks)
        ]
        for start in range(0, len(entries), 20_000):
            index.upsert(org, kb, entries[start : start + 20_000])
        say(f"store: {agent} holds {n:,} chunks ({offset:,} of {total:,})")
    return engine, index


def open_loop(fn: Any, inputs: Sequence[str], rate: float) -> list[float]:
    """Send at a fixed rate; latency counts from each query's scheduled time (queueing included)."""
    out = []
    start = time.perf_counter() + 0.05
    for i, x in enumerate(inputs):
        due = start + i / rate
        now = time.perf_counter()
        if now < due:
            time.sleep(due - now)
        fn(x)
        out.append(time.perf_counter() - due)
    return out


def retrieval_level(requests: int, rate: float, big: bool) -> dict[str, Any]:
    from sqlmodel import Session

    from connectors.embedder import shared_embedder
    from core.knowledge.retrieval import KnowledgeRetriever

    qtexts, _ = queries()
    rng = random.Random(5)
    rows = []
    raw: dict[str, Any] = {}
    cases = [
        ("20k base in a 100k store", [("a0", 20_000)] + [(f"a{i}", 20_000) for i in (1, 2, 3, 4)])
    ]
    if big:
        cases.append(("one 100k base", [("a0", 100_000)]))
    for label, layout in cases:
        with tempfile.TemporaryDirectory(prefix="backline-kbs-") as tmp:
            t = time.perf_counter()
            engine, index = fill_store(Path(tmp), layout)
            build = time.perf_counter() - t
            retriever = KnowledgeRetriever(shared_embedder(), index)
            counter = iter(range(10**9))
            with Session(engine) as session:

                def ask(q: str, r: Any = retriever, c: Any = counter, s: Any = session) -> Any:
                    # A fresh query string each time: the embedding cache never hits.
                    answer = r.search(s, "a0", f"{q} {next(c)}", k=5)
                    assert answer.hits, answer
                    return answer

                for q in qtexts[:20]:
                    ask(q)
                asked = [rng.choice(qtexts) for _ in range(requests)]
                lat = open_loop(ask, asked, rate)
            index.close()
            engine.dispose()
        raw[label] = [v * 1000 for v in lat]
        total = sum(n for _, n in layout)
        rows.append([label, f"{total:,}", f"{rate:g}/s", len(lat), f"{pct(lat, 50):.2f}",
                     f"{pct(lat, 95):.2f}", f"{pct(lat, 99):.2f}", f"{build:.0f}"])  # fmt: skip
        say(f"{label}: p50 {pct(lat, 50):.2f} ms, p95 {pct(lat, 95):.2f} ms")
    head = ["searched base", "chunks in store", "open loop", "queries", "p50 ms", "p95 ms",
            "p99 ms", "store build s"]  # fmt: skip
    return {"table": table(head, rows), "raw_ms": raw}


# -- the same over HTTP: VAPI knowledge-base-request against the API process ---------------------


def spoken_questions(n: int, seed: int = 3) -> list[str]:
    """``n`` distinct request texts: frozen questions, as asked or with 10% / 20% simulated ASR
    word errors, each with a running number so the API's query-embedding cache never hits."""
    import json

    from bench.asr_noise import corrupt

    data = json.loads((ROOT / "bench" / "data" / "kb_questions.json").read_text())
    frozen = [q["question"] for q in data["questions"]]
    rng = random.Random(seed)
    out = []
    for i in range(n):
        q = rng.choice(frozen)
        wer = rng.choice((0.0, 0.1, 0.2))
        out.append(f"{corrupt(q, wer, rng) if wer else q} {i}")
    return out


def kb_request(call_id: str, question: str) -> bytes:
    import json

    body = {
        "message": {
            "type": "knowledge-base-request",
            "call": {"id": call_id, "type": "webCall"},
            "messagesOpenAIFormatted": [{"role": "user", "content": question}],
        }
    }
    return json.dumps(body).encode()


async def open_loop_http(
    client: Any, path: str, headers: dict[str, str], bodies: Sequence[bytes], rate: float
) -> list[tuple[float, int, int]]:
    """POST each body at its fixed slot (``i / rate`` s), without waiting for earlier replies;
    returns (latency from the scheduled time in s, status, documents in the reply) per request."""
    import asyncio

    import httpx

    loop = asyncio.get_running_loop()
    start = loop.time() + 0.05

    async def one(i: int, body: bytes) -> tuple[float, int, int]:
        due = start + i / rate
        await asyncio.sleep(max(0.0, due - loop.time()))
        try:
            r = await client.post(path, content=body, headers=headers)
        except httpx.HTTPError:
            return loop.time() - due, 0, 0
        elapsed = loop.time() - due
        docs = len(r.json().get("documents") or []) if r.status_code == 200 else 0
        return elapsed, r.status_code, docs

    return list(await asyncio.gather(*(one(i, b) for i, b in enumerate(bodies))))


def http_level(
    requests: int, rate: float, sqlite: bool, warm: int = 20, profile: bool = False
) -> dict[str, Any]:
    """The 20k-in-100k store of the in-process case, built straight into the database and data
    dir of a running stack (API process, Temporal dev server, no worker), then VAPI
    knowledge-base-requests for one agent's 20k base at a fixed rate, open loop."""
    import asyncio

    import httpx

    from bench.common import Stack, postgres_backend_pids, proc_cpu_seconds

    stack = Stack(sqlite=sqlite, worker=False, label="kb-http", profile=["api"] if profile else [])
    with stack:
        from fakes.vapi import create_tenant

        with httpx.Client(base_url=stack.api_url, timeout=30) as http:
            tenants = [create_tenant(http, f"asst-kb-{i}") for i in range(5)]
        layout = [(t.agent_id, 20_000) for t in tenants]
        t = time.perf_counter()
        engine, index = fill_store(
            stack.workdir / "data",
            layout,
            url=stack.database_url,
            orgs={t.agent_id: t.org_id for t in tenants},
        )
        index.close()
        engine.dispose()
        build = time.perf_counter() - t
        target = tenants[0]
        texts = spoken_questions(warm + requests)
        bodies = [kb_request(f"kb-http-{i}", q) for i, q in enumerate(texts)]
        api_pid = stack.pid("api")

        def cpu() -> float:
            pg = [] if stack.db_name is None else postgres_backend_pids(stack.db_name)
            return sum(proc_cpu_seconds(p) or 0.0 for p in [api_pid, *pg])

        async def run() -> tuple[list[tuple[float, int, int]], float, float]:
            async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as client:
                for b in bodies[:warm]:  # loads the base's index and warms the model, one at a time
                    r = await client.post(target.webhook, content=b, headers=target.vapi_headers)
                    assert r.status_code == 200 and r.json()["documents"], r.text
                api0, all0 = proc_cpu_seconds(api_pid) or 0.0, cpu()
                got = await open_loop_http(
                    client, target.webhook, target.vapi_headers, bodies[warm:], rate
                )
                return got, (proc_cpu_seconds(api_pid) or 0.0) - api0, cpu() - all0

        say(f"store built in {build:.0f} s; {warm} warm-ups, then {requests} at {rate:g}/s")
        got, api_cpu, all_cpu = asyncio.run(run())
    lat = [g[0] for g in got if g[1] == 200]
    statuses: dict[int, int] = {}
    for g in got:
        statuses[g[1]] = statuses.get(g[1], 0) + 1
    without_docs = sum(1 for g in got if g[1] == 200 and g[2] == 0)
    db = "SQLite" if sqlite else "Postgres"
    api_ms = 1000 * api_cpu / len(got)
    db_ms = 1000 * (all_cpu - api_cpu) / len(got)
    db_note = "" if sqlite else f" (+ Postgres backends: {db_ms:.1f})"
    head = ["searched base", "chunks in store", "database", "open loop", "queries", "p50 ms",
            "p95 ms", "p99 ms", "API CPU ms/req", "no documents", "store build s"]  # fmt: skip
    row = ["20k base in a 100k store, HTTP", "100,000", db, f"{rate:g}/s", len(got),
           f"{pct(lat, 50):.2f}", f"{pct(lat, 95):.2f}", f"{pct(lat, 99):.2f}",
           f"{api_ms:.1f}{db_note}", without_docs, f"{build:.0f}"]  # fmt: skip
    say(f"HTTP: p50 {pct(lat, 50):.2f} ms, p95 {pct(lat, 95):.2f} ms; statuses {statuses}")
    return {
        "table": table(head, [row]),
        "database": db,
        "statuses": statuses,
        "without_documents": without_docs,
        "api_cpu_ms_per_request": api_ms,
        "api_and_db_cpu_ms_per_request": 1000 * all_cpu / len(got),
        "p50_ms": pct(lat, 50),
        "p95_ms": pct(lat, 95),
        "p99_ms": pct(lat, 99),
        "raw_ms": [v * 1000 for v in lat],
        "api_profile": stack.profiles.get("api"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--chunks", type=int, default=5000, help="generated corpus size")
    parser.add_argument("--rate", type=float, default=20.0, help="open-loop queries per second")
    parser.add_argument("--queries", type=int, default=300, help="queries per retrieval case")
    parser.add_argument("--skip-ingest", action="store_true")
    parser.add_argument("--skip-retrieval", action="store_true")
    parser.add_argument("--skip-100k", action="store_true", help="only the 20k-in-100k case")
    parser.add_argument(
        "--http",
        action="store_true",
        help="the 20k-in-100k case over HTTP (VAPI knowledge-base-request to the API process); "
        "skips the other cases",
    )
    parser.add_argument("--sqlite", action="store_true", help="HTTP case on SQLite, not Postgres")
    parser.add_argument(
        "--profile-api",
        action="store_true",
        help="HTTP case: run the API under bench.sampled and print its profile (slows it)",
    )
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    if args.http:
        args.skip_ingest = args.skip_retrieval = True
    result: dict[str, Any] = {"cpus": os.cpu_count(), "load_average_at_start": os.getloadavg()}
    if not args.skip_ingest:
        result["ingest"] = ingest_level(args.chunks)
        print(result["ingest"]["table"] + "\n", flush=True)
    if not args.skip_retrieval:
        result["retrieval"] = retrieval_level(args.queries, args.rate, not args.skip_100k)
        print(result["retrieval"]["table"] + "\n", flush=True)
    if args.http:
        result["http"] = http_level(args.queries, args.rate, args.sqlite, profile=args.profile_api)
        print(result["http"]["table"] + "\n", flush=True)
        if result["http"]["api_profile"]:
            print(f"### sampled profile of the API process\n\n{result['http']['api_profile']}\n")
    result["load_average_at_end"] = os.getloadavg()
    print(
        f"cpus {result['cpus']}; load average start {result['load_average_at_start']} "
        f"end {result['load_average_at_end']}"
    )
    write_json(args.json, result)


if __name__ == "__main__":
    main()
