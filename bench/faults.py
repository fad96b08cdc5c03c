"""Faults while calls end: nothing lost, nothing duplicated, recovery without a hand.

Each scenario starts a fresh stack (Postgres, the Temporal dev server with its database on disk,
the API and a worker, as `backline up` runs them), sends end-of-call reports through the VAPI
webhook at a steady rate, injects its fault in the middle of the burst, and then waits for every
accepted call to reach memory. The sender behaves like a voice platform: it retries a delivery
that got no answer or a 5xx, with backoff, until it is answered 2xx.

Scenarios (``--scenario``, repeatable; default: all but postgres-restart):

- ``worker-kill``: SIGKILL the worker ``--kills`` times (default 20) during the burst, restarting
  it each time.
- ``api-restart``: SIGKILL the API in the middle of the burst and start it again.
- ``temporal-restart``: stop the dev server (SIGTERM) in the middle of the burst and start it
  again on the same database file.
- ``postgres-restart``: restart the local Postgres cluster mid-burst (``pg_ctlcluster ...
  restart``; disrupts every other Postgres user on the machine, so it runs only when asked).
- ``mcp-dies``: live tool calls to an HTTP MCP server that is killed mid-burst and started again:
  every tool call is answered (a result, or the spoken fallback while the breaker is open), and
  the tool works again afterwards.

For each: calls sent, accepted, lost (accepted but no memory after the drain), duplicated (more
than one summary or one processed-audit event for a call), recovery time, and for ``mcp-dies``
the tool answers by kind.

    python -m bench.faults --calls 100 --rate 5
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

from bench.calls import CallSpec, make_calls
from bench.common import (
    ROOT,
    Stack,
    add_common_args,
    free_port,
    install_signal_handlers,
    machine_info,
    parse_env,
    say,
    table,
    wait_quiet,
    write_json,
)
from cli.launch import port_open

SCENARIOS = ("worker-kill", "api-restart", "temporal-restart", "mcp-dies", "postgres-restart")
DEFAULT = SCENARIOS[:-1]
ORDERS = ROOT / "examples" / "mcp_servers" / "orders.py"


@dataclass
class Outcome:
    scenario: str
    sent: int = 0
    accepted: int = 0
    retries: int = 0
    lost: int = 0
    duplicated: int = 0
    drained_s: float = 0.0
    fault_note: str = ""
    tool_answers: Counter[str] = field(default_factory=Counter)
    tool_after: str = ""


async def _deliver(http: httpx.AsyncClient, stack: Stack, spec: CallSpec, out: Outcome) -> None:
    """Deliver like a platform: retry on no answer or 5xx (backoff up to 5 s), until 2xx."""
    headers = {"Authorization": f"Bearer {spec.extra['token']}", "content-type": "application/json"}
    delay = 0.5
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            r = await http.post(spec.extra["path"], content=spec.body, headers=headers)
            if r.status_code < 300:
                out.accepted += 1
                return
            if r.status_code < 500:
                raise RuntimeError(f"{spec.call_id} refused: {r.status_code} {r.text[:200]}")
        except httpx.HTTPError:
            pass
        out.retries += 1
        await asyncio.sleep(delay)
        delay = min(delay * 2, 5.0)
    raise RuntimeError(f"{spec.call_id} was never accepted")


async def _burst(
    stack: Stack, specs: list[CallSpec], rate: float, out: Outcome, fault: Callable[[], None]
) -> None:
    """Send at ``rate``/s; run ``fault`` (blocking, in a thread) when half have been sent."""
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=15) as http:
        tasks = []
        fault_task: asyncio.Future[None] | None = None
        for i, spec in enumerate(specs):
            if i == len(specs) // 2:
                fault_task = asyncio.ensure_future(asyncio.to_thread(fault))
            tasks.append(asyncio.create_task(_deliver(http, stack, spec, out)))
            out.sent += 1
            await asyncio.sleep(1 / rate)
        await asyncio.gather(*tasks)
        if fault_task is not None:
            await fault_task


def _counts(stack: Stack, agent_id: str, org_id: str) -> tuple[dict[str, int], dict[str, int]]:
    """Per call id: summaries in memory, and processed-audit events."""
    engine = stack.engine()
    try:
        with engine.connect() as conn:
            summaries = dict(
                conn.execute(
                    text(
                        "SELECT source_call_id, count(*) FROM memory WHERE agent_id = :a "
                        "AND kind = 'summary' GROUP BY source_call_id"
                    ),
                    {"a": agent_id},
                ).all()
            )
            audits = dict(
                conn.execute(
                    text(
                        "SELECT target, count(*) FROM auditevent WHERE org_id = :o "
                        "AND action = 'call.processed' GROUP BY target"
                    ),
                    {"o": org_id},
                ).all()
            )
    finally:
        engine.dispose()
    return {str(k): int(v) for k, v in summaries.items()}, {
        str(k): int(v) for k, v in audits.items()
    }


def _drain(stack: Stack, tenant: Any, specs: list[CallSpec], out: Outcome, limit: float) -> None:
    t0 = time.monotonic()
    ids = {s.call_id for s in specs}
    while True:
        summaries, audits = _counts(stack, tenant.agent_id, tenant.org_id)
        done = ids & set(summaries)
        if len(done) == len(ids) or time.monotonic() - t0 > limit:
            break
        time.sleep(1)
    out.drained_s = time.monotonic() - t0
    out.lost = len(ids - set(summaries))
    audit_per_call: Counter[str] = Counter()
    for target, n in audits.items():
        for cid in ids:
            if target.endswith(cid):
                audit_per_call[cid] += n
    out.duplicated = sum(1 for cid in ids if summaries.get(cid, 0) > 1) + sum(
        1 for n in audit_per_call.values() if n > 1
    )


def _specs(stack: Stack, tenant: Any, n: int, prefix: str) -> list[CallSpec]:
    specs = make_calls(n, tenant, stack.secret_key, prefix=prefix)
    for s in specs:
        s.extra.update(path=tenant.webhook, token=tenant.vapi_token)
    return specs


def _restart_postgres() -> None:
    versions = sorted(p.name for p in Path("/etc/postgresql").iterdir())
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", versions[0], "main", "restart"],
        check=True,
        timeout=120,
    )


def run_scenario(name: str, args: argparse.Namespace) -> Outcome:
    out = Outcome(name)
    # The MCP server runs on loopback: allowed by the operator's egress allow-list, as a
    # deployment with an intranet tool server would set it.
    env = {"BACKLINE_EGRESS_ALLOW": "127.0.0.1", **parse_env(args.env)}
    with Stack(label=f"fault-{name}", keep=args.keep, extra_env=env) as stack:
        tenant = stack.create_tenant()
        specs = _specs(stack, tenant, args.calls, name.split("-")[0])
        fault: Callable[[], None]
        mcp: dict[str, Any] = {}

        if name == "worker-kill":

            def fault() -> None:
                for _ in range(args.kills):
                    stack.kill("worker")
                    stack.respawn("worker")
                    time.sleep(max(args.calls / args.rate / 2 / args.kills, 0.3))

            out.fault_note = f"worker SIGKILLed and restarted {args.kills} times mid-burst"
        elif name == "api-restart":

            def fault() -> None:
                stack.kill("api")
                time.sleep(1)
                stack.respawn("api")

            out.fault_note = "API SIGKILLed mid-burst, restarted after 1 s"
        elif name == "temporal-restart":

            def fault() -> None:
                stack.kill("temporal", signal.SIGTERM)
                time.sleep(2)
                stack.respawn("temporal")

            out.fault_note = "dev server stopped mid-burst, restarted on its database after 2 s"
        elif name == "postgres-restart":
            fault = _restart_postgres
            out.fault_note = "Postgres cluster restarted mid-burst"
        else:
            mcp = _start_mcp(stack, tenant)

            def fault() -> None:
                mcp["proc"].send_signal(signal.SIGKILL)
                mcp["proc"].wait(timeout=10)
                time.sleep(3)
                mcp["proc"] = _spawn_orders(mcp["port"])

            out.fault_note = "HTTP MCP server SIGKILLed mid-burst, restarted after 3 s"

        stop = threading.Event()
        tool_thread = None
        if mcp:
            tool_thread = threading.Thread(
                target=_tool_loop, args=(stack, tenant, out, stop), daemon=True
            )
            tool_thread.start()
        try:
            asyncio.run(_burst(stack, specs, args.rate, out, fault))
        finally:
            stop.set()
            if tool_thread is not None:
                tool_thread.join(timeout=30)
        _drain(stack, tenant, specs, out, args.drain)
        if mcp:
            out.tool_after = _tool_after_recovery(stack, tenant)
            mcp["proc"].send_signal(signal.SIGTERM)
    return out


def _spawn_orders(port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, str(ORDERS), "--http", str(port), "--refund-delay", "0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while not port_open("127.0.0.1", port) and time.monotonic() < deadline:
        time.sleep(0.1)
    return proc


def _start_mcp(stack: Stack, tenant: Any) -> dict[str, Any]:
    from fakes.common import ADMIN

    port = free_port()
    proc = _spawn_orders(port)
    with httpx.Client(base_url=stack.api_url, timeout=30) as http:
        r = http.post(
            f"/v1/orgs/{tenant.org_id}/tools/servers",
            json={"name": "orders", "transport": "http", "url": f"http://127.0.0.1:{port}/mcp"},
            headers=ADMIN,
        )
        r.raise_for_status()
        r = http.put(f"/v1/agents/{tenant.agent_id}/tools/order_status", json={}, headers=ADMIN)
        r.raise_for_status()
    return {"port": port, "proc": proc}


def _tool_once(http: httpx.Client, tenant: Any) -> str:
    from fakes.common import raw
    from fakes.vapi import tool_call

    body = tool_call(
        "+16285550199", "order_status", {"order_id": "1042"}, f"t-{uuid.uuid4().hex[:8]}"
    )
    try:
        r = http.post(tenant.webhook, content=raw(body), headers=tenant.vapi_headers)
    except httpx.HTTPError as exc:
        return f"no answer ({type(exc).__name__})"
    if r.status_code != 200:
        return f"HTTP {r.status_code}"
    result = r.json()["results"][0]
    if "error" in result:
        return "fallback spoken"
    return "result" if "delivered" in result.get("result", "") else "other answer"


def _tool_loop(stack: Stack, tenant: Any, out: Outcome, stop: threading.Event) -> None:
    with httpx.Client(base_url=stack.api_url, timeout=30) as http:
        while not stop.is_set():
            out.tool_answers[_tool_once(http, tenant)] += 1
            time.sleep(0.2)


def _tool_after_recovery(stack: Stack, tenant: Any) -> str:
    """Seconds until the tool answers a real result again (the breaker half-opens and closes)."""
    t0 = time.monotonic()
    with httpx.Client(base_url=stack.api_url, timeout=30) as http:
        while time.monotonic() - t0 < 120:
            if _tool_once(http, tenant) == "result":
                return f"result again {time.monotonic() - t0:.1f} s after the burst"
            time.sleep(0.5)
    return "no result within 120 s"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--scenario", action="append", choices=SCENARIOS, help="default: all but postgres-restart"
    )
    p.add_argument("--calls", type=int, default=100, help="end-of-call reports per scenario")
    p.add_argument("--rate", type=float, default=5.0, help="reports per second")
    p.add_argument("--kills", type=int, default=20, help="worker kills in worker-kill")
    p.add_argument("--drain", type=float, default=300.0, help="max seconds to wait for memory")
    p.add_argument("--repeat", type=int, default=1, help="run each scenario this many times")
    add_common_args(p)
    args = p.parse_args()
    install_signal_handlers()
    info = machine_info()
    quiet = wait_quiet(args.quiet_wait)
    outcomes: list[Outcome] = []
    for name in args.scenario or DEFAULT:
        for i in range(args.repeat):
            say(f"scenario {name} ({i + 1}/{args.repeat})")
            o = run_scenario(name, args)
            outcomes.append(o)
            say(
                f"{name}: sent {o.sent}, accepted {o.accepted}, lost {o.lost}, "
                f"duplicated {o.duplicated}, drained in {o.drained_s:.1f} s"
            )
    print()
    print(f"machine: {info['cpus']} cores, {info['cpu_model']}; {quiet}")
    rows = [
        [
            o.scenario,
            o.fault_note,
            o.sent,
            o.accepted,
            o.retries,
            o.lost,
            o.duplicated,
            f"{o.drained_s:.1f}",
        ]
        for o in outcomes
    ]
    print(
        table(
            [
                "scenario",
                "fault",
                "sent",
                "accepted",
                "sender retries",
                "lost",
                "duplicated",
                "drain s",
            ],
            rows,
        )
    )
    for o in outcomes:
        if o.tool_answers:
            answers = ", ".join(f"{k}: {v}" for k, v in o.tool_answers.most_common())
            print(f"\n{o.scenario}: tool calls during the burst: {answers}; {o.tool_after}")
    write_json(
        args.json,
        {
            "machine": info,
            "quiet": quiet,
            "outcomes": [{**o.__dict__, "tool_answers": dict(o.tool_answers)} for o in outcomes],
        },
    )
    if any(o.lost or o.duplicated for o in outcomes):
        sys.exit(1)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
