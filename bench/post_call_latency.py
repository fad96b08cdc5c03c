"""End-of-call -> memory retrievable, through the real VAPI webhook and PostCallWorkflow.

Sends end-of-call reports from distinct callers at a fixed rate (open loop) to the API; for
each, polls the database every ``--poll-ms`` until the caller's memory is retrievable (caller
profile committed, which assistant-request reads, and the summary vector present, which
memory_search reads). Reports (retrievable time - send time). No LLM is configured, so the
workflow takes the rule-based path (extractive summary + rule facts). Afterwards it checks every
caller through a real assistant-request and breaks the time down per workflow step from the
Temporal histories.

    python -m bench.post_call_latency            # Postgres, 200 calls at 2/s
    python -m bench.post_call_latency --sqlite   # embedded default (SQLite file)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from typing import Any

import httpx

from bench.calls import CallSpec, count_workflows, make_calls, retrievable, unexpected_workflows
from bench.common import (
    Stack,
    add_common_args,
    breakdown_table,
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
    workflow_breakdown,
    write_json,
)

TARGET_P95_S = 2.0


async def drive(args: argparse.Namespace, stack: Stack, tenant: Any) -> dict[str, Any]:
    calls = make_calls(args.calls, tenant, stack.secret_key, seed=args.seed)
    engine = stack.engine()
    loop = asyncio.get_running_loop()
    pending: dict[str, CallSpec] = {}
    sent_all = asyncio.Event()
    meter = stack.cpu_meter()

    async def send(client: httpx.AsyncClient, c: CallSpec) -> None:
        t = loop.time()
        try:
            r = await client.post(tenant.webhook, content=c.body, headers=tenant.vapi_headers)
            c.http_ok = r.status_code == 200
            if c.http_ok:
                body = r.json()
                c.workflow_id = body.get("workflow_id", "")
        except httpx.HTTPError as exc:
            c.extra["error"] = str(exc)
        c.http_s = loop.time() - t

    async def sender(client: httpx.AsyncClient) -> None:
        t0 = loop.time() + 0.1
        tasks = []
        for c in calls:
            at = t0 + c.index / args.rate
            delay = at - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            c.send_mono = at
            c.send_wall = time.time() - (loop.time() - at)
            pending[c.caller_hash] = c
            tasks.append(asyncio.create_task(send(client, c)))
        await asyncio.gather(*tasks)
        sent_all.set()

    async def poller() -> None:
        interval = args.poll_ms / 1000
        while True:
            if pending:
                snapshot = list(pending.values())
                found = await asyncio.to_thread(retrievable, engine, tenant.agent_id, snapshot)
                now = loop.time()
                for h in found:
                    c = pending.pop(h, None)
                    if c is not None:
                        c.ready_mono = now
            elif sent_all.is_set():
                return
            await asyncio.sleep(interval)

    meter.start()
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as client:
        poll_task = asyncio.create_task(poller())
        await sender(client)
        deadline = loop.time() + args.timeout
        while pending and loop.time() < deadline:
            await asyncio.sleep(0.1)
        poll_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await poll_task
        cpu = meter.stop()

        # every caller, through the real edge: does the next call know them?
        say("checking every caller through a real assistant-request ...")
        from fakes.common import raw
        from fakes.vapi import assistant_request

        known = 0
        for c in calls:
            r = await client.post(
                tenant.webhook,
                content=raw(assistant_request(c.number)),
                headers=tenant.vapi_headers,
            )
            known += b'"backline_caller_known":"yes"' in r.content
    engine.dispose()

    ready = [c for c in calls if c.ready_mono is not None]
    lat = [c.ready_mono - c.send_mono for c in ready if c.ready_mono is not None]
    step = max(len(ready) // max(args.history, 1), 1)
    sample = [c.workflow_id for c in ready if c.workflow_id][::step][: args.history]
    say(f"reading {len(sample)} workflow histories ...")
    client = await stack.temporal_client()
    bd = await workflow_breakdown(client, sample, {c.workflow_id: c.send_wall for c in calls})
    statuses = await count_workflows(client, stack.task_queue)
    extra = await unexpected_workflows(
        client, stack.task_queue, [c.workflow_id for c in calls if c.workflow_id]
    )
    return {
        "calls": len(calls),
        "rate": args.rate,
        "retrievable": len(ready),
        "not_retrievable_within_timeout": len(calls) - len(ready),
        "latency_ms": summarize_ms(lat),
        "http_accept_ms": summarize_ms([c.http_s for c in calls if c.http_s is not None]),
        "http_errors": sum(not c.http_ok for c in calls),
        "known_on_next_call": known,
        "cpu": cpu,
        "breakdown": bd,
        "workflow_statuses": statuses,
        "unexpected_workflows": extra,
    }


def report(args: argparse.Namespace, res: dict[str, Any]) -> str:
    lat, http = res["latency_ms"], res["http_accept_ms"]
    ok = lat["p95"] <= TARGET_P95_S * 1000 and not res["not_retrievable_within_timeout"]
    out = [
        f"{res['calls']} end-of-call reports from distinct callers at {res['rate']:g}/s through "
        f"POST /v1/webhooks/vapi/{{agent}}; retrievable = caller profile committed and summary "
        f"vector present, polled every {args.poll_ms:g} ms. No LLM (rule-based analysis).",
    ]
    out.append(f"Shared machine: {res.get('quiet', 'n/a')}.")
    if args.env:
        out.append(f"Experiment: children started with extra environment {', '.join(args.env)}.")
    out += [
        "",
        table(
            ["measure", "n", "p50 ms", "p95 ms", "p99 ms", "max ms", "mean ms"],
            [
                ["send -> memory retrievable", lat["n"], fmt_ms(lat["p50"]), fmt_ms(lat["p95"]),
                 fmt_ms(lat["p99"]), fmt_ms(lat["max"]), fmt_ms(lat["mean"])],
                ["webhook HTTP reply (accept + start workflow)", http["n"], fmt_ms(http["p50"]),
                 fmt_ms(http["p95"]), fmt_ms(http["p99"]), fmt_ms(http["max"]),
                 fmt_ms(http["mean"])],
            ],
        ),
        "",
        table(
            ["target", "measured", "result"],
            [[f"p95 <= {TARGET_P95_S:g} s (no LLM)", f"{lat['p95'] / 1000:.2f} s",
              met(ok)]],
        ),
        "",
        f"Retrievable within {args.timeout:g}s: {res['retrievable']}/{res['calls']}; HTTP errors: "
        f"{res['http_errors']}; known on a following assistant-request: "
        f"{res['known_on_next_call']}/{res['calls']}; workflows by status: "
        f"{res['workflow_statuses']}; workflows no webhook reply announced: "
        f"{len(res['unexpected_workflows'])} {res['unexpected_workflows'][:3]}.",
        "",
        breakdown_table(res["breakdown"]),
        "",
        table(["CPU while sending and draining", "% of one core"], cpu_rows(res["cpu"])),
    ]  # fmt: skip
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.post_call_latency",
        description="End-of-call report -> memory retrievable latency (real webhook + workflow).",
    )
    p.add_argument("--calls", type=int, default=200)
    p.add_argument("--rate", type=float, default=2.0, help="calls per second (fixed spacing)")
    p.add_argument("--poll-ms", type=float, default=20.0)
    p.add_argument("--timeout", type=float, default=60.0, help="wait after the last send (s)")
    p.add_argument("--history", type=int, default=40, help="workflow histories to break down")
    p.add_argument("--seed", type=int, default=11)
    add_common_args(p)
    args = p.parse_args(argv)
    install_signal_handlers()
    info = machine_info()
    say(f"machine: {info}")
    with Stack(
        sqlite=args.sqlite,
        label="postcall",
        keep=args.keep,
        extra_env=parse_env(args.env),
        profile=args.profile,
    ) as stack:
        tenant = stack.create_tenant()
        quiet = wait_quiet(args.quiet_wait)
        res = asyncio.run(drive(args, stack, tenant))
        res["quiet"] = quiet
        if args.keep:
            say(f"worker log tail:\n{stack.log_tail('worker')}")
    text_ = report(args, res)
    profiles = stack.profiles
    mode = "SQLite (embedded)" if args.sqlite else "Postgres"
    print(f"\n## post_call_latency ({mode})\n\n{text_}\n", flush=True)
    for name, prof in profiles.items():
        print(f"\n### sampled profile of the {name} process\n\n{prof}\n")
    write_json(
        args.json,
        {"bench": "post_call_latency", "mode": mode, "machine": info, "results": res,
         "report": text_, "profiles": profiles},
    )  # fmt: skip
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        raise SystemExit(main())
