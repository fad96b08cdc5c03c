"""Multi-process topology on this machine: 1, 2 and 3 API processes behind a round-robin
client, 2 workers, Postgres and the Temporal dev server.

For each API count N (the first N of the API processes started; the others stay idle):

- context fetch: VAPI assistant-requests only (a seeded caller base, as bench/lookup_latency
  seeds it), open loop, stepping the rate up until p95 exceeds ``--ceiling-ms`` (50 ms); the
  figure is the highest rate whose p95 (failures counted as infinitely slow) stays within it;
- post-call: end-of-call reports with a bounded backlog (bench/post_call_throughput's driver),
  completed calls/s over the window, with the reports spread over the N processes.

Then, with all API processes serving: a prompt label move, timed until each process serves the
new version (bench/prompt_propagation's procedure), ``--moves`` times. Target: <= 1 s.

The load generator spreads requests over the processes' ports itself (round robin, one client
per port), rather than one ``uvicorn --workers N``: uvicorn's workers share one listening socket
and the kernel hands each new connection to whichever process accepts first, so with keep-alive
connections the split is uneven and not controlled; a platform in front of several instances
goes through a load balancer that balances, which the client-side round robin stands for. Each
API process is the command ``backline up`` runs (cli.launch.api_command).

    python -m bench.topology [--apis 1,2,3] [--steps 20,40,...] [--step-seconds 10]
        [--post-call-seconds 30] [--moves 10] [--json F]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import random
import time
from collections.abc import Sequence
from typing import Any

import httpx

from bench import lookup_latency, post_call_throughput, prompt_propagation
from bench.common import (
    PYTHON,
    Stack,
    fmt_ms,
    free_port,
    install_signal_handlers,
    machine_info,
    met,
    say,
    summarize_ms,
    table,
    wait_for_apis,
    wait_quiet,
    write_json,
)
from cli.launch import api_command, worker_command
from core.settings import Settings

CEILING_MS = 50.0
PROPAGATION_TARGET_MS = 1000.0


class RoundRobin:
    """Stands where run_phase expects one client: each request goes to the next process."""

    def __init__(self, clients: Sequence[httpx.AsyncClient]) -> None:
        self._next = itertools.cycle(clients)

    async def post(self, path: str, **kw: Any) -> httpx.Response:
        return await next(self._next).post(path, **kw)


def start_apis(stack: Stack, n: int) -> list[str]:
    """The stack's API plus ``n - 1`` more, each the command ``backline up`` runs."""
    urls = [stack.api_url]
    keep_alive = Settings().api_keep_alive_s
    for i in range(1, n):
        port = free_port()
        stack._spawn(f"api{i + 1}", api_command(PYTHON, "127.0.0.1", port, keep_alive_s=keep_alive))
        urls.append(f"http://127.0.0.1:{port}")
    wait_for_apis(stack, urls[1:], timeout=300)
    say(f"{n} API processes ready")
    return urls


async def context_fetch_search(
    args: argparse.Namespace, stack: Stack, urls: Sequence[str], platform: Any, callers: int
) -> dict[str, Any]:
    """Step the assistant-request rate up over ``urls`` until p95 exceeds the ceiling."""
    rng = random.Random(args.seed)
    load = lookup_latency.Load(platform, callers, 0.0, random.Random(args.seed + 1))
    limits = httpx.Limits(max_connections=1024, max_keepalive_connections=1024)
    steps: list[dict[str, Any]] = []
    async with contextlib.AsyncExitStack() as opened:
        clients = [
            await opened.enter_async_context(
                httpx.AsyncClient(base_url=u, timeout=30, limits=limits)
            )
            for u in urls
        ]
        rr: Any = RoundRobin(clients)
        rates = [float(r) for r in args.steps.split(",") if r.strip()]
        await lookup_latency.run_phase(rr, load, rates[0], args.warmup, rng)
        for rate in rates:
            await asyncio.sleep(1)
            meter = stack.cpu_meter()
            meter.start()
            samples, _, achieved = await lookup_latency.run_phase(
                rr, load, rate, args.step_seconds, rng
            )
            cpu = meter.stop()
            step = {
                "rate": rate,
                "achieved": achieved,
                "stats": summarize_ms([s.latency for s in samples if s.ok]),
                "p95_all": lookup_latency.p95_all(samples),
                "errors": sum(not s.ok for s in samples),
                "wrong_replies": sum(s.ok and not s.good_reply for s in samples),
                "cpu": cpu,
            }
            steps.append(step)
            say(
                f"  {len(urls)} API: {rate:g} req/s -> p95 {fmt_ms(step['p95_all'])} ms, "
                f"errors {step['errors']}, machine CPU {cpu['whole machine (all users)']:.0f}%"
            )
            # A few steps past the ceiling show how the latency degrades.
            if sum(st["p95_all"] > args.ceiling_ms for st in steps) > args.past_ceiling:
                break
    passing = [s for s in steps if s["p95_all"] <= args.ceiling_ms and not s["wrong_replies"]]
    best = max(passing, key=lambda s: s["rate"]) if passing else None
    return {"steps": steps, "best": best}


