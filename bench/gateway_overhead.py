"""Tools gateway: what it adds to a tool's own time, and how it behaves when a server dies.

Overhead. The example orders MCP server (``examples/mcp_servers/orders.py``) runs on streamable
HTTP. The same read-only tool (``order_status``) is called two ways, interleaved, each at
``--rate`` calls/s (open loop: every call is launched on its schedule, whatever the others do):

- gateway: a VAPI ``tool-calls`` webhook to the API (HTTP in), the edge, the gateway, the
  pooled MCP session (MCP out), the reply;
- direct: an MCP client in this process calling the server itself (one warm session).

Overhead = gateway percentile minus direct percentile. A second phase replaces the gateway
stream with a webhook for a tool the agent does not have (the edge's own floor: auth, parse,
the trace commit, the reply), and the gateway's own time is read from each call's trace
(``latency_ms`` of its ``tool_call`` event), to show where the overhead goes.

Dead server. Two more copies of the server, each with a 1 s tool deadline and the default
breaker (5 consecutive failures, 15 s cool-down shortened to 5 s here): one is killed
(connection refused), one is frozen with SIGSTOP (a hung server: calls run into the deadline).
Calls keep arriving at ``--rate``; reported: time from the fault to the breaker opening, the
latency of answers before it opened and of the fallback after, and (killed) the time to recover
after the server is restarted.

    python -m bench.gateway_overhead            # Postgres (fresh database)
    python -m bench.gateway_overhead --sqlite   # the embedded default
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from sqlmodel import Session, col, select

from bench.common import (
    ADMIN_TOKEN,
    PYTHON,
    ROOT,
    Stack,
    add_common_args,
    fmt_ms,
    free_port,
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
from cli.launch import port_open

TARGET_P95_OVERHEAD_MS = 2.0
ORDERS = str(ROOT / "examples" / "mcp_servers" / "orders.py")
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
NUMBER = "+14155550123"


class McpServerProcess:
    def __init__(self) -> None:
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    def start(self) -> McpServerProcess:
        self.proc = subprocess.Popen(
            [PYTHON, ORDERS, "--http", str(self.port), "--refund-delay", "0"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while not port_open("127.0.0.1", self.port):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("the orders MCP server did not start")
            time.sleep(0.05)
        return self

    def signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGCONT)
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)


def vapi_body(name: str, arguments: dict[str, Any], call_id: str) -> bytes:
    from fakes.common import raw
    from fakes.vapi import tool_call

    return raw(tool_call(NUMBER, name, arguments, call_id=call_id))


@dataclass
class Sample:
    kind: str
    sent_at: float
    latency_s: float
    ok: bool
    call_id: str = ""


@dataclass
class Driver:
    api: httpx.AsyncClient
    direct: Client
    webhook: str
    headers: dict[str, str]
    samples: list[Sample] = field(default_factory=list)

    async def via_gateway(self, tool: str, kind: str, t0: float, expect: str | None) -> None:
        call_id = f"bench-{uuid.uuid4().hex[:12]}"
        body = vapi_body(tool, {"order_id": "1042"}, call_id)
        start = time.perf_counter()
        try:
            r = await self.api.post(self.webhook, content=body, headers=self.headers)
            latency = time.perf_counter() - start
            result = r.json()["results"][0]
            ok = r.status_code == 200 and (
                expect is None or expect in str(result.get("result") or result.get("error"))
            )
        except (httpx.HTTPError, ValueError, KeyError):
            latency, ok = time.perf_counter() - start, False
        self.samples.append(Sample(kind, start - t0, latency, ok, call_id))

    async def via_direct(self, t0: float) -> None:
        start = time.perf_counter()
        try:
            result = await self.direct.call_tool("order_status", {"order_id": "1042"})
            ok = not result.is_error
        except Exception:
            ok = False
        self.samples.append(Sample("direct", start - t0, time.perf_counter() - start, ok))


async def open_loop(launch: list[Any], rate: float, seconds: float) -> None:
    """Start ``launch[i % n]()`` every 1/(rate*n) s, never waiting for earlier calls."""
    interval = 1.0 / (rate * len(launch))
    tasks: list[asyncio.Task[None]] = []
    start = time.perf_counter()
    n = int(seconds * rate * len(launch))
    for i in range(n):
        delay = start + i * interval - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(launch[i % len(launch)]()))
    await asyncio.gather(*tasks)


def trace_latencies(engine: Any, call_ids: list[str]) -> dict[str, tuple[str, float]]:
    """call id -> (status, gateway latency ms) from the calls' ``tool_call`` trace events."""
    from core.calls.models import CallEvent

    out: dict[str, tuple[str, float]] = {}
    with Session(engine) as s:
        for i in range(0, len(call_ids), 500):
            chunk = call_ids[i : i + 500]
            rows = s.exec(
                select(CallEvent).where(
                    col(CallEvent.platform_call_id).in_(chunk), CallEvent.type == "tool_call"
                )
            )
            for e in rows:
                out[e.platform_call_id] = (str(e.data["status"]), float(e.data["latency_ms"]))
    return out


