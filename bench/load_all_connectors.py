"""Load through every connector at once: N concurrent simulated calls for D seconds.

Each simulated call belongs to one platform (VAPI, Retell, Bland in turn) and behaves like a live
call on it: a context request when it starts (VAPI assistant-request, Retell call_inbound, Bland
dynamic-data), a tool call every ~3 s (memory_search and knowledge_search alternating; on VAPI
every third one is a knowledge-base-request instead), and the platform's end-of-call payload
after 20-40 s. A new call starts as soon as one ends, so N calls are always in flight for D
seconds. The stack runs as `backline up` would (API + worker + Temporal dev server, Postgres by
default, ``--sqlite`` for the embedded default).

``--platforms vapi --tools memory`` narrows the load to one platform and memory_search only
(a context request, a memory_search every ~3 s, the end-of-call report after 20-40 s): the
live-call load under which the end-of-call reply latency is measured.

Afterwards it waits for every accepted call to be processed and checks that each caller's memory
is retrievable (profile + summary vector). Prints per-request latency percentiles, errors, and
the memory check; ``--json`` writes the figures.

    python -m bench.load_all_connectors --calls 200 --seconds 60
    python -m bench.load_all_connectors --sqlite --calls 50 --seconds 120 \
        --platforms vapi --tools memory
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import random
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench.common import (
    Stack,
    add_common_args,
    fmt_ms,
    install_signal_handlers,
    machine_info,
    parse_env,
    say,
    summarize_ms,
    table,
    wait_quiet,
    write_json,
)

PLATFORMS = ("vapi", "retell", "bland")
KNOWLEDGE_TEXT = (
    "# Opening hours\nWe are open Monday to Friday from 8 am to 6 pm, Saturday 9 am to 1 pm.\n\n"
    "# Water heaters\nA leaking water heater visit costs 89 dollars; repairs are quoted on site.\n"
    "\n# Cancellations\nCancel up to 24 hours before the visit at no charge."
)
QUERIES = ("water heater", "opening hours on saturday", "cancel my visit", "order status")


@dataclass
class Tenants:
    vapi: Any
    retell: Any
    bland: Any

    def agent(self, platform: str) -> str:
        return str(getattr(self, platform).agent_id)


@dataclass
class Results:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    error_samples: list[str] = field(default_factory=list)
    ended: dict[str, list[tuple[str, str]]] = field(default_factory=lambda: defaultdict(list))

    def record(self, kind: str, seconds: float, response: httpx.Response | None, err: str) -> None:
        if response is not None and response.status_code == 200 and not err:
            self.latencies[kind].append(seconds)
            return
        self.errors[kind] += 1
        if len(self.error_samples) < 10:
            status = response.status_code if response is not None else "-"
            body = response.text[:160] if response is not None else ""
            detail = err or f"{status} {body}"
            self.error_samples.append(f"{kind}: {detail}")


def _turns(rng: random.Random, name: str) -> list[tuple[str, str]]:
    from bench import corpus

    return corpus.call_turns(rng, name)


class Caller:
    """One simulated call on one platform."""

    def __init__(
        self,
        platform: str,
        tenants: Tenants,
        index: int,
        rng: random.Random,
        memory_only: bool = False,
    ) -> None:
        self.platform = platform
        self.memory_only = memory_only
        self.tenants = tenants
        self.rng = rng
        self.call_id = f"load-{platform}-{uuid.uuid4().hex[:10]}"
        self.number = f"+1628{rng.randrange(10**7):07d}"
        self.index = index

    def context(self) -> tuple[str, str, bytes, dict[str, str]]:
        from fakes import bland as bh
        from fakes import common
        from fakes import retell as rh
        from fakes import vapi as vh

        t = self.tenants
        if self.platform == "vapi":
            body = common.raw(vh.assistant_request(self.number, self.call_id))
            return "context", t.vapi.webhook, body, t.vapi.vapi_headers
        if self.platform == "retell":
            body = common.raw(rh.call_inbound(self.number))
            return "context", t.retell.url("inbound"), body, _retell_headers(t.retell, body)
        body = common.raw(bh.dynamic_data(self.number, self.call_id))
        return "context", t.bland.url("dynamic-data"), body, t.bland._bearer(None)

    def tool(self, n: int) -> tuple[str, str, bytes, dict[str, str]]:
        from fakes import bland as bh
        from fakes import common
        from fakes import retell as rh
        from fakes import vapi as vh

        t = self.tenants
        query = self.rng.choice(QUERIES)
        name = "memory_search" if n % 2 == 0 or self.memory_only else "knowledge_search"
        if self.platform == "vapi":
            if n % 3 == 2 and not self.memory_only:
                body = copy.deepcopy(common.fixture("vapi_knowledge_base_request.json"))
                body["message"]["call"]["id"] = self.call_id
                body["message"]["messagesOpenAIFormatted"] = [
                    {"role": "user", "content": f"what about the {query}?"}
                ]
                return "knowledge-request", t.vapi.webhook, common.raw(body), t.vapi.vapi_headers
            body = common.raw(vh.tool_call(self.number, name, {"query": query}, self.call_id))
            return name, t.vapi.webhook, body, t.vapi.vapi_headers
        if self.platform == "retell":
            body = common.raw(rh.function_call(self.call_id, self.number, name, {"query": query}))
            path = t.retell.url(f"functions/{name}")
            return name, path, body, _retell_headers(t.retell, body)
        body = common.raw(bh.tool_request(self.number, query, self.call_id))
        return name, t.bland.url(f"tools/{name}"), body, t.bland._bearer(None)

    def end(self) -> tuple[str, str, bytes, dict[str, str]]:
        from fakes import bland as bh
        from fakes import common
        from fakes import retell as rh
        from fakes import vapi as vh

        t = self.tenants
        turns = _turns(self.rng, self.rng.choice(["Dana", "Sam", "Priya", "Luis"]))
        if self.platform == "vapi":
            body = common.raw(vh.end_of_call(self.call_id, self.number, turns))
            return "end-of-call", t.vapi.webhook, body, t.vapi.vapi_headers
        if self.platform == "retell":
            body = common.raw(rh.call_ended(self.call_id, self.number, turns))
            return "end-of-call", t.retell.url("events"), body, _retell_headers(t.retell, body)
        body = common.raw(bh.post_call(self.call_id, self.number, turns))
        from connectors.bland.webhooks import SIGNATURE_HEADER, sign

        headers = {SIGNATURE_HEADER: sign(body, t.bland.signing_secret), **bh.JSON}
        return "end-of-call", t.bland.url("post-call"), body, headers


def _retell_headers(tenant: Any, body: bytes) -> dict[str, str]:
    from connectors.retell.webhooks import SIGNATURE_HEADER, sign

    return {SIGNATURE_HEADER: sign(body, tenant.api_key), "content-type": "application/json"}


def _tool_error(data: Any) -> str:
    """A tool that answered an error (HTTP 200 with an error the agent would say)."""
    if isinstance(data, dict) and isinstance(data.get("results"), list):  # VAPI
        data = data["results"][0] if data["results"] else {}
    if isinstance(data, dict) and data.get("error"):
        return f"tool error: {str(data['error'])[:160]}"
    return ""


async def _send(
    http: httpx.AsyncClient,
    req: tuple[str, str, bytes, dict[str, str]],
    results: Results,
    label: str,
) -> httpx.Response | None:
    kind, path, body, headers = req
    t0 = time.perf_counter()
    response: httpx.Response | None = None
    err = ""
    try:
        response = await http.post(path, content=body, headers=headers)
        if response.status_code == 200 and kind.endswith("_search"):
            err = _tool_error(response.json())
    except (httpx.HTTPError, ValueError) as exc:
        err = f"{type(exc).__name__}: {exc}"
    results.record(f"{label} {kind}", time.perf_counter() - t0, response, err)
    return response


async def _one_call(
    http: httpx.AsyncClient,
    caller: Caller,
    results: Results,
    stop_at: float,
) -> None:
    await _send(http, caller.context(), results, caller.platform)
    duration = caller.rng.uniform(20, 40)
    started = time.monotonic()
    n = 0
    while time.monotonic() - started < duration:
        await asyncio.sleep(caller.rng.uniform(2.5, 3.5))
        await _send(http, caller.tool(n), results, caller.platform)
        n += 1
    response = await _send(http, caller.end(), results, caller.platform)
    if response is not None and response.status_code == 200:
        results.ended[caller.platform].append((caller.call_id, caller.number))


async def _slot(
    http: httpx.AsyncClient,
    slot: int,
    tenants: Tenants,
    results: Results,
    stop_at: float,
    platforms: list[str],
    memory_only: bool,
) -> None:
    rng = random.Random(slot)
    # Stagger the first calls over 3 s so the load starts as a ramp, not a spike.
    await asyncio.sleep(rng.uniform(0, 3))
    i = 0
    while time.monotonic() < stop_at:
        caller = Caller(platforms[(slot + i) % len(platforms)], tenants, i, rng, memory_only)
        await _one_call(http, caller, results, stop_at)
        i += 1


def _setup(stack: Stack) -> Tenants:
    from fakes.bland import create_bland_tenant
    from fakes.common import ADMIN
    from fakes.retell import create_retell_tenant
    from fakes.vapi import create_tenant

    with httpx.Client(base_url=stack.api_url, timeout=60) as http:
        tenants = Tenants(
            create_tenant(http), create_retell_tenant(http), create_bland_tenant(http)
        )
        for platform in PLATFORMS:
            r = http.post(
                f"/v1/agents/{tenants.agent(platform)}/knowledge/sources",
                json={"kind": "text", "name": "faq", "text": KNOWLEDGE_TEXT},
                headers=ADMIN,
            )
            r.raise_for_status()
    return tenants


def _processed(stack: Stack, tenants: Tenants, results: Results) -> dict[str, tuple[int, int]]:
    """Per platform: (calls ended and accepted, callers whose memory is retrievable)."""
    from sqlalchemy import text

    from core.pii.phone import caller_hash

    engine = stack.engine()
    out = {}
    try:
        with engine.connect() as conn:
            for platform in PLATFORMS:
                ended = results.ended[platform]
                hashes = {caller_hash(stack.secret_key, number) for _, number in ended}
                rows = conn.execute(
                    text("SELECT caller_hash FROM callerprofile WHERE agent_id = :a"),
                    {"a": tenants.agent(platform)},
                ).all()
                have = {r[0] for r in rows} & hashes
                out[platform] = (len(hashes), len(have))
    finally:
        engine.dispose()
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--calls", type=int, default=200, help="concurrent simulated calls")
    p.add_argument("--seconds", type=float, default=60.0, help="how long calls keep starting")
    p.add_argument("--drain", type=float, default=300.0, help="max seconds to wait for memories")
    p.add_argument(
        "--platforms",
        default=",".join(PLATFORMS),
        help="comma-separated platforms the calls take turns on (default: all three)",
    )
    p.add_argument(
        "--tools",
        choices=("mixed", "memory"),
        default="mixed",
        help="mixed: memory_search and knowledge_search alternate (default); memory: every "
        "tool call is a memory_search",
    )
    add_common_args(p)
    args = p.parse_args()
    platforms = [x.strip() for x in args.platforms.split(",") if x.strip()]
    if not platforms or set(platforms) - set(PLATFORMS):
        p.error(f"--platforms takes a comma-separated subset of {', '.join(PLATFORMS)}")
    install_signal_handlers()
    info = machine_info()
    quiet = wait_quiet(args.quiet_wait)
    with Stack(
        sqlite=args.sqlite, label="load", keep=args.keep, extra_env=parse_env(args.env)
    ) as stack:
        tenants = _setup(stack)
        results = Results()
        meter = stack.cpu_meter()

        async def run() -> float:
            # Idle connections are dropped before uvicorn's 5 s keep-alive timeout closes them
            # server-side: a request sent on a connection the server is closing fails with a
            # ReadError that says nothing about the server (platforms' clients do the same).
            limits = httpx.Limits(
                max_connections=args.calls,
                max_keepalive_connections=args.calls,
                keepalive_expiry=2.0,
            )
            async with httpx.AsyncClient(base_url=stack.api_url, timeout=30, limits=limits) as http:
                stop_at = time.monotonic() + args.seconds
                t0 = time.monotonic()
                await asyncio.gather(
                    *(
                        _slot(http, i, tenants, results, stop_at, platforms, args.tools == "memory")
                        for i in range(args.calls)
                    )
                )
                return time.monotonic() - t0

        meter.start()
        through = ", ".join(platforms)
        say(f"{args.calls} concurrent calls for {args.seconds:.0f} s through {through}")
        elapsed = asyncio.run(run())
        cpu = meter.stop()
        say(f"load done in {elapsed:.0f} s; waiting for every ended call's memory")
        deadline = time.monotonic() + args.drain
        memory = _processed(stack, tenants, results)
        while time.monotonic() < deadline and any(a != b for a, b in memory.values()):
            time.sleep(2)
            memory = _processed(stack, tenants, results)

    rows = []
    for kind in sorted(set(results.latencies) | set(results.errors)):
        s = summarize_ms(results.latencies.get(kind, []))
        rows.append(
            [
                kind,
                s["n"],
                results.errors.get(kind, 0),
                fmt_ms(s["p50"]),
                fmt_ms(s["p95"]),
                fmt_ms(s["p99"]),
                fmt_ms(s["max"]),
            ]
        )
    all_lat = [v for vs in results.latencies.values() for v in vs]
    s = summarize_ms(all_lat)
    total_errors = sum(results.errors.values())
    rows.append(
        [
            "all",
            s["n"],
            total_errors,
            fmt_ms(s["p50"]),
            fmt_ms(s["p95"]),
            fmt_ms(s["p99"]),
            fmt_ms(s["max"]),
        ]
    )
    print()
    print(
        f"machine: {info['cpus']} cores, {info['cpu_model']}; {quiet}; "
        f"DB {'SQLite' if args.sqlite else 'Postgres'}"
    )
    print(table(["request", "ok", "errors", "p50 ms", "p95 ms", "p99 ms", "max ms"], rows))
    print()
    mem_rows = [[pl, a, b, a - b] for pl, (a, b) in memory.items()]
    print(table(["platform", "calls ended", "memory retrievable", "missing"], mem_rows))
    print()
    print(table(["process", "CPU (% of one core)"], [[k, f"{v:.0f}%"] for k, v in cpu.items()]))
    for sample in results.error_samples:
        print("error:", sample)
    write_json(
        args.json,
        {
            "machine": info,
            "quiet": quiet,
            "calls": args.calls,
            "seconds": args.seconds,
            "platforms": platforms,
            "tools": args.tools,
            "requests": {k: summarize_ms(v) for k, v in results.latencies.items()},
            "errors": dict(results.errors),
            "error_samples": results.error_samples,
            "memory": {k: {"ended": a, "retrievable": b} for k, (a, b) in memory.items()},
            "cpu": cpu,
        },
    )


if __name__ == "__main__":
    main()