def post_call(
    args: argparse.Namespace, stack: Stack, urls: Sequence[str], tenant: Any
) -> dict[str, Any]:
    pc_args = argparse.Namespace(
        warmup=args.post_call_warmup,
        duration=args.post_call_seconds,
        in_flight=args.in_flight,
        max_rate=60.0,
        poll_ms=200.0,
        drain=30.0,
        history=5,
        seed=args.seed + len(urls),
    )
    res: dict[str, Any] = asyncio.run(post_call_throughput.drive(pc_args, stack, tenant, urls))
    say(f"  {len(urls)} API: post-call {res['completed_per_s']:.2f} completed calls/s")
    return res


def propagation(urls: list[str], moves: int, poll_ms: float) -> dict[str, Any]:
    tenant, release = prompt_propagation._setup(urls[0])
    for url in urls:
        with httpx.Client(base_url=url, timeout=10) as http:
            deadline = time.monotonic() + 10
            while prompt_propagation._served_version(http, tenant) != "v1":
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{url} never served v1")
                time.sleep(0.05)
    rng = random.Random(11)
    per_process: list[list[float]] = [[] for _ in urls]
    worst: list[float] = []
    target = 2
    for _ in range(moves):
        latencies, _rtt = prompt_propagation._measure_move(
            urls, tenant, release, target, poll_ms / 1000
        )
        worst.append(max(latencies))
        for i, lat in enumerate(latencies):
            per_process[i].append(lat)
        target = 1 if target == 2 else 2
        time.sleep(rng.uniform(0.2, 0.6))
    return {
        "all": summarize_ms(worst),
        "per_process": [summarize_ms(v) for v in per_process],
    }


def cpu_summary(cpu: dict[str, float]) -> str:
    apis = sum(v for k, v in cpu.items() if k.startswith("api") and k.endswith("process"))
    workers = sum(v for k, v in cpu.items() if k.startswith("worker") and k.endswith("process"))
    temporal = cpu.get("temporal process", 0.0)
    pg = sum(v for k, v in cpu.items() if k.startswith("postgres backends"))
    gen = cpu.get("load generator (bench process)", 0.0)
    machine = cpu.get("whole machine (all users)", 0.0)
    other = cpu.get("other users (whole machine - ours)", 0.0)
    return (
        f"APIs {apis:.0f}%, workers {workers:.0f}%, Temporal {temporal:.0f}%, "
        f"Postgres {pg:.0f}%, generator {gen:.0f}%, "
        f"others {other:.0f}%, machine {machine:.0f}%"
    )