async def register(api: httpx.AsyncClient, org_id: str, agent_id: str, **server: Any) -> str:
    # Rate limits off the measured path: at 20 calls/s a small limit would answer some calls
    # without reaching the server, and those fast refusals would flatter the figures.
    server.setdefault("rate_limit_per_minute", 1_000_000)
    r = await api.post(f"/v1/orgs/{org_id}/tools/servers", json=server, headers=ADMIN)
    r.raise_for_status()
    if r.json()["last_error"]:
        raise RuntimeError(f"discovery failed: {r.json()['last_error']}")
    prefix = server.get("prefix")
    tool = f"{prefix}_order_status" if prefix else "order_status"
    r = await api.put(f"/v1/agents/{agent_id}/tools/{tool}", json={}, headers=ADMIN)
    r.raise_for_status()
    return tool


async def dead_server(
    drv: Driver,
    api: httpx.AsyncClient,
    org_id: str,
    server: McpServerProcess,
    server_name: str,
    tool: str,
    fault: int,
    rate: float,
    seconds: float,
    engine: Any,
) -> dict[str, Any]:
    t0 = time.perf_counter()
    for _ in range(10):
        await drv.via_gateway(tool, "warm", t0, "delivered")
    drv.samples.clear()
    opened_at: float | None = None

    async def watch() -> None:
        nonlocal opened_at
        while opened_at is None:
            status = (await api.get(f"/v1/orgs/{org_id}/tools/status", headers=ADMIN)).json()
            for s in status["servers"]:
                if s["name"] == server_name and s["breaker"]["state"] == "open":
                    opened_at = time.perf_counter() - t_fault
            await asyncio.sleep(0.01)

    t_fault = time.perf_counter()
    server.signal(fault)
    watcher = asyncio.create_task(watch())

    async def one() -> None:
        await drv.via_gateway(tool, "dead", t_fault, None)

    await open_loop([one], rate, seconds)
    with contextlib.suppress(asyncio.CancelledError):
        watcher.cancel()
        await watcher
    traced = trace_latencies(engine, [s.call_id for s in drv.samples])
    by_status: dict[str, list[float]] = {}
    for s in drv.samples:
        status = traced.get(s.call_id, ("untraced", 0.0))[0]
        by_status.setdefault(status, []).append(s.latency_s)
    result: dict[str, Any] = {
        "time_to_open_s": opened_at,
        "calls": len(drv.samples),
        "all_answered_200": all(s.ok for s in drv.samples),
        "by_status": {k: summarize_ms(v) for k, v in sorted(by_status.items())},
    }
    drv.samples.clear()
    return result


async def drive(args: argparse.Namespace, stack: Stack, tenant: Any) -> dict[str, Any]:
    servers = [McpServerProcess().start() for _ in range(3)]
    try:
        return await _drive(args, stack, tenant, *servers)
    finally:
        for s in servers:
            s.stop()


