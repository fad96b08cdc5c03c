"""In-turn lookup latency over HTTP, per voice platform: the context fetch and the memory_search
tool. VAPI: ``assistant-request`` and ``tool-calls``; Retell: ``/inbound`` (``call_inbound``) and
``/functions/memory_search`` (signed with the agent's API key); Bland: ``/dynamic-data`` and
``/tools/memory_search`` (bearer tool token).

Seeds 100k call summaries (+ 3 facts each caller) across 10k callers of one agent directly in
the database, with real MiniLM vectors (a pool of distinct texts is embedded once and reused
across callers), then drives the real API with an open-loop load: simulated concurrent calls,
each sending a request every 3 s on average (Poisson). A simulated call starts with an
assistant-request and follows with memory_search tool calls. Latency counts from each request's
scheduled time, so a slow server cannot slow the load down (no coordinated omission).

After the main run it steps the rate up (short steps) and reports the highest rate whose p95
stays within the ceiling.

    python -m bench.lookup_latency            # Postgres (fresh database), 60 s main run
    python -m bench.lookup_latency --sqlite   # the embedded default (SQLite file)
    python -m bench.lookup_latency --platform all --duration 30 --no-steps   # each platform
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import heapq
import itertools
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import numpy as np

from bench import corpus
from bench.common import (
    ADMIN_TOKEN,
    Stack,
    add_common_args,
    cpu_rows,
    fmt_ms,
    install_signal_handlers,
    machine_info,
    met,
    parse_env,
    say,
    summarize_ms,
    table,
    wait_quiet,
    write_json,
)

TARGET_P95_MS = 15.0
CEILING_P95_MS = 50.0
MEAN_INTERVAL_S = 3.0
NUM_PH = "+19990001111"
CALL_PH = "bench-call-placeholder"
QUERY_PH = "bench query placeholder"
AR = "assistant-request"
TC = "tool-calls memory_search"
PLATFORMS = ("vapi", "retell", "bland")


# -- seeding --------------------------------------------------------------------------------


_QUERY_NUMBERS = itertools.count(1)  # one process-wide sequence: no query is asked twice


def caller_number(i: int) -> str:
    return f"+1415{2000000 + i:07d}"


def _bulk_insert(engine: Any, table_: Any, rows: list[dict[str, Any]]) -> None:
    """COPY on Postgres (fast), executemany through SQLAlchemy Core on SQLite."""
    if not rows:
        return
    cols = list(rows[0])
    if engine.dialect.name == "postgresql":
        from psycopg.types.json import Json

        json_cols = {c.name for c in table_.columns if c.type.__class__.__name__ == "JSON"}
        raw = engine.raw_connection()
        try:
            conn = raw.driver_connection
            with (
                conn.cursor() as cur,
                cur.copy(
                    f'COPY "{table_.name}" ({", ".join(f"{c!s}" for c in cols)}) FROM STDIN'
                ) as cp,
            ):
                for r in rows:
                    cp.write_row([Json(r[c]) if c in json_cols else r[c] for c in cols])
            conn.commit()
        finally:
            raw.close()
    else:
        with engine.begin() as conn:
            for i in range(0, len(rows), 5000):
                conn.execute(table_.insert(), rows[i : i + 5000])


def seed(
    stack: Stack, tenant: Any, callers: int, per_caller: int, pool_size: int, seed_: int
) -> dict[str, Any]:
    """Insert Memory/Fact/CallerProfile/VectorEntry rows directly; returns what was seeded."""
    from sqlalchemy import text

    from connectors.embedder import shared_embedder
    from connectors.vectors.embedded import VectorEntry
    from core.db import utcnow
    from core.memory.models import CallerProfile, Fact, Memory
    from core.memory.schemas import CallerContext
    from core.memory.service import (
        CONTEXT_SUMMARIES,
        NAMESPACE,
        fact_item_id,
        partition_key,
        summary_item_id,
    )
    from core.pii.phone import caller_hash, mask_number

    rng = random.Random(seed_)
    texts = corpus.memory_texts(pool_size, seed=seed_)
    order_pool = [str(rng.randrange(1000, 99999)) for _ in range(400)]
    fact_texts: dict[str, None] = {}
    for n in corpus.NAMES:
        fact_texts[f"name: {n}"] = None
    for c in corpus.CHANNELS:
        fact_texts[f"contact preference: {c}"] = None
    for o in order_pool:
        fact_texts[f"order id: {o}"] = None
    fact_list = list(fact_texts)

    emb = shared_embedder()
    t0 = time.perf_counter()
    say(f"embedding {len(texts)} summary texts + {len(fact_list)} fact texts with MiniLM ...")
    text_vecs = emb.embed(texts)
    fact_vecs = dict(zip(fact_list, emb.embed(fact_list), strict=True))
    embed_s = time.perf_counter() - t0
    say(f"embedded {len(texts) + len(fact_list)} texts in {embed_s:.1f}s")

    t0 = time.perf_counter()
    now = utcnow()
    org, agent = tenant.org_id, tenant.agent_id
    memories: list[dict[str, Any]] = []
    facts: list[dict[str, Any]] = []
    profiles: list[dict[str, Any]] = []
    vectors: list[dict[str, Any]] = []
    mem_id = fact_id = 0
    for i in range(callers):
        number = caller_number(i)
        ch = caller_hash(stack.secret_key, number)
        part = partition_key(org, agent, ch)
        rows = []
        ages = sorted(rng.sample(range(1, 400), per_caller), reverse=True)  # oldest first
        for j in range(per_caller):
            mem_id += 1
            idx = rng.randrange(len(texts))
            call_id = f"seed-{i}-{j}"
            created = now - timedelta(days=ages[j], minutes=rng.randrange(1440))
            row = {
                "id": mem_id,
                "org_id": org,
                "agent_id": agent,
                "caller_hash": ch,
                "kind": "summary",
                "text": texts[idx],
                "platform": "vapi",
                "source_call_id": call_id,
                "revision": 1,
                "method": "extractive+rules",
                "created_at": created,
            }
            memories.append(row)
            rows.append(row)
            vectors.append(
                {
                    "namespace": NAMESPACE,
                    "partition": part,
                    "item_id": summary_item_id("vapi", call_id),
                    "embedding": text_vecs[idx].astype(np.float32).tobytes(),
                    "updated_at": now,
                }
            )
        name = rng.choice(corpus.NAMES)
        current = {
            "name": name,
            "contact_preference": rng.choice(corpus.CHANNELS),
            "order_id": rng.choice(order_pool),
        }
        for key, value in current.items():
            fact_id += 1
            src = rows[rng.randrange(len(rows))]
            facts.append(
                {
                    "id": fact_id,
                    "org_id": org,
                    "agent_id": agent,
                    "caller_hash": ch,
                    "key": key,
                    "value": value,
                    "valid_from": src["created_at"],
                    "valid_to": None,
                    "superseded_by_platform": None,
                    "superseded_by_call_id": None,
                    "platform": "vapi",
                    "source_call_id": src["source_call_id"],
                    "recorded_at": now,
                }
            )
            vectors.append(
                {
                    "namespace": NAMESPACE,
                    "partition": part,
                    "item_id": fact_item_id(fact_id),
                    "embedding": fact_vecs[f"{key.replace('_', ' ')}: {value}"].tobytes(),
                    "updated_at": now,
                }
            )
        recent = list(reversed(rows[::-1][:CONTEXT_SUMMARIES]))
        ctx = CallerContext(
            known=True,
            summary=" | ".join(r["text"] for r in recent),
            facts=current,
            call_count=per_caller,
            last_call_at=rows[-1]["created_at"],
        )
        profiles.append(
            {
                "org_id": org,
                "agent_id": agent,
                "caller_hash": ch,
                "caller_display": mask_number(number),
                "call_count": per_caller,
                "last_call_at": rows[-1]["created_at"],
                "context": ctx.model_dump(mode="json"),
                "updated_at": now,
            }
        )
    engine = stack.engine()
    try:
        for model, rows_ in (
            (Memory, memories),
            (Fact, facts),
            (CallerProfile, profiles),
            (VectorEntry, vectors),
        ):
            _bulk_insert(engine, model.__table__, rows_)  # type: ignore[attr-defined]
        with engine.begin() as conn:
            if engine.dialect.name == "postgresql":
                for tbl in ("memory", "fact"):
                    conn.execute(
                        text(
                            f"SELECT setval(pg_get_serial_sequence('{tbl}', 'id'), "
                            f"(SELECT max(id) FROM {tbl}))"
                        )
                    )
            conn.execute(text("ANALYZE"))
    finally:
        engine.dispose()
    insert_s = time.perf_counter() - t0
    say(
        f"seeded {len(memories)} memories, {len(facts)} facts, {len(profiles)} profiles, "
        f"{len(vectors)} vectors in {insert_s:.1f}s"
    )
    return {
        "callers": callers,
        "memories": len(memories),
        "facts": len(facts),
        "profiles": len(profiles),
        "vectors": len(vectors),
        "distinct_summary_texts_embedded": len(texts),
        "distinct_fact_texts_embedded": len(fact_list),
        "embed_seconds": round(embed_s, 1),
        "insert_seconds": round(insert_s, 1),
    }


# -- load -----------------------------------------------------------------------------------


@dataclass
class Platform:
    """One voice platform's two in-turn requests: the context fetch and the memory_search tool.

    Bodies are templates with placeholders, filled per request by string replacement. Retell
    signs each body (HMAC-SHA256 over body + timestamp, which has a 5-minute window), so its
    ``signer`` runs at send time; its cost is measured and reported (a few microseconds).
    """

    name: str
    ctx_label: str
    tool_label: str
    ctx_path: str
    tool_path: str
    ctx_template: str
    tool_template: str
    base_headers: dict[str, str]
    tool_ok: bytes  # in a tool reply that carries a result
    signer: Callable[[bytes], str] | None = None
    signature_header: str = ""

    def headers(self, body: bytes) -> dict[str, str]:
        if self.signer is None:
            return self.base_headers
        return {**self.base_headers, self.signature_header: self.signer(body)}


def _args() -> dict[str, Any]:
    return {"query": QUERY_PH, "limit": 3}


def build_platform(name: str, tenant: Any, secret: str) -> Platform:
    """Templates, paths and auth for ``name``; ``secret`` is the credential set on the agent."""
    from fakes.common import raw

    json_ct = {"content-type": "application/json"}
    if name == "vapi":
        from fakes.vapi import assistant_request, tool_call

        return Platform(
            name,
            AR,
            TC,
            tenant.webhook,
            tenant.webhook,
            raw(assistant_request(NUM_PH, CALL_PH)).decode(),
            raw(tool_call(NUM_PH, "memory_search", _args(), CALL_PH)).decode(),
            tenant.vapi_headers,
            b'"result":',
        )
    if name == "retell":
        from connectors.retell.webhooks import SIGNATURE_HEADER, sign
        from fakes.retell import call_inbound, function_call

        base = f"/v1/webhooks/retell/{tenant.agent_id}"
        return Platform(
            name,
            "retell inbound",
            "retell functions/memory_search",
            f"{base}/inbound",
            f"{base}/functions/memory_search",
            raw(call_inbound(NUM_PH)).decode(),
            raw(function_call(CALL_PH, NUM_PH, "memory_search", _args())).decode(),
            json_ct,
            b'"result":',
            signer=lambda body: sign(body, secret),
            signature_header=SIGNATURE_HEADER,
        )
    if name == "bland":
        from fakes.bland import dynamic_data, tool_request

        base = f"/v1/webhooks/bland/{tenant.agent_id}"
        tool = tool_request(NUM_PH, QUERY_PH, CALL_PH)
        tool["limit"] = 3
        return Platform(
            name,
            "bland dynamic-data",
            "bland tools/memory_search",
            f"{base}/dynamic-data",
            f"{base}/tools/memory_search",
            raw(dynamic_data(NUM_PH, CALL_PH)).decode(),
            raw(tool).decode(),
            {"Authorization": f"Bearer {secret}", **json_ct},
            b'"answer":',
        )
    raise ValueError(name)


def add_platform_credentials(stack: Stack, tenant: Any) -> dict[str, str]:
    """Give the seeded agent a Retell API key and a Bland tool token (VAPI's bearer is set by
    create_tenant), so one agent and one seeded memory set serve all three platforms."""
    creds = {
        "vapi": tenant.vapi_token,
        "retell": f"key_retell_bench_{uuid.uuid4().hex[:12]}",
        "bland": f"bland-tool-bench-{uuid.uuid4().hex[:12]}",
    }
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    with httpx.Client(base_url=stack.api_url, timeout=30) as http:
        for platform, kind in (("retell", "api_key"), ("bland", "tool_token")):
            r = http.put(
                f"/v1/agents/{tenant.agent_id}/credentials/{platform}",
                json={"kind": kind, "secret": creds[platform]},
                headers=admin,
            )
            r.raise_for_status()
    return creds


def signing_cost_us(platform: Platform, n: int = 2000) -> float | None:
    """Mean microseconds to sign one tool-call body (None when the platform does not sign)."""
    if platform.signer is None:
        return None
    body = platform.tool_template.encode()
    t0 = time.perf_counter()
    for _ in range(n):
        platform.headers(body)
    return (time.perf_counter() - t0) / n * 1e6


@dataclass
class Line:
    """One simulated concurrent call slot: a caller, a call id, tool calls left in this call."""

    caller: int = -1
    call_id: str = ""
    tools_left: int = 0


@dataclass
class Load:
    platform: Platform
    callers: int
    tools_per_call: float
    rng: random.Random
    lines: list[Line] = field(default_factory=list)

    def next_request(self, line_no: int) -> tuple[bool, bytes]:
        """``(is_context_fetch, body)`` for the next request of simulated call ``line_no``."""
        while len(self.lines) <= line_no:
            self.lines.append(Line())
        ln = self.lines[line_no]
        pf = self.platform
        if ln.tools_left <= 0 or ln.caller < 0:
            ln.caller = self.rng.randrange(self.callers)
            ln.call_id = f"bench-{uuid.uuid4().hex[:12]}"
            # geometric number of tool calls with the requested mean
            p = 1.0 / (1.0 + self.tools_per_call)
            n = 0
            while self.rng.random() > p:
                n += 1
            ln.tools_left = n
            body = pf.ctx_template.replace(NUM_PH, caller_number(ln.caller)).replace(
                CALL_PH, ln.call_id
            )
            return True, body.encode()
        ln.tools_left -= 1
        body = (
            pf.tool_template.replace(NUM_PH, caller_number(ln.caller))
            .replace(CALL_PH, ln.call_id)
            .replace(QUERY_PH, self.unique_query(self.rng))
        )
        return False, body.encode()

    @staticmethod
    def unique_query(rng: random.Random) -> str:
        """A realistic query no earlier request asked: the process's query-embedding cache
        helps repeated questions only, so the benchmark never repeats one."""
        return f"{rng.choice(corpus.QUERIES)}, reference {next(_QUERY_NUMBERS)}"


@dataclass
class Sample:
    kind: str
    latency: float
    lag: float
    ok: bool
    good_reply: bool


async def _one(
    client: httpx.AsyncClient,
    platform: Platform,
    is_ctx: bool,
    body: bytes,
    scheduled: float,
    out: list[Sample],
) -> None:
    loop = asyncio.get_running_loop()
    sent = loop.time()
    ok = good = False
    try:
        path = platform.ctx_path if is_ctx else platform.tool_path
        r = await client.post(path, content=body, headers=platform.headers(body))
        ok = r.status_code == 200
        content = r.content
        if is_ctx:
            good = b'"backline_caller_known":"yes"' in content
        else:
            good = platform.tool_ok in content and b"No earlier memories" not in content
    except httpx.HTTPError:
        pass
    kind = platform.ctx_label if is_ctx else platform.tool_label
    out.append(Sample(kind, loop.time() - scheduled, sent - scheduled, ok, good))


async def run_phase(
    client: httpx.AsyncClient,
    load: Load,
    rate: float,
    duration: float,
    rng: random.Random,
    max_in_flight: int = 3000,
) -> tuple[list[Sample], int, float]:
    """Open loop at ``rate`` req/s for ``duration`` s; returns samples, lines, achieved rate."""
    loop = asyncio.get_running_loop()
    n_lines = max(1, round(rate * MEAN_INTERVAL_S))
    per_line_interval = n_lines / rate
    t0 = loop.time() + 0.05
    heap = [(t0 + rng.expovariate(1 / per_line_interval), i) for i in range(n_lines)]
    heapq.heapify(heap)
    samples: list[Sample] = []
    tasks: set[asyncio.Task[None]] = set()
    skipped = 0
    while heap:
        t, line_no = heapq.heappop(heap)
        if t - t0 >= duration:
            break
        delay = t - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        if len(tasks) >= max_in_flight:  # hopeless overload: count it as failed, keep going
            skipped += 1
            samples.append(Sample(load.platform.ctx_label, duration, 0.0, False, False))
        else:
            is_ctx, body = load.next_request(line_no)
            task = asyncio.create_task(_one(client, load.platform, is_ctx, body, t, samples))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        heapq.heappush(heap, (t + rng.expovariate(1 / per_line_interval), line_no))
    if tasks:
        await asyncio.wait(tasks, timeout=30)
        for task in tasks:
            task.cancel()
    return samples, n_lines, len(samples) / duration


def stats_rows(samples: list[Sample], kinds: tuple[str, ...]) -> list[list[Any]]:
    rows = []
    for kind in (*kinds, "all"):
        sel = [s for s in samples if kind == "all" or s.kind == kind]
        if not sel:
            continue
        st = summarize_ms([s.latency for s in sel if s.ok])
        errors = sum(not s.ok for s in sel)
        bad = sum(s.ok and not s.good_reply for s in sel)
        rows.append(
            [
                kind,
                len(sel),
                fmt_ms(st["p50"]),
                fmt_ms(st["p95"]),
                fmt_ms(st["p99"]),
                fmt_ms(st["max"]),
                errors,
                bad,
            ]
        )
    return rows


def p95_all(samples: list[Sample]) -> float:
    """p95 over all requests, failures counted as infinitely slow."""
    if not samples:
        return float("nan")
    lat = np.asarray([s.latency if s.ok else np.inf for s in samples], dtype=np.float64)
    return float(np.percentile(lat, 95, method="higher")) * 1000


# -- main -----------------------------------------------------------------------------------


async def measure(
    args: argparse.Namespace, stack: Stack, client: httpx.AsyncClient, platform: Platform
) -> dict[str, Any]:
    """Warm-up, main run and (unless ``--no-steps``) the rate steps for one platform."""
    rng = random.Random(args.seed + 1)
    load = Load(platform, args.callers, args.tools_per_call, random.Random(args.seed + 2))
    kinds = (platform.ctx_label, platform.tool_label)
    results: dict[str, Any] = {"platform": platform.name, "signing_us": signing_cost_us(platform)}
    say(f"[{platform.name}] warm-up {args.warmup:.0f}s at {args.rate:.1f} req/s (not recorded)")
    await run_phase(client, load, args.rate, args.warmup, rng)

    say(f"[{platform.name}] main run: {args.rate:.1f} req/s for {args.duration:.0f}s")
    meter = stack.cpu_meter()
    meter.start()
    samples, lines, achieved = await run_phase(client, load, args.rate, args.duration, rng)
    cpu = meter.stop()
    lag = summarize_ms([s.lag for s in samples])
    results["main"] = {
        "rate": args.rate,
        "concurrent_calls": lines,
        "achieved_rps": achieved,
        "rows": stats_rows(samples, kinds),
        "cpu": cpu,
        "send_lag_ms": lag,
        "p95_all_ms": p95_all(samples),
        "p95_by_type": {
            k: summarize_ms([s.latency for s in samples if s.kind == k and s.ok])["p95"]
            for k in kinds
        },
    }
    say(f"[{platform.name}]  p95 {fmt_ms(results['main']['p95_all_ms'])} ms")

    steps: list[dict[str, Any]] = [
        {
            "rate": args.rate,
            "lines": lines,
            "achieved": achieved,
            "stats": summarize_ms([s.latency for s in samples if s.ok]),
            "p95_all": results["main"]["p95_all_ms"],
            "errors": sum(not s.ok for s in samples),
            "cpu": cpu,
            "lag_p99": lag["p99"],
        }
    ]

    async def step_at(rate: float) -> dict[str, Any]:
        await asyncio.sleep(2)
        say(f"[{platform.name}] step: {rate:g} req/s for {args.step_seconds:.0f}s")
        meter = stack.cpu_meter()
        meter.start()
        s2, lines2, ach2 = await run_phase(client, load, rate, args.step_seconds, rng)
        cpu2 = meter.stop()
        step = {
            "rate": rate,
            "lines": lines2,
            "achieved": ach2,
            "stats": summarize_ms([s.latency for s in s2 if s.ok]),
            "p95_all": p95_all(s2),
            "errors": sum(not s.ok for s in s2),
            "cpu": cpu2,
            "lag_p99": summarize_ms([s.lag for s in s2])["p99"],
        }
        say(f"  p95 {fmt_ms(step['p95_all'])} ms, errors {step['errors']}")
        return step

    if not args.no_steps:
        if steps[0]["p95_all"] > args.ceiling_ms:
            # the main rate already misses the ceiling: step down instead
            rate = args.rate
            while rate / 2 >= 1.0:
                rate = round(rate / 2, 1)
                steps.append(await step_at(rate))
                if steps[-1]["p95_all"] <= args.ceiling_ms:
                    break
        else:
            for rate in [float(r) for r in args.steps.split(",") if r.strip()]:
                if rate <= args.rate:
                    continue
                steps.append(await step_at(rate))
                if steps[-1]["p95_all"] > args.ceiling_ms:
                    break
        steps.sort(key=lambda st: st["rate"])
    results["steps"] = steps
    passing = [s["rate"] for s in steps if s["p95_all"] <= args.ceiling_ms]
    results["max_rate_within_ceiling"] = max(passing) if passing else None
    results["last_step_failed"] = any(st["p95_all"] > args.ceiling_ms for st in steps)
    return results


async def drive(
    args: argparse.Namespace, stack: Stack, tenant: Any, creds: dict[str, str]
) -> dict[str, Any]:
    """Each selected platform in turn (same load, same seeded agent); the first platform's
    results are also kept at the top level (``main``, ``steps``...) for bench.run_all."""
    names = list(PLATFORMS) if args.platform == "all" else [args.platform]
    limits = httpx.Limits(max_connections=1024, max_keepalive_connections=1024)
    per: dict[str, Any] = {}
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30, limits=limits) as client:
        for i, name in enumerate(names):
            if i:
                await asyncio.sleep(2)
            per[name] = await measure(
                args, stack, client, build_platform(name, tenant, creds[name])
            )
    return {**per[names[0]], "platforms": per}


def report_platform(args: argparse.Namespace, res: dict[str, Any]) -> str:
    m = res["main"]
    out = []
    out.append(f"### {res['platform']}")
    out.append("")
    out.append(
        table(
            ["request", "n", "p50 ms", "p95 ms", "p99 ms", "max ms", "errors", "bad replies"],
            m["rows"],
        )
    )
    out.append("")
    ok = m["p95_all_ms"] <= TARGET_P95_MS
    out.append(
        table(
            ["target", "measured", "result"],
            [
                [
                    f"p95 <= {TARGET_P95_MS:.0f} ms at {m['rate']:.0f} req/s (all requests)",
                    f"{fmt_ms(m['p95_all_ms'])} ms",
                    met(ok),
                ],
                *[
                    [f"  p95 {k}", f"{fmt_ms(v)} ms", met(v <= TARGET_P95_MS)]
                    for k, v in m["p95_by_type"].items()
                ],
            ],
        )
    )
    out.append("")
    out.append(
        f"Load generator send lag p99 (scheduled -> sent): {fmt_ms(m['send_lag_ms']['p99'])} ms"
        f"; {m['achieved_rps']:.1f} req/s sent."
    )
    if res.get("signing_us") is not None:
        out.append(
            f"Signing one body at send time (X-Retell-Signature, HMAC-SHA256) costs "
            f"{res['signing_us']:.1f} us in the load generator (counted in the latency)."
        )
    out.append("")
    out.append(table(["CPU during main run", "% of one core"], cpu_rows(m["cpu"])))
    out.append("")
    step_rows = []
    for s in res["steps"]:
        st = s["stats"]
        step_rows.append(
            [
                f"{s['rate']:.3g}",
                s["lines"],
                f"{s['achieved']:.1f}",
                fmt_ms(st["p50"]),
                fmt_ms(s["p95_all"]),
                fmt_ms(st["p99"]),
                s["errors"],
                f"{s['cpu'].get('api process', 0):.0f}%",
                f"{s['cpu'].get('load generator (bench process)', 0):.0f}%",
                f"{s['cpu'].get('other users (whole machine - ours)', 0):.0f}%",
                fmt_ms(s["lag_p99"]),
                "yes" if s["p95_all"] <= args.ceiling_ms else "no",
            ]
        )
    out.append(
        table(
            [
                "req/s",
                "calls",
                "sent/s",
                "p50 ms",
                "p95 ms",
                "p99 ms",
                "errors",
                "API CPU",
                "gen CPU",
                "other users CPU",
                "gen lag p99 ms",
                f"p95<={args.ceiling_ms:.0f}",
            ],
            step_rows,
        )
    )
    best = res["max_rate_within_ceiling"]
    out.append("")
    if args.no_steps:
        out.append("Rate steps skipped (--no-steps).")
    elif best is None:
        out.append(f"No rate kept p95 <= {args.ceiling_ms:.0f} ms.")
    else:
        qualifier = "" if res["last_step_failed"] else " (the highest step tried; try higher)"
        out.append(
            f"Highest rate with p95 <= {args.ceiling_ms:.0f} ms: {best:.3g} req/s{qualifier}."
        )
    return "\n".join(out)


def report(args: argparse.Namespace, seeded: dict[str, Any], res: dict[str, Any]) -> str:
    m = res["main"]
    out = []
    out.append(
        f"Seeded directly in the database: {seeded['memories']:,} call summaries and "
        f"{seeded['facts']:,} facts across {seeded['callers']:,} callers of one agent "
        f"({seeded['vectors']:,} vectors). Embeddings are real MiniLM vectors, but only "
        f"{seeded['distinct_summary_texts_embedded']:,} distinct summary texts and "
        f"{seeded['distinct_fact_texts_embedded']:,} distinct fact texts were embedded "
        f"({seeded['embed_seconds']}s) and their vectors reused across callers."
    )
    out.append("")
    out.append(
        f"Main run per platform: open loop, {m['concurrent_calls']} concurrent simulated calls x "
        f"one request per {MEAN_INTERVAL_S:.0f}s (Poisson) = {m['rate']:.1f} req/s target, "
        f"{args.duration:.0f}s; each call = 1 context fetch + on average "
        f"{args.tools_per_call:g} memory_search tool calls. Platforms run one after another "
        f"against the same agent: {', '.join(res['platforms'])}."
    )
    out.append("")
    out.append(f"Shared machine: {seeded['quiet']}.")
    if args.env:
        out.append("")
        out.append(f"Experiment: API started with extra environment {', '.join(args.env)}.")
    out.append("")
    summary = []
    for name, pr in res["platforms"].items():
        other = pr["main"]["cpu"].get("other users (whole machine - ours)", 0)
        api = pr["main"]["cpu"].get("api process", 0)
        for row in pr["main"]["rows"]:
            summary.append([name, *row[:5], row[6], row[7], f"{api:.0f}%", f"{other:.0f}%"])
    out.append(
        table(
            [
                "platform",
                "request",
                "n",
                "p50 ms",
                "p95 ms",
                "p99 ms",
                "errors",
                "bad replies",
                "API CPU",
                "other users CPU",
            ],
            summary,
        )
    )
    for pr in res["platforms"].values():
        out.append("")
        out.append(report_platform(args, pr))
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.lookup_latency",
        description="In-turn lookup latency (context fetch + memory_search), over HTTP.",
    )
    p.add_argument("--callers", type=int, default=10_000)
    p.add_argument("--per-caller", type=int, default=10, help="summaries per caller")
    p.add_argument("--pool", type=int, default=2_000, help="distinct summary texts to embed")
    p.add_argument(
        "--rate",
        type=float,
        default=50 / MEAN_INTERVAL_S,
        help="main-run request rate (default 50 calls / 3 s = 16.7 req/s)",
    )
    p.add_argument("--duration", type=float, default=60.0, help="main run seconds")
    p.add_argument("--warmup", type=float, default=5.0)
    p.add_argument(
        "--tools-per-call",
        type=float,
        default=2.0,
        help="mean memory_search calls per simulated call after its assistant-request",
    )
    p.add_argument(
        "--steps",
        default="34,68,100,150,200,300",
        help="rates (req/s) to step through after the main run",
    )
    p.add_argument("--step-seconds", type=float, default=20.0)
    p.add_argument("--ceiling-ms", type=float, default=CEILING_P95_MS)
    p.add_argument("--no-steps", action="store_true", help="skip the rate search")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument(
        "--platform",
        choices=[*PLATFORMS, "all"],
        default="vapi",
        help="whose webhooks to drive: context fetch + memory_search tool (all: one by one)",
    )
    add_common_args(p)
    args = p.parse_args(argv)
    install_signal_handlers()
    info = machine_info()
    say(f"machine: {info}")
    with Stack(
        sqlite=args.sqlite,
        temporal=False,
        worker=False,
        label="lookup",
        keep=args.keep,
        extra_env=parse_env(args.env),
        profile=args.profile,
    ) as stack:
        tenant = stack.create_tenant()
        creds = add_platform_credentials(stack, tenant)
        seeded = seed(stack, tenant, args.callers, args.per_caller, args.pool, args.seed)
        seeded["quiet"] = wait_quiet(args.quiet_wait)
        try:
            import uvloop

            res = uvloop.run(drive(args, stack, tenant, creds))
        except ImportError:
            res = asyncio.run(drive(args, stack, tenant, creds))
    text_ = report(args, seeded, res)
    profiles = stack.profiles
    mode = "SQLite (embedded)" if args.sqlite else "Postgres"
    print(f"\n## lookup_latency ({mode})\n\n{text_}\n", flush=True)
    for name, prof in profiles.items():
        print(f"\n### sampled profile of the {name} process\n\n{prof}\n")
    write_json(
        args.json,
        {
            "bench": "lookup_latency",
            "mode": mode,
            "machine": info,
            "seeded": seeded,
            "results": res,
            "report": text_,
        },
    )
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        raise SystemExit(main())
