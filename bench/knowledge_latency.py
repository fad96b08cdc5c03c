"""Knowledge retrieval latency: the index at 1k / 10k / 100k chunks (exact scan vs usearch HNSW
with exact rerank, faiss HNSW for reference; BM25 as a sparse matrix (the adapter's) vs SQLite
FTS5 vs a dict-based pure-Python BM25), the whole
retriever (normalizer + both searches + RRF + chunk rows + freshness) at 1k and 100k, and
VAPI's knowledge-base-request over HTTP against the real stack.

Vectors are real MiniLM embeddings (``bench.knowledge_corpus``, cached); queries are the frozen
question set plus ASR-noisy variants, embedded the same way. Recall@5 of each ANN is measured
against the exact scan on the same queries. The machine is shared: load average and CPU count
are printed next to the numbers.

    python -m bench.knowledge_latency [--sizes 1000,10000,100000] [--http-requests 300]
        [--skip-http] [--json out.json]
"""

from __future__ import annotations

import argparse
import math
import os
import random
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from bench.asr_noise import corrupt
from bench.common import table, write_json
from bench.knowledge_corpus import chunk_texts, embeddings

ROOT = Path(__file__).resolve().parent.parent
Vectors = npt.NDArray[np.float32]


def say(msg: str) -> None:
    print(f"[knowledge_latency] {msg}", file=sys.stderr, flush=True)


def pct(values_s: Sequence[float], q: float) -> float:
    ordered = sorted(values_s)
    if not ordered:
        return float("nan")
    i = min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[i] * 1000


def timed(fn: Callable[[Any], Any], inputs: Sequence[Any], warm: int = 10) -> list[float]:
    for x in inputs[:warm]:
        fn(x)
    out = []
    for x in inputs:
        t = time.perf_counter()
        fn(x)
        out.append(time.perf_counter() - t)
    return out


def fmt(values: Sequence[float]) -> tuple[str, str]:
    return f"{pct(values, 50):.2f}", f"{pct(values, 95):.2f}"


def queries() -> tuple[list[str], Vectors]:
    import json

    from connectors.embedder import shared_embedder
    from core.knowledge.normalize import normalize

    data = json.loads((ROOT / "bench" / "data" / "kb_questions.json").read_text())
    rng = random.Random(7)
    texts = [q["question"] for q in data["questions"]]
    texts += [corrupt(t, w, rng) for t in list(texts) for w in (0.1, 0.2)]
    texts = [normalize(t) for t in texts]
    return texts, shared_embedder().embed(texts)


# -- the BM25 alternatives the adapter was measured against ----------------------------------------


class Fts5:
    """SQLite FTS5 with the porter tokenizer, ranked by ``bm25()`` (what the adapter first used)."""

    def __init__(self, path: Path, docs: Sequence[str]) -> None:
        import sqlite3

        self.conn = sqlite3.connect(path)
        self.conn.execute("CREATE VIRTUAL TABLE fts USING fts5(text, tokenize='porter unicode61')")
        self.conn.executemany("INSERT INTO fts (rowid, text) VALUES (?, ?)", enumerate(docs))
        self.conn.commit()

    def search(self, text: str, k: int) -> list[tuple[int, float]]:
        from core.knowledge.text import canonical_numbers, content_terms

        terms = list(dict.fromkeys(content_terms(canonical_numbers(text))))
        if not terms:
            return []
        match = " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)
        sql = "SELECT rowid, bm25(fts) FROM fts WHERE fts MATCH ? ORDER BY bm25(fts) LIMIT ?"
        return [(int(r[0]), -float(r[1])) for r in self.conn.execute(sql, (match, k))]


class PyBM25:
    """Okapi BM25 over an in-memory inverted index (k1=1.2, b=0.75)."""

    def __init__(self, docs: Sequence[str]) -> None:
        from core.knowledge.text import content_terms

        self._terms = content_terms
        self.postings: dict[str, list[tuple[int, int]]] = defaultdict(list)
        self.lengths: list[int] = []
        for i, doc in enumerate(docs):
            counts = Counter(content_terms(doc))
            self.lengths.append(sum(counts.values()))
            for term, tf in counts.items():
                self.postings[term].append((i, tf))
        self.avg = statistics.fmean(self.lengths) if self.lengths else 0.0
        n = len(docs)
        self.idf = {
            t: math.log(1 + (n - len(p) + 0.5) / (len(p) + 0.5)) for t, p in self.postings.items()
        }

    def search(self, text: str, k: int) -> list[tuple[int, float]]:
        scores: dict[int, float] = defaultdict(float)
        for term in set(self._terms(text)):
            idf = self.idf.get(term)
            if idf is None:
                continue
            for doc, tf in self.postings[term]:
                norm = tf + 1.2 * (1 - 0.75 + 0.75 * self.lengths[doc] / self.avg)
                scores[doc] += idf * tf * 2.2 / norm
        return sorted(scores.items(), key=lambda kv: -kv[1])[:k]


