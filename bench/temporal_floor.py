"""The Temporal floor under PostCallWorkflow: the same shape of workflow with no-op activities.

Starts a fresh Temporal dev server (SQLite file as ``backline up`` runs it, or in memory with
``--in-memory``), runs a worker in this process with no-op activities (one of them fails
non-retryably, as analyze_call_llm does when no LLM is configured), keeps ``--in-flight``
workflows running and reports completed workflows/s. What Backline's own work adds on top is
the difference to bench.post_call_throughput.

    python -m bench.temporal_floor [--local] [--unsandboxed] [--in-memory]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from bench._noop_workflow import FAIL, NOOP, NoopPostCall
from bench.common import (
    Stack,
    cpu_rows,
    install_signal_handlers,
    machine_info,
    say,
    table,
    wait_quiet,
    write_json,
)


@activity.defn(name=NOOP)
def noop() -> None:
    return None


@activity.defn(name=FAIL)
def fail() -> None:
    raise ApplicationError(
        "no LLM", type="NotConfigured", non_retryable=True, category=ApplicationErrorCategory.BENIGN
    )


async def drive(args: argparse.Namespace, stack: Stack) -> dict[str, Any]:
    client: Client = await stack.temporal_client()
    queue = f"floor-{uuid.uuid4().hex[:8]}"
    loop = asyncio.get_running_loop()
    done = 0
    in_flight = 0
    stop = asyncio.Event()

    async def one() -> None:
        nonlocal done, in_flight
        try:
            handle = await client.start_workflow(
                NoopPostCall.run, args.local, id=f"floor-{uuid.uuid4().hex}", task_queue=queue
            )
            await handle.result()
            done += 1
        finally:
            in_flight -= 1

    async def feeder() -> None:
        nonlocal in_flight
        tasks: set[asyncio.Task[None]] = set()
        while not stop.is_set():
            while in_flight < args.in_flight:
                in_flight += 1
                t = asyncio.create_task(one())
                tasks.add(t)
                t.add_done_callback(tasks.discard)
            await asyncio.sleep(0.01)
        for t in tasks:
            t.cancel()

    runner = UnsandboxedWorkflowRunner() if args.unsandboxed else None
    with ThreadPoolExecutor(16) as executor:
        kwargs: dict[str, Any] = {"workflow_runner": runner} if runner else {}
        worker = Worker(
            client,
            task_queue=queue,
            workflows=[NoopPostCall],
            activities=[noop, fail],
            activity_executor=executor,
            max_concurrent_activities=16,
            **kwargs,
        )
        async with worker:
            feed = asyncio.create_task(feeder())
            await asyncio.sleep(args.warmup)
            meter = stack.cpu_meter()
            meter.start()
            d0, t0 = done, loop.time()
            await asyncio.sleep(args.duration)
            d1, t1 = done, loop.time()
            cpu = meter.stop()
            stop.set()
            await feed
    return {"completed_per_s": (d1 - d0) / (t1 - t0), "completed": d1 - d0, "cpu": cpu}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.temporal_floor", description=__doc__)
    p.add_argument("--duration", type=float, default=30.0)
    p.add_argument("--warmup", type=float, default=5.0)
    p.add_argument("--in-flight", type=int, default=50)
    p.add_argument("--local", action="store_true", help="local activities instead of activities")
    p.add_argument("--unsandboxed", action="store_true", help="UnsandboxedWorkflowRunner")
    p.add_argument("--in-memory", action="store_true", help="dev server without a SQLite file")
    p.add_argument("--quiet-wait", type=float, default=30.0)
    p.add_argument("--json")
    args = p.parse_args(argv)
    install_signal_handlers()
    info = machine_info()
    with Stack(
        db=False, api=False, worker=False, temporal_persist=not args.in_memory, label="floor"
    ) as stack:
        quiet = wait_quiet(args.quiet_wait)
        say(f"running no-op workflows for {args.duration:.0f}s")
        res = asyncio.run(drive(args, stack))
    variant = ", ".join(
        [
            "local activities" if args.local else "activities",
            "unsandboxed" if args.unsandboxed else "sandboxed",
            "dev server in memory" if args.in_memory else "dev server SQLite file",
        ]
    )
    text_ = "\n".join(
        [
            f"No-op PostCallWorkflow shape ({variant}), {args.in_flight} in flight, "
            f"{args.duration:.0f}s. Shared machine: {quiet}.",
            "",
            table(
                ["measure", "value"], [["completed workflows/s", f"{res['completed_per_s']:.1f}"]]
            ),
            "",
            table(["CPU", "% of one core"], cpu_rows(res["cpu"])),
        ]
    )
    print(f"\n## temporal_floor\n\n{text_}\n", flush=True)
    write_json(
        args.json,
        {
            "bench": "temporal_floor",
            "variant": variant,
            "machine": info,
            "results": res,
            "report": text_,
        },
    )
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        raise SystemExit(main())
