"""Sustained post-call throughput: end-of-call reports as fast as the system completes them.

Keeps a bounded backlog (``--in-flight``, default 50 calls sent but whose workflow has not yet
reached its last step) and refills it as workflows complete, for ``--duration`` seconds after a
warm-up. Completion = the workflow's final activity wrote its ``call.processed`` audit event
(also cross-checked by memory rows appearing). Reports completed calls/s over the window, a
per-10 s series, the backlog at the end, a per-step breakdown from Temporal histories and CPU
per process. No LLM configured (rule-based path). The worker runs with the settings
``cli/worker.py`` ships (reported below).

    python -m bench.post_call_throughput            # Postgres, 2 minutes
    python -m bench.post_call_throughput --sqlite   # embedded default (SQLite file)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any

import httpx

from bench.calls import CallSpec, count_workflows, make_calls, progress_counts, unexpected_workflows
from bench.common import (
    WORKER_CONCURRENCY,
    Stack,
    add_common_args,
    breakdown_table,
    fmt_ms,
    install_signal_handlers,
    machine_info,
    met,
    parse_env,
    say,
    summarize_ms,
    table,
    wait_quiet,
    workflow_breakdown,
    write_json,
)

TARGET_CPS = 10.0


async def drive(
    args: argparse.Namespace, stack: Stack, tenant: Any, urls: Sequence[str] = ()
) -> dict[str, Any]:
    """``urls``: API processes to spread the reports over, round robin (default: the stack's)."""
    # Enough distinct calls for a generous upper bound on throughput.
    total_s = args.warmup + args.duration
    calls = make_calls(int(total_s * args.max_rate) + args.in_flight, tenant, stack.secret_key,
                       seed=args.seed, prefix="tp")  # fmt: skip
    engine = stack.engine()
    loop = asyncio.get_running_loop()
    state = {"sent": 0, "done": 0, "memories": 0, "http_errors": 0}
    replies: list[float] = []
    stop = asyncio.Event()

    async def send(client: httpx.AsyncClient, c: CallSpec) -> None:
        t = loop.time()
        try:
            r = await client.post(tenant.webhook, content=c.body, headers=tenant.vapi_headers)
            if r.status_code != 200:
                state["http_errors"] += 1
            else:
                replies.append(loop.time() - t)
                c.workflow_id = r.json().get("workflow_id", "")
        except httpx.HTTPError:
            state["http_errors"] += 1

    async def poll() -> None:
        while not stop.is_set():
            state["done"], state["memories"] = await asyncio.to_thread(
                progress_counts, engine, tenant.org_id, tenant.agent_id
            )
            await asyncio.sleep(args.poll_ms / 1000)

    async def feeder(clients: list[httpx.AsyncClient]) -> None:
        it = iter(calls)
        sends: set[asyncio.Task[None]] = set()
        while not stop.is_set():
            room = args.in_flight - (state["sent"] - state["done"])
            for _ in range(max(room, 0)):
                c = next(it, None)
                if c is None:
                    say("ran out of prepared calls; raise --max-rate")
                    stop.set()
                    break
                c.send_mono = loop.time()
                client = clients[state["sent"] % len(clients)]
                state["sent"] += 1
                t = asyncio.create_task(send(client, c))
                sends.add(t)
                t.add_done_callback(sends.discard)
            await asyncio.sleep(0.02)
        if sends:
            await asyncio.wait(sends, timeout=30)

    limits = httpx.Limits(max_connections=64)
    async with contextlib.AsyncExitStack() as opened:
        clients = [
            await opened.enter_async_context(
                httpx.AsyncClient(base_url=url, timeout=30, limits=limits)
            )
            for url in (urls or [stack.api_url])
        ]
        poller = asyncio.create_task(poll())
        feed = asyncio.create_task(feeder(clients))
        say(f"warm-up {args.warmup:.0f}s (backlog {args.in_flight})")
        await asyncio.sleep(args.warmup)
        done0, mem0, sent0 = state["done"], state["memories"], state["sent"]
        meter = stack.cpu_meter()
        meter.start()
        t0 = loop.time()
        series = []
        say(f"measuring for {args.duration:.0f}s")
        last_done, last_t = done0, t0
        while loop.time() - t0 < args.duration:
            await asyncio.sleep(min(10.0, args.duration - (loop.time() - t0)))
            now = loop.time()
            series.append((now - t0, (state["done"] - last_done) / max(now - last_t, 1e-9)))
            last_done, last_t = state["done"], now
        window = loop.time() - t0
        cpu = meter.stop()
        done1, mem1, sent1 = state["done"], state["memories"], state["sent"]
        stop.set()
        await feed
        poller.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await poller
    backlog_end = sent1 - done1
    final_done, final_mem = await asyncio.to_thread(
        progress_counts, engine, tenant.org_id, tenant.agent_id
    )
    # let the backlog drain so histories and statuses are complete (not part of the figure)
    say("draining the backlog (not measured) ...")
    deadline = loop.time() + args.drain
    while loop.time() < deadline:
        final_done, final_mem = await asyncio.to_thread(
            progress_counts, engine, tenant.org_id, tenant.agent_id
        )
        if final_done >= state["sent"]:
            break
        await asyncio.sleep(0.5)
    engine.dispose()
    sent_ids = [c.workflow_id for c in calls if c.workflow_id]
    mid = sent_ids[sent0 : sent1 : max((sent1 - sent0) // args.history, 1)][: args.history]
    say(f"reading {len(mid)} workflow histories ...")
    client = await stack.temporal_client()
    bd = await workflow_breakdown(client, mid)
    statuses = await count_workflows(client, stack.task_queue)
    extra = await unexpected_workflows(
        client, stack.task_queue, [c.workflow_id for c in calls if c.workflow_id]
    )
    return {
        "window_s": window,
        "in_flight": args.in_flight,
        "completed_in_window": done1 - done0,
        "completed_per_s": (done1 - done0) / window,
        "memories_per_s": (mem1 - mem0) / window,
        "sent_in_window": sent1 - sent0,
        "backlog_at_end": backlog_end,
        "series": series,
        "sent_total": state["sent"],
        "completed_after_drain": final_done,
        "memories_after_drain": final_mem,
        "http_errors": state["http_errors"],
        "reply_ms": summarize_ms(replies),
        "cpu": cpu,
        "breakdown": bd,
        "workflow_statuses": statuses,
        "unexpected_workflows": extra,
    }


def report(args: argparse.Namespace, res: dict[str, Any]) -> str:
    cps = res["completed_per_s"]
    out = [
        f"Backlog kept at {res['in_flight']} end-of-call reports in flight; measured "
        f"{res['window_s']:.0f}s after a {args.warmup:.0f}s warm-up. No LLM (rule-based path).",
        f"Worker: {WORKER_CONCURRENCY}.",
    ]
    out.append(f"Shared machine: {res.get('quiet', 'n/a')}.")
    if args.env:
        out.append(f"Experiment: children started with extra environment {', '.join(args.env)}.")
    out += [
        "",
        table(
            ["measure", "value"],
            [
                ["completed calls/s (workflow reached call.processed)", f"{cps:.2f}"],
                ["memory rows written/s", f"{res['memories_per_s']:.2f}"],
                ["calls sent in window", res["sent_in_window"]],
                ["calls completed in window", res["completed_in_window"]],
                ["backlog at end of window", res["backlog_at_end"]],
                ["per-10 s completed/s", ", ".join(f"{r:.1f}" for _, r in res["series"])],
                ["HTTP errors", res["http_errors"]],
                ["end-of-call reply p50 / p95 / p99 (ms)",
                 " / ".join(fmt_ms(res["reply_ms"][k]) for k in ("p50", "p95", "p99"))],
                ["after drain: sent / completed / memory rows",
                 f"{res['sent_total']} / {res['completed_after_drain']} / "
                 f"{res['memories_after_drain']}"],
                ["workflows by status (Temporal)", str(res["workflow_statuses"])],
                ["workflows no webhook reply announced",
                 f"{len(res['unexpected_workflows'])} {res['unexpected_workflows'][:3]}"],
            ],
        ),
        "",
        table(["target", "measured", "result"],
              [[f">= {TARGET_CPS:g} calls/s", f"{cps:.2f} calls/s", met(cps >= TARGET_CPS)]]),
        "",
        breakdown_table(res["breakdown"]),
        "",
        table(["CPU during the window", "% of one core", "CPU ms per completed call"],
              [[name, f"{pct:.0f}%", f"{pct * 10 / cps:.0f}" if cps and not name.startswith(
                  ("whole", "other")) else ""] for name, pct in res["cpu"].items()]),
    ]  # fmt: skip
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.post_call_throughput",
        description="Sustained post-call throughput with a bounded backlog.",
    )
    p.add_argument("--duration", type=float, default=120.0, help="measured window (s)")
    p.add_argument("--warmup", type=float, default=15.0)
    p.add_argument("--in-flight", type=int, default=50, help="bounded backlog of calls")
    p.add_argument(
        "--max-rate",
        type=float,
        default=60.0,
        help="calls/s to prepare for (upper bound; payloads are built up front)",
    )
    p.add_argument("--poll-ms", type=float, default=100.0)
    p.add_argument("--drain", type=float, default=45.0, help="max seconds to drain afterwards")
    p.add_argument("--history", type=int, default=30, help="workflow histories to break down")
    p.add_argument("--seed", type=int, default=13)
    add_common_args(p)
    args = p.parse_args(argv)  # fmt: skip
    install_signal_handlers()
    info = machine_info()
    say(f"machine: {info}")
    with Stack(
        sqlite=args.sqlite,
        label="throughput",
        keep=args.keep,
        extra_env=parse_env(args.env),
        profile=args.profile,
    ) as stack:
        tenant = stack.create_tenant()
        quiet = wait_quiet(args.quiet_wait)
        res = asyncio.run(drive(args, stack, tenant))
        res["quiet"] = quiet
    text_ = report(args, res)
    profiles = stack.profiles
    mode = "SQLite (embedded)" if args.sqlite else "Postgres"
    print(f"\n## post_call_throughput ({mode})\n\n{text_}\n", flush=True)
    for name, prof in profiles.items():
        print(f"\n### sampled profile of the {name} process\n\n{prof}\n")
    write_json(args.json, {"bench": "post_call_throughput", "mode": mode, "machine": info,
                           "results": res, "report": text_, "profiles": profiles})  # fmt: skip
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        raise SystemExit(main())