# -- index level ---------------------------------------------------------------------------------


def build_embedded(path: Path, texts: Sequence[str], vectors: Vectors, ann_min: int) -> Any:
    from connectors.vectors.knowledge_embedded import EmbeddedKnowledgeIndex
    from core.knowledge.ports import IndexEntry

    index = EmbeddedKnowledgeIndex(path, ann_min_entries=ann_min)
    entries = [IndexEntry(f"c{i}", vectors[i], texts[i]) for i in range(len(texts))]
    for start in range(0, len(entries), 20_000):
        index.upsert("bench", "kb", entries[start : start + 20_000])
    return index


def index_level(sizes: Sequence[int], qtexts: list[str], qvecs: Vectors) -> dict[str, Any]:
    import faiss  # noqa: F401  (reference only)

    biggest = max(sizes)
    all_vectors = embeddings(biggest)
    all_texts = chunk_texts(biggest)
    rows: list[list[str]] = []
    bm25_rows: list[list[str]] = []
    raw: dict[str, Any] = {}
    for n in sizes:
        texts, vectors = all_texts[:n], all_vectors[:n]
        with tempfile.TemporaryDirectory(prefix="backline-kbl-") as tmp:
            t = time.perf_counter()
            exact = build_embedded(Path(tmp) / "exact", texts, vectors, ann_min=10**12)
            build_exact = time.perf_counter() - t
            exact_lat = timed(lambda q, ix=exact: ix.dense("bench", "kb", q, 5), list(qvecs))
            truth = [[h.chunk_id for h in exact.dense("bench", "kb", q, 5)] for q in qvecs]
            rows.append([f"{n:,}", "exact scan (numpy, f32)", *fmt(exact_lat), "1.000",
                         f"{build_exact:.1f}"])  # fmt: skip
            raw[f"{n}/exact"] = exact_lat
            sparse_lat = timed(lambda q, ix=exact: ix.keyword("bench", "kb", q, 20), qtexts)
            t = time.perf_counter()
            fts = Fts5(Path(tmp) / "fts.sqlite3", texts)
            fts_build = time.perf_counter() - t
            fts_lat = timed(lambda q, f=fts: f.search(q, 20), qtexts)
            fts_size = (Path(tmp) / "fts.sqlite3").stat().st_size
            fts.conn.close()
            bm25_file = next(Path(tmp, "exact").rglob("bm25.npz"))
            t = time.perf_counter()
            tracemalloc.start()
            py = PyBM25(texts)
            py_mem = tracemalloc.get_traced_memory()[1] / 1e6
            tracemalloc.stop()
            py_build = time.perf_counter() - t
            py_lat = timed(lambda q, bm=py: bm.search(q, 20), qtexts)
            bm25_rows.append([f"{n:,}", "sparse matrix, scipy (chosen)", *fmt(sparse_lat),
                              f"file {bm25_file.stat().st_size / 1e6:.0f} MB",
                              "part of index build"])  # fmt: skip
            bm25_rows.append([f"{n:,}", "SQLite FTS5 bm25()", *fmt(fts_lat),
                              f"file {fts_size / 1e6:.0f} MB", f"{fts_build:.1f}"])  # fmt: skip
            bm25_rows.append([f"{n:,}", "dict-based pure-Python BM25", *fmt(py_lat),
                              f"in memory {py_mem:.0f} MB", f"{py_build:.1f}"])  # fmt: skip
            exact.close()
            if n >= 10_000:
                for dtype in ("f16", "i8", "f32"):
                    t = time.perf_counter()
                    ann = _ann_only(Path(tmp) / f"ann-{dtype}", texts, vectors, dtype)
                    build = time.perf_counter() - t
                    lat = timed(lambda q, a=ann: a.dense("bench", "kb", q, 5), list(qvecs))
                    got = [[h.chunk_id for h in ann.dense("bench", "kb", q, 5)] for q in qvecs]
                    recall = statistics.fmean(
                        len(set(a) & set(b)) / 5 for a, b in zip(got, truth, strict=True)
                    )
                    label = f"usearch HNSW {dtype}, ef 512, + exact rerank" + (
                        " (chosen)" if dtype == "f16" else ""
                    )
                    rows.append([f"{n:,}", label, *fmt(lat), f"{recall:.3f}", f"{build:.1f}"])
                    raw[f"{n}/usearch-{dtype}"] = lat
                    ann.close()
                faiss_lat, faiss_recall, faiss_build = _faiss(vectors, qvecs, truth)
                rows.append([f"{n:,}", "faiss HNSWFlat M=32, ef 512 (no deletes)", *fmt(faiss_lat),
                             f"{faiss_recall:.3f}", f"{faiss_build:.1f}"])  # fmt: skip
        say(f"index level done for {n:,} chunks")
    return {
        "dense_table": table(
            ["chunks", "dense search (top 5)", "p50 ms", "p95 ms", "recall@5 vs exact", "build s"],
            rows,
        ),
        "bm25_table": table(
            ["chunks", "BM25 (top 20)", "p50 ms", "p95 ms", "size", "build s"],
            bm25_rows,
        ),
        "raw_ms": {k: [v * 1000 for v in vals] for k, vals in raw.items()},
    }