def report(args: argparse.Namespace, res: dict[str, Any]) -> str:
    rows = []
    for n, r in res["by_apis"].items():
        best = r["context"]["best"]
        pc = r["post_call"]
        rows.append(
            [
                n,
                f"{best['rate']:g}" if best else "none",
                fmt_ms(best["p95_all"]) if best else "",
                cpu_summary(best["cpu"]) if best else "",
                f"{pc['completed_per_s']:.2f}" if pc else "not run",
                cpu_summary(pc["cpu"]) if pc else "",
            ]
        )
    steps = []
    for n, r in res["by_apis"].items():
        for s in r["context"]["steps"]:
            steps.append(
                [
                    n,
                    f"{s['rate']:g}",
                    f"{s['achieved']:.1f}",
                    fmt_ms(s["stats"]["p50"]),
                    fmt_ms(s["p95_all"]),
                    s["errors"],
                    f"{s['cpu']['whole machine (all users)']:.0f}%",
                ]
            )
    prop = res["propagation"] or {"all": summarize_ms([]), "per_process": []}
    prop_rows = [
        [
            f"served by all {len(prop['per_process'])}",
            prop["all"]["n"],
            fmt_ms(prop["all"]["p50"]),
            fmt_ms(prop["all"]["p95"]),
            fmt_ms(prop["all"]["max"]),
            met(prop["all"]["max"] <= PROPAGATION_TARGET_MS) if prop["all"]["n"] else "not run",
        ]
    ] + [
        [f"API process {i + 1}", p["n"], fmt_ms(p["p50"]), fmt_ms(p["p95"]), fmt_ms(p["max"]), ""]
        for i, p in enumerate(prop["per_process"])
    ]
    return "\n".join(
        [
            table(
                [
                    "API processes",
                    f"context fetch req/s at p95 <= {args.ceiling_ms:g} ms",
                    "p95 ms",
                    "CPU at that rate (% of one core)",
                    "post-call completed calls/s",
                    "CPU during post-call",
                ],
                rows,
            ),
            "",
            table(
                [
                    "API processes",
                    "offered req/s",
                    "achieved",
                    "p50 ms",
                    "p95 ms",
                    "errors",
                    "machine CPU",
                ],
                steps,
            ),
            "",
            table(
                ["label move -> served", "moves", "p50 ms", "p95 ms", "max ms", "<= 1 s"], prop_rows
            ),
        ]
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.topology", description=__doc__.split("\n\n")[0]
    )
    p.add_argument("--apis", default="1,2,3", help="API process counts to measure")
    p.add_argument(
        "--steps", default="5,10,20,40,60,80,100,130,160,200", help="context-fetch req/s"
    )
    p.add_argument("--step-seconds", type=float, default=10.0)
    p.add_argument("--warmup", type=float, default=5.0)
    p.add_argument("--ceiling-ms", type=float, default=CEILING_MS)
    p.add_argument(
        "--past-ceiling",
        type=int,
        default=1,
        help="steps to measure past the first over the ceiling",
    )
    p.add_argument("--callers", type=int, default=2000, help="seeded callers")
    p.add_argument("--per-caller", type=int, default=5, help="seeded summaries per caller")
    p.add_argument("--pool", type=int, default=300, help="distinct summary texts to embed")
    p.add_argument("--post-call-seconds", type=float, default=30.0, help="0: skip post-call")
    p.add_argument("--post-call-warmup", type=float, default=10.0)
    p.add_argument("--in-flight", type=int, default=50, help="post-call backlog")
    p.add_argument("--moves", type=int, default=10, help="prompt label moves to time (0: skip)")
    p.add_argument("--poll-ms", type=float, default=5.0, help="propagation poll interval")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--quiet-wait", type=float, default=30.0)
    p.add_argument("--json", help="also write results to this JSON file")
    p.add_argument("--keep", action="store_true", help="keep the temp dir with child logs")
    args = p.parse_args(argv)
    counts = sorted({int(n) for n in args.apis.split(",") if n.strip()})
    install_signal_handlers()
    info = machine_info()
    say(f"machine: {info}")
    res: dict[str, Any] = {"by_apis": {}, "machine": info}
    with Stack(label="topology", keep=args.keep) as stack:
        stack._spawn("worker2", worker_command(PYTHON))
        urls = start_apis(stack, max(counts))
        tenant = stack.create_tenant()
        creds = lookup_latency.add_platform_credentials(stack, tenant)
        res["seeded"] = lookup_latency.seed(
            stack, tenant, args.callers, args.per_caller, args.pool, args.seed
        )
        platform = lookup_latency.build_platform("vapi", tenant, creds["vapi"])
        res["quiet"] = wait_quiet(args.quiet_wait)
        for n in counts:
            say(f"-- {n} API process(es)")
            context = asyncio.run(
                context_fetch_search(args, stack, urls[:n], platform, args.callers)
            )
            pc_tenant = stack.create_tenant() if args.post_call_seconds > 0 else None
            res["by_apis"][n] = {
                "context": context,
                "post_call": post_call(args, stack, urls[:n], pc_tenant)
                if args.post_call_seconds > 0
                else None,
            }
        say(f"-- label-move propagation over {len(urls)} API processes")
        res["propagation"] = propagation(urls, args.moves, args.poll_ms) if args.moves > 0 else None
    text_ = report(args, res)
    print(
        f"\n## topology (Postgres, 2 workers, Temporal dev server)\n\n{res['quiet']}; "
        f"{info['cpus']} x {info['cpu_model']}, load at start {info['loadavg_at_start']}, "
        f"{info['date']}\n\n{text_}\n",
        flush=True,
    )
    write_json(args.json, {"bench": "topology", "results": res, "report": text_})
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        raise SystemExit(main())
