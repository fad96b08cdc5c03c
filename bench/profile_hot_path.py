"""Where an in-turn lookup spends its time: the edge's answer path timed in-process, per step.

Seeds a smaller copy of the lookup benchmark's data (same shape per caller: 10 summaries and 3
facts), then calls ``AnsweringService._answer_sync`` (what the webhook route runs in its thread
pool) for parsed assistant-request and memory_search events, with timers wrapped around each
step: agent lookup excluded (cached), caller hash, profile read, query embedding, vector read +
scoring, summary/fact reads, the event append and the commit. Runs serially first (pure service
time), then with several threads at once (what the API's thread pool does under load), and
prints a cProfile top list. HTTP + uvicorn + FastAPI overhead is the lookup benchmark's latency
minus these figures.

    python -m bench.profile_hot_path [--sqlite] [--threads 4]
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import pstats
import random
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bench.common import (
    Stack,
    fmt_ms,
    install_signal_handlers,
    parse_env,
    summarize_ms,
    table,
)
from bench.lookup_latency import AR, TC, Load, caller_number, seed

_local = threading.local()
TIMES: dict[tuple[str, str], list[float]] = defaultdict(list)
_lock = threading.Lock()


@contextlib.contextmanager
def _timed(step: str) -> Iterator[None]:
    t0 = time.perf_counter()
    try:
        yield
    finally:
        kind = getattr(_local, "kind", "?")
        with _lock:
            TIMES[(kind, step)].append(time.perf_counter() - t0)


def _wrap(owner: Any, attr: str, step: str) -> None:
    original: Callable[..., Any] = getattr(owner, attr)

    def wrapper(*a: Any, **kw: Any) -> Any:
        with _timed(step):
            return original(*a, **kw)

    setattr(owner, attr, wrapper)


def instrument() -> None:
    from sqlmodel import Session

    from connectors.embedder import MiniLMEmbedder, OnnxMiniLMEmbedder
    from connectors.vectors.embedded import EmbeddedVectorStore
    from core.calls.service import CallsService
    from core.memory import repository as repo

    _wrap(MiniLMEmbedder, "embed", "embed query (MiniLM, torch)")
    _wrap(OnnxMiniLMEmbedder, "embed", "embed query (MiniLM, onnxruntime)")
    _wrap(EmbeddedVectorStore, "query", "vector read + cosine (own session)")
    with contextlib.suppress(ImportError):  # commits before the recall cache lack these
        from core.memory.recall import CallerSnapshot

        _wrap(CallerSnapshot, "query", "snapshot cosine (in process)")
        _wrap(EmbeddedVectorStore, "read_partition", "partition read (snapshot load)")
        _wrap(repo, "profile_stamp", "profile stamp read")
    _wrap(repo, "get_profile", "profile read")
    _wrap(repo, "list_summaries", "summaries read (all of the caller's)")
    _wrap(repo, "list_facts", "facts read")
    _wrap(CallsService, "caller_hash", "caller hash (phonenumbers + HMAC)")
    _wrap(CallsService, "record_event", "event append (redact + add)")
    _wrap(Session, "commit", "commit (flush insert + COMMIT)")


def build_state(stack: Stack) -> Any:
    from api.state import AgentDirectory, AppState
    from connectors.embedder import shared_embedder
    from connectors.vectors.embedded import EmbeddedVectorStore
    from core.settings import Settings

    settings = Settings(
        database_url=stack.database_url,
        secret_key=stack.secret_key,
        admin_token="test-admin-token",
        data_dir=stack.workdir,
    )
    engine = stack.engine()
    emb = shared_embedder(threads=1)  # as the API creates it (api/main.py)
    emb.warm_up()
    return AppState(
        settings=settings,
        engine=engine,
        embedder=emb,
        vectors=EmbeddedVectorStore(engine),
        agents=AgentDirectory(engine, stack.secret_key),
    )


def calls(n: int, callers: int, rng: random.Random, secret: str) -> list[list[tuple[str, Any]]]:
    """``n`` simulated calls, each a context request then two memory_search tool calls by the
    same caller (the lookup benchmark's average), parsed as the webhook route parses them;
    every query is new (see ``bench.lookup_latency.Load.unique_query``)."""
    from connectors.registry import PLATFORMS
    from fakes.vapi import assistant_request, tool_call

    vapi = PLATFORMS["vapi"]
    out = []
    for _ in range(n):
        num = caller_number(rng.randrange(callers))
        call_id = f"prof-{rng.randrange(10**9)}"
        call = [(AR, vapi.parse(assistant_request(num, call_id), id_key=secret))]
        for _ in range(2):
            args = {"query": Load.unique_query(rng), "limit": 3}
            body = tool_call(num, "memory_search", args, call_id)
            call.append((TC, vapi.parse(body, id_key=secret)))
        out.append(call)
    return out


def run(state: Any, agent: Any, work: list[list[tuple[str, Any]]], threads: int) -> float:
    """Answer the calls (each call's requests in order); after a context answer, the memory
    prefetch the route schedules off the reply path runs too, timed on its own line."""
    answering = state.answering
    prefetch = getattr(answering, "_prefetch_sync", None)  # absent before the recall cache

    def one(call: list[tuple[str, Any]]) -> None:
        for kind, ev in call:
            _local.kind = kind
            with _timed("TOTAL (AnsweringService._answer_sync)"):
                answer = answering._answer_sync(agent, ev)
            known = answer.context is not None and answer.context.known
            if prefetch is not None and kind == AR and known:
                caller_hash = answering.recorder.caller_hash(ev.call.caller_number)
                with _timed("prefetch after the reply (not in TOTAL)"):
                    prefetch(agent.org_id, agent.id, caller_hash)

    t0 = time.perf_counter()
    if threads <= 1:
        for call in work:
            one(call)
    else:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(one, work))
    return time.perf_counter() - t0


def compare_paths(state: Any, agent: Any, callers: int, rng: random.Random, n: int = 200) -> str:
    """The in-process search (the caller's prefetched snapshot) against the database path on
    the same callers and queries: how many top-5 lists are identical (hits, order, scores)."""
    from sqlmodel import Session

    from core.db import utcnow
    from core.memory.service import MemoryService
    from core.pii.phone import caller_hash

    recall = getattr(state.answering.memory, "recall", None)
    if recall is None:
        return "in-process search: not in this checkout"
    same = in_process = 0
    now = utcnow()
    with Session(state.engine) as session:
        cached = state.answering.memory.service(session)
        direct = MemoryService(session, state.embedder, state.vectors)
        for _ in range(n):
            ch = caller_hash(
                state.settings.secret_key.get_secret_value(), caller_number(rng.randrange(callers))
            )
            query = Load.unique_query(rng)
            cached.prefetch(agent.org_id, agent.id, ch)
            hits = recall.hits
            a = cached.search(agent.org_id, agent.id, ch, query, k=5, now=now)
            in_process += recall.hits - hits
            b = direct.search(agent.org_id, agent.id, ch, query, k=5, now=now)
            same += a == b
    return (
        f"in-process search against the database path: {same}/{n} top-5 lists identical "
        f"({in_process} of the {n} answered from the snapshot)"
    )


def times_table() -> str:
    rows = []
    for kind in (AR, TC):
        for (k, step), vals in sorted(TIMES.items(), key=lambda kv: -sum(kv[1])):
            if k != kind:
                continue
            st = summarize_ms(vals)
            rows.append(
                [kind, step, st["n"], fmt_ms(st["mean"]), fmt_ms(st["p50"]), fmt_ms(st["p95"])]
            )
    return table(["request", "step", "calls", "mean ms", "p50 ms", "p95 ms"], rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.profile_hot_path",
        description="Per-step timing of the in-turn lookup path, in-process (no HTTP).",
    )
    p.add_argument("--sqlite", action="store_true")
    p.add_argument("--callers", type=int, default=2000)
    p.add_argument("--requests", type=int, default=400)
    p.add_argument("--threads", type=int, default=4, help="threads for the concurrent pass")
    p.add_argument("--env", action="append", default=[], help="KEY=VALUE for this process")
    args = p.parse_args(argv)
    install_signal_handlers()
    import os

    os.environ.update(parse_env(args.env))
    if "OMP_NUM_THREADS" in os.environ:
        import torch

        torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    with Stack(sqlite=args.sqlite, temporal=False, worker=False, label="prof") as stack:
        tenant = stack.create_tenant()
        seed(stack, tenant, args.callers, 10, 300, 7)
        state = build_state(stack)
        agent = state.agents.get(tenant.agent_id)
        rng = random.Random(3)
        secret = stack.secret_key
        run(state, agent, calls(20, args.callers, rng, secret), 1)  # warm
        instrument()
        out = []
        n_calls = max(args.requests // 3, 1)
        n = n_calls * 3
        cpu = time.process_time()
        wall = run(state, agent, calls(n_calls, args.callers, rng, secret), 1)
        cpu_ms = (time.process_time() - cpu) * 1000 / n
        out.append(
            f"### serial: {n} requests ({n_calls} calls) in {wall:.2f}s "
            f"({n / wall:.0f} req/s on one thread); this process's CPU per request "
            f"(prefetch included): {cpu_ms:.2f} ms\n\n{times_table()}"
        )
        TIMES.clear()
        cpu = time.process_time()
        wall = run(state, agent, calls(n_calls, args.callers, rng, secret), args.threads)
        cpu_ms = (time.process_time() - cpu) * 1000 / n
        out.append(
            f"### {args.threads} threads at once: {n} requests in {wall:.2f}s "
            f"({n / wall:.0f} req/s); CPU per request {cpu_ms:.2f} ms\n\n{times_table()}"
        )
        prof = cProfile.Profile()
        evs = calls(66, args.callers, rng, secret)
        prof.enable()
        run(state, agent, evs, 1)
        prof.disable()
        out.append(compare_paths(state, agent, args.callers, rng))
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(20)
        state.engine.dispose()
    mode = "SQLite" if args.sqlite else "Postgres"
    print(f"\n## profile_hot_path ({mode})\n")
    print("\n\n".join(out))
    print("\n### cProfile, 198 serial requests, top 20 by own time\n")
    print("\n".join(buf.getvalue().splitlines()[:45]))
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        raise SystemExit(main())