def _ann_only(path: Path, texts: Sequence[str], vectors: Vectors, dtype: str) -> Any:
    from connectors.vectors.knowledge_embedded import EmbeddedKnowledgeIndex
    from core.knowledge.ports import IndexEntry

    index = EmbeddedKnowledgeIndex(path, ann_min_entries=1, ann_dtype=dtype)
    entries = [IndexEntry(f"c{i}", vectors[i], texts[i]) for i in range(len(texts))]
    # One write: the graph is built once from every entry (as a first large ingest does).
    index.upsert("bench", "kb", entries)
    assert index.uses_ann("bench", "kb")
    return index


def _faiss(
    vectors: Vectors, qvecs: Vectors, truth: list[list[str]]
) -> tuple[list[float], float, float]:
    import faiss

    t = time.perf_counter()
    index = faiss.IndexHNSWFlat(vectors.shape[1], 32, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = 128
    index.add(vectors)
    build = time.perf_counter() - t
    index.hnsw.efSearch = 512
    lat = timed(lambda q: index.search(q[None, :], 5), list(qvecs))
    got = [[f"c{i}" for i in index.search(q[None, :], 5)[1][0]] for q in qvecs]
    recall = statistics.fmean(len(set(a) & set(b)) / 5 for a, b in zip(got, truth, strict=True))
    return lat, recall, build


# -- the whole retriever -------------------------------------------------------------------------


def retriever_level(sizes: Sequence[int], qtexts: list[str]) -> dict[str, Any]:
    """Hybrid search as the hot path runs it, over chunk rows in a SQLite app database."""
    from sqlmodel import Session

    from cli.ops import migrate
    from connectors.embedder import shared_embedder
    from core.db import make_engine, utcnow
    from core.knowledge.models import KnowledgeBase, KnowledgeChunk, KnowledgeSource
    from core.knowledge.retrieval import KnowledgeRetriever
    from core.knowledge.text import index_text

    embedder = shared_embedder()
    rows: list[list[str]] = []
    for n in sizes:
        vectors = embeddings(max(sizes))[:n]
        texts = chunk_texts(max(sizes))[:n]
        with tempfile.TemporaryDirectory(prefix="backline-kbr-") as tmp:
            url = f"sqlite:///{tmp}/app.db"
            migrate(url)
            engine = make_engine(url)
            now = utcnow()
            with Session(engine) as s:
                s.add(KnowledgeBase(id="kb", org_id="bench", agent_id="demo", name="default"))
                s.add(KnowledgeSource(id="src", org_id="bench", agent_id="demo", kb_id="kb",
                                      kind="file", name="corpus", verified_at=now,
                                      status="fresh"))  # fmt: skip
                s.commit()
                s.bulk_save_objects(
                    [
                        KnowledgeChunk(
                            id=f"c{i}",
                            org_id="bench",
                            agent_id="demo",
                            kb_id="kb",
                            source_id="src",
                            doc_key=f"d{i // 20}",
                            position=i % 20,
                            text=texts[i],
                            content_hash=str(i),
                            fetched_at=now,
                        )
                        for i in range(n)
                    ]
                )
                s.commit()
            for mode_label, ann_min in (("exact", 10**12), ("HNSW f16", 10_000)):
                if n < 10_000 and ann_min == 10_000:
                    continue
                index = build_embedded(
                    Path(tmp) / mode_label.replace(" ", ""),
                    [index_text("", "", t) for t in texts],
                    vectors,
                    ann_min,
                )
                retriever = KnowledgeRetriever(embedder, index)
                with Session(engine) as session:
                    # Fresh queries every time: the embedding cache never hits here.
                    counter = iter(range(10**9))

                    def fresh(q: str, r: Any = retriever, c: Any = counter) -> Any:
                        return r.search(session, "demo", f"{q} {next(c)}", k=5)

                    def repeat(q: str, r: Any = retriever) -> Any:
                        return r.search(session, "demo", q, k=5)

                    full = timed(fresh, qtexts)
                    cached = timed(repeat, qtexts, warm=len(qtexts))
                rows.append([f"{n:,}", mode_label, *fmt(full), *fmt(cached)])
                index.close()
            engine.dispose()
        say(f"retriever level done for {n:,} chunks")
    embed_lat = timed(lambda q: embedder.embed([q]), qtexts)
    return {
        "table": table(
            [
                "chunks",
                "dense index",
                "search p50 ms",
                "p95 ms",
                "search, query embedding cached p50",
                "p95",
            ],
            rows,
        ),
        "embed_p50_p95_ms": fmt(embed_lat),
    }


# -- knowledge-base-request over HTTP --------------------------------------------------------------


def http_level(requests: int, sqlite: bool) -> dict[str, Any]:
    import httpx

    from bench.common import Stack
    from cli.kb import DEMO_KNOWLEDGE, Api, upsert_files

    with Stack(sqlite=sqlite, label="kb-latency") as stack:
        tenant = stack.create_tenant()
        with Api(stack.api_url, "test-admin-token", timeout=60) as api:
            files = sorted(p for p in DEMO_KNOWLEDGE.iterdir())
            changes = upsert_files(api, tenant.agent_id, files)
            ids = [c["source"]["id"] for c, _ in changes]
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                states = [api.call("GET", f"/v1/knowledge/sources/{i}") for i in ids]
                if all(s["freshness"] == "fresh" and not s["index_pending"] for s in states):
                    break
                time.sleep(0.5)
            else:
                raise RuntimeError("the demo knowledge base did not turn fresh within 300 s")
        say(f"demo base fresh ({sum(s['chunk_count'] for s in states)} chunks); sending requests")
        import json

        questions = [
            q["question"]
            for q in json.loads((ROOT / "bench/data/kb_questions.json").read_text())["questions"]
        ]
        rng = random.Random(3)
        latencies: list[float] = []
        statuses: Counter[int] = Counter()
        with httpx.Client(base_url=stack.api_url, timeout=30) as http:
            for i in range(requests + 20):
                question = corrupt(rng.choice(questions), 0.1, rng) + f" {i}"
                body = {
                    "message": {
                        "type": "knowledge-base-request",
                        "call": {"id": f"kb-bench-{i}", "type": "webCall"},
                        "messagesOpenAIFormatted": [{"role": "user", "content": question}],
                    }
                }
                t = time.perf_counter()
                r = http.post(tenant.webhook, content=json.dumps(body), headers=tenant.vapi_headers)
                elapsed = time.perf_counter() - t
                if i >= 20:  # the first requests warm the model and caches
                    latencies.append(elapsed)
                    statuses[r.status_code] += 1
                assert r.json()["documents"], r.text
        from sqlmodel import Session, select

        from core.calls.models import CallEvent

        engine = stack.engine()
        with Session(engine) as session:
            server = [
                float(e.data["latency_ms"]) / 1000
                for e in session.exec(
                    select(CallEvent).where(CallEvent.type == "knowledge_request")
                )
            ][20:]
        engine.dispose()
    return {
        "database": "SQLite" if sqlite else "Postgres",
        "requests": len(latencies),
        "statuses": dict(statuses),
        "client_ms": {
            "p50": pct(latencies, 50),
            "p95": pct(latencies, 95),
            "p99": pct(latencies, 99),
        },
        "server_retrieval_ms": {"p50": pct(server, 50), "p95": pct(server, 95)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--retriever-sizes", default="1000,100000")
    parser.add_argument("--http-requests", type=int, default=300)
    parser.add_argument("--skip-http", action="store_true")
    parser.add_argument("--skip-index", action="store_true")
    parser.add_argument("--postgres", action="store_true", help="HTTP run on Postgres")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    result: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "load_average_at_start": os.getloadavg(),
    }
    qtexts, qvecs = queries()
    say(f"{len(qtexts)} queries embedded")
    if not args.skip_index:
        sizes = [int(s) for s in args.sizes.split(",")]
        result["index"] = index_level(sizes, qtexts, qvecs)
        print(result["index"]["dense_table"] + "\n\n" + result["index"]["bm25_table"] + "\n")
        rsizes = [int(s) for s in args.retriever_sizes.split(",")]
        result["retriever"] = retriever_level(rsizes, qtexts)
        print(result["retriever"]["table"])
        print(f"query embedding alone p50/p95 ms: {result['retriever']['embed_p50_p95_ms']}\n")
    if not args.skip_http:
        result["http"] = http_level(args.http_requests, sqlite=not args.postgres)
        print(result["http"])
    result["load_average_at_end"] = os.getloadavg()
    print(
        f"load average start {result['load_average_at_start']} end {result['load_average_at_end']}"
    )
    write_json(args.json, result)


if __name__ == "__main__":
    main()
