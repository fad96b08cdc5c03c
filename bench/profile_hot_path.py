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

from bench import corpus
from bench.common import (
    Stack,
    fmt_ms,
    install_signal_handlers,
    parse_env,
    summarize_ms,
    table,
)
from bench.lookup_latency import AR, TC, Templates, caller_number, seed

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
    emb = shared_embedder()
    emb.warm_up()
    return AppState(
        settings=settings,
        engine=engine,
        embedder=emb,
        vectors=EmbeddedVectorStore(engine),
        agents=AgentDirectory(engine, stack.secret_key),
    )


def events(n: int, callers: int, rng: random.Random) -> list[tuple[str, Any]]:
    from connectors.common import parse_json_body
    from connectors.vapi.webhooks import parse_event

    tpl = Templates.build()
    out = []
    for _ in range(n):
        num = caller_number(rng.randrange(callers))
        call_id = f"prof-{rng.randrange(10**9)}"
        if rng.random() < 0.5:
            body = tpl.assistant.replace("+19990001111", num).replace(
                "bench-call-placeholder", call_id
            )
            out.append((AR, parse_event(parse_json_body(body.encode()))))
        else:
            body = (
                tpl.tool.replace("+19990001111", num)
                .replace("bench-call-placeholder", call_id)
                .replace("bench query placeholder", rng.choice(corpus.QUERIES))
            )
            out.append((TC, parse_event(parse_json_body(body.encode()))))
    return out


def run(state: Any, agent: Any, evs: list[tuple[str, Any]], threads: int) -> float:
    answer_sync = state.answering._answer_sync

    def one(item: tuple[str, Any]) -> None:
        kind, ev = item
        _local.kind = kind
        with _timed("TOTAL (AnsweringService._answer_sync)"):
            answer_sync(agent, ev)

    t0 = time.perf_counter()
    if threads <= 1:
        for item in evs:
            one(item)
    else:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(one, evs))
    return time.perf_counter() - t0


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
        run(state, agent, events(50, args.callers, rng), 1)  # warm
        instrument()
        out = []
        wall = run(state, agent, events(args.requests, args.callers, rng), 1)
        out.append(
            f"### serial: {args.requests} requests in {wall:.2f}s "
            f"({args.requests / wall:.0f} req/s on one thread)\n\n{times_table()}"
        )
        TIMES.clear()
        wall = run(state, agent, events(args.requests, args.callers, rng), args.threads)
        out.append(
            f"### {args.threads} threads at once: {args.requests} requests in {wall:.2f}s "
            f"({args.requests / wall:.0f} req/s)\n\n{times_table()}"
        )
        prof = cProfile.Profile()
        evs = events(200, args.callers, rng)
        prof.enable()
        run(state, agent, evs, 1)
        prof.disable()
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(20)
        state.engine.dispose()
    mode = "SQLite" if args.sqlite else "Postgres"
    print(f"\n## profile_hot_path ({mode})\n")
    print("\n\n".join(out))
    print("\n### cProfile, 200 serial requests, top 20 by own time\n")
    print("\n".join(buf.getvalue().splitlines()[:45]))
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        raise SystemExit(main())