async def _drive(
    args: argparse.Namespace,
    stack: Stack,
    tenant: Any,
    main: McpServerProcess,
    killed: McpServerProcess,
    hung: McpServerProcess,
) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    async with (
        httpx.AsyncClient(base_url=stack.api_url, timeout=30, limits=limits) as api,
        httpx2.AsyncClient() as direct_http,
        Client(streamable_http_client(main.url, http_client=direct_http)) as direct,
    ):
        org, agent = tenant.org_id, tenant.agent_id
        tool = await register(api, org, agent, name="orders", transport="http", url=main.url)
        kill_tool = await register(
            api, org, agent, name="orders-killed", transport="http", url=killed.url,
            prefix="k", timeout_s=1.0, breaker_cooldown_s=5.0,
        )  # fmt: skip
        hang_tool = await register(
            api, org, agent, name="orders-hung", transport="http", url=hung.url,
            prefix="h", timeout_s=1.0, breaker_cooldown_s=5.0,
        )  # fmt: skip
        drv = Driver(api, direct, tenant.webhook, tenant.vapi_headers)
        t0 = time.perf_counter()

        async def gw() -> None:
            await drv.via_gateway(tool, "gateway", t0, "delivered")

        async def floor() -> None:
            await drv.via_gateway("no_such_tool", "floor", t0, "no_such_tool")

        async def dr() -> None:
            await drv.via_direct(t0)

        say("warming up")
        await open_loop([gw, dr, floor], args.rate, args.warmup)
        drv.samples.clear()
        say(f"phase 1: gateway + direct, {args.rate:.0f} calls/s each, {args.duration:.0f} s")
        await open_loop([gw, dr], args.rate, args.duration)
        phase1 = list(drv.samples)
        drv.samples.clear()
        say(f"phase 2: webhook floor + direct, {args.rate:.0f} calls/s each")
        await open_loop([floor, dr], args.rate, args.duration / 2)
        phase2 = list(drv.samples)
        drv.samples.clear()

        engine = stack.engine()
        traced = trace_latencies(engine, [s.call_id for s in phase1 if s.kind == "gateway"])

        def lat(samples: list[Sample], kind: str) -> list[float]:
            return [s.latency_s for s in samples if s.kind == kind]

        gateway = summarize_ms(lat(phase1, "gateway"))
        direct1 = summarize_ms(lat(phase1, "direct"))
        in_gateway = summarize_ms([v[1] / 1000 for v in traced.values()])
        floor_ = summarize_ms(lat(phase2, "floor"))
        direct2 = summarize_ms(lat(phase2, "direct"))
        errors: dict[str, int] = {}
        for s in phase1 + phase2:
            if not s.ok:
                errors[s.kind] = errors.get(s.kind, 0) + 1

        say("dead server: killed")
        dead_killed = await dead_server(
            drv, api, org, killed, "orders-killed", kill_tool, signal.SIGKILL, args.rate,
            args.dead_seconds, engine,
        )  # fmt: skip
        # Restart on the same port: the pool reconnects once the breaker lets a probe through.
        restart_at = time.perf_counter()
        killed.start()
        recovered: float | None = None
        while time.perf_counter() - restart_at < 30:
            await drv.via_gateway(kill_tool, "recover", restart_at, "delivered")
            if drv.samples[-1].ok:
                recovered = time.perf_counter() - restart_at
                break
            await asyncio.sleep(0.1)
        dead_killed["recovered_after_restart_s"] = recovered
        drv.samples.clear()

        say("dead server: hung (SIGSTOP)")
        dead_hung = await dead_server(
            drv, api, org, hung, "orders-hung", hang_tool, signal.SIGSTOP, args.rate,
            args.dead_seconds, engine,
        )  # fmt: skip
        engine.dispose()
    return {
        "rate_per_stream": args.rate,
        "duration_s": args.duration,
        "errors": errors,
        "gateway_statuses": _count(v[0] for v in traced.values()),
        "gateway_ms": gateway,
        "direct_ms": direct1,
        "in_gateway_ms": in_gateway,
        "floor_ms": floor_,
        "direct_phase2_ms": direct2,
        "overhead_p50_ms": gateway["p50"] - direct1["p50"],
        "overhead_p95_ms": gateway["p95"] - direct1["p95"],
        "in_gateway_overhead_p50_ms": in_gateway["p50"] - direct1["p50"],
        "in_gateway_overhead_p95_ms": in_gateway["p95"] - direct1["p95"],
        "dead_killed": dead_killed,
        "dead_hung": dead_hung,
    }


def report(res: dict[str, Any]) -> str:
    rows = [
        ["direct MCP call (this process -> server)", *_cols(res["direct_ms"])],
        ["VAPI webhook -> gateway -> MCP (end to end)", *_cols(res["gateway_ms"])],
        ["  of which inside the gateway (trace latency_ms)", *_cols(res["in_gateway_ms"])],
        ["VAPI webhook, unknown tool (edge floor, phase 2)", *_cols(res["floor_ms"])],
        ["direct MCP call (phase 2)", *_cols(res["direct_phase2_ms"])],
    ]
    out = [
        table(["path", "n", "p50 ms", "p95 ms", "p99 ms", "max ms"], rows),
        "",
        table(
            ["overhead (gateway minus direct)", "p50 ms", "p95 ms", "target", ""],
            [
                [
                    "end to end (HTTP in, edge, trace commit, gateway, MCP out)",
                    fmt_ms(res["overhead_p50_ms"]),
                    fmt_ms(res["overhead_p95_ms"]),
                    f"p95 <= {TARGET_P95_OVERHEAD_MS:.0f} ms",
                    met(res["overhead_p95_ms"] <= TARGET_P95_OVERHEAD_MS),
                ],
                [
                    "gateway only (validation, limits, breaker, pool; no HTTP in, no DB)",
                    fmt_ms(res["in_gateway_overhead_p50_ms"]),
                    fmt_ms(res["in_gateway_overhead_p95_ms"]),
                    "",
                    "",
                ],
            ],
        ),
        f"\nfailed or wrong answers (by path): {res['errors'] or 'none'}; gateway outcomes "
        f"(from the trace): {res['gateway_statuses']}",
    ]
    for name, key in (
        ("killed (connection refused)", "dead_killed"),
        ("hung (SIGSTOP)", "dead_hung"),
    ):
        d = res[key]
        opened = d["time_to_open_s"]
        out.append(
            f"\nDead server, {name}: breaker open after "
            f"{'-' if opened is None else f'{opened * 1000:.0f} ms'}; {d['calls']} calls, all "
            f"answered HTTP 200: {d['all_answered_200']}"
            + (
                f"; recovered {d['recovered_after_restart_s']:.2f} s after restart"
                if d.get("recovered_after_restart_s") is not None
                else ""
            )
        )
        out.append(
            table(
                ["outcome", "n", "p50 ms", "p95 ms", "p99 ms", "max ms"],
                [[status, *_cols(s)] for status, s in d["by_status"].items()],
            )
        )
    return "\n".join(out)


def _count(values: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return out


def _cols(s: dict[str, float]) -> list[str]:
    return [
        str(int(s["n"])),
        fmt_ms(s["p50"]),
        fmt_ms(s["p95"]),
        fmt_ms(s["p99"]),
        fmt_ms(s["max"]),
    ]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.gateway_overhead",
        description="Tools gateway overhead vs a direct MCP call, and dead-server behaviour.",
    )
    p.add_argument("--rate", type=float, default=20.0, help="calls/s per stream")
    p.add_argument("--duration", type=float, default=30.0, help="phase 1 seconds")
    p.add_argument("--warmup", type=float, default=5.0)
    p.add_argument("--dead-seconds", type=float, default=8.0)
    add_common_args(p)
    args = p.parse_args(argv)
    install_signal_handlers()
    info = machine_info()
    say(f"machine: {info}")
    with Stack(
        sqlite=args.sqlite,
        temporal=False,
        worker=False,
        label="gateway",
        keep=args.keep,
        # The example MCP servers listen on loopback: the operator allow-list admits them.
        extra_env={"BACKLINE_EGRESS_ALLOW": "127.0.0.1", **parse_env(args.env)},
        profile=args.profile,
    ) as stack:
        tenant = stack.create_tenant()
        quiet = wait_quiet(args.quiet_wait)
        res = asyncio.run(drive(args, stack, tenant))
    mode = "SQLite (embedded)" if args.sqlite else "Postgres"
    text_ = report(res)
    print(f"\n## gateway_overhead ({mode})\n\n{quiet}\n\n{text_}\n", flush=True)
    write_json(
        args.json,
        {"bench": "gateway_overhead", "mode": mode, "machine": info, "results": res},
    )
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        raise SystemExit(main())
