"""Backline as the platform's LLM: the time to first token it adds over the upstream model alone.

A fake OpenAI-compatible upstream (``python -m fakes.llm``, a child process) answers with a
fixed time to first token (``--ttft-ms``) and a delay between streamed words. ``--calls``
simulated calls (50 by default) each send one streamed turn every ``--interval`` seconds (3 s)
for ``--duration`` seconds, open loop (a turn starts on its schedule whatever the others do),
each turn carrying the call's whole conversation so far, the way a platform's custom LLM does.
Three runs, one after the other:

- upstream: the same conversations straight to the fake upstream (no Backline);
- backline, memory + knowledge on: ``POST /v1/agents/{id}/chat/completions`` with VAPI's call
  object and a caller number (memory lookup at call open), a knowledge retrieval on every turn
  (the agent has an ingested knowledge source);
- backline, memory + knowledge off: the API restarted with
  ``BACKLINE_AGENT_KNOWLEDGE_PER_TURN=false`` and calls without a caller number.

TTFT is measured by the client: from sending the request to the first content chunk. Added
TTFT = a Backline percentile minus the upstream percentile.

    python -m bench.custom_llm_latency                      # Postgres, ~4 min
    python -m bench.custom_llm_latency --duration 15 --calls 20
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

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
    parse_env,
    say,
    summarize_ms,
    table,
    wait_quiet,
    write_json,
)
from cli.launch import port_open

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
SYSTEM = (
    "You are Acme Home Services' phone agent. Our office is open Monday to Friday, 8am to 6pm. "
    "Drain cleaning costs $175 per drain. We service water heaters of every brand. "
    "Our technicians drive blue vans."
)
UTTERANCES = (
    "When is your office open?",
    "How much does drain cleaning cost?",
    "Do you service water heaters?",
    "What color are your vans?",
)
KNOWLEDGE = (
    "# Services\n\nDrain cleaning costs $175 per drain.\n\n"
    "Water heater flush: $149, about one hour.\n\n"
    "We cover Springfield and Shelbyville, Monday to Friday.\n"
)
SHARED_MODEL_DIR = Path("/tmp/backline-models")


@dataclass
class Run:
    name: str
    ttft_s: list[float] = field(default_factory=list)
    total_s: list[float] = field(default_factory=list)
    errors: int = 0
    late_s: list[float] = field(default_factory=list)  # how late turns started (client lag)


class FakeUpstream:
    """``python -m fakes.llm`` in its own process group."""

    def __init__(self, ttft_ms: float, token_delay_ms: float) -> None:
        self.port = free_port()
        self.args = [
            PYTHON,
            "-m",
            "fakes.llm",
            "--port",
            str(self.port),
            "--ttft-ms",
            str(ttft_ms),
            "--token-delay-ms",
            str(token_delay_ms),
        ]
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> FakeUpstream:
        self.proc = subprocess.Popen(
            self.args,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while not port_open("127.0.0.1", self.port):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("the fake upstream did not start")
            time.sleep(0.05)
        say(f"fake upstream {self.base_url} (pid {self.proc.pid})")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)


async def one_turn(
    http: httpx.AsyncClient, url: str, headers: dict[str, str], body: dict[str, Any], run: Run
) -> str:
    """Send one streamed turn; record TTFT and total; return the answer's text."""
    started = time.monotonic()
    first: float | None = None
    text: list[str] = []
    try:
        async with http.stream("POST", url, json=body, headers=headers) as r:
            if r.status_code != 200:
                await r.aread()
                run.errors += 1
                return ""
            async for line in r.aiter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                chunk = json.loads(line[6:])
                for choice in chunk.get("choices") or ():
                    piece = (choice.get("delta") or {}).get("content")
                    if piece:
                        if first is None:
                            first = time.monotonic() - started
                        text.append(piece)
    except (httpx.HTTPError, ValueError):
        run.errors += 1
        return ""
    if first is None:
        run.errors += 1
        return ""
    run.ttft_s.append(first)
    run.total_s.append(time.monotonic() - started)
    return "".join(text)


async def load(
    args: argparse.Namespace,
    run: Run,
    url: str,
    headers: dict[str, str],
    call_extra: Any,
    system: bool,
) -> Run:
    """``args.calls`` calls, each one streamed turn every ``args.interval`` s, open loop."""
    limits = httpx.Limits(max_connections=args.calls * 2, max_keepalive_connections=args.calls)
    async with httpx.AsyncClient(timeout=30, limits=limits) as http:
        start = time.monotonic() + 0.5
        end = start + args.duration

        async def call(i: int) -> None:
            call_id = f"bench-{uuid.uuid4().hex[:12]}"
            messages: list[dict[str, Any]] = []
            if system:
                messages.append({"role": "system", "content": SYSTEM})
            offset = args.interval * i / args.calls  # spread the calls over one interval
            turn = 0
            while True:
                at = start + offset + turn * args.interval
                if at >= end:
                    break
                await asyncio.sleep(max(0.0, at - time.monotonic()))
                run.late_s.append(max(0.0, time.monotonic() - at))
                messages.append({"role": "user", "content": UTTERANCES[turn % len(UTTERANCES)]})
                body: dict[str, Any] = {
                    "model": "fake-agent-model",
                    "messages": list(messages),
                    "stream": True,
                }
                extra = call_extra(call_id, i)
                if extra:
                    body.update(extra)
                answer = await one_turn(http, url, headers, body, run)
                messages.append({"role": "assistant", "content": answer or "Okay."})
                turn += 1

        await asyncio.gather(*(call(i) for i in range(args.calls)))
    return run


async def warm_up(url: str, headers: dict[str, str], extra: Any, turns: int = 5) -> None:
    """A few turns before measuring: the API's first requests build the runtime, the chat
    model's connection pool and the agent's tool list."""
    async with httpx.AsyncClient(timeout=30) as http:
        for i in range(turns):
            body: dict[str, Any] = {
                "model": "fake-agent-model",
                "messages": [{"role": "user", "content": UTTERANCES[i % len(UTTERANCES)]}],
                "stream": True,
                **(extra(f"warm-{uuid.uuid4().hex[:8]}", i) or {}),
            }
            await one_turn(http, url, headers, body, Run("warm-up"))


def release(api: str, agent_id: str) -> None:
    with httpx.Client(base_url=api, timeout=30) as http:
        r = http.post(
            f"/v1/agents/{agent_id}/prompts/versions",
            json={"template": SYSTEM, "message": "bench"},
            headers=ADMIN,
        )
        r.raise_for_status()
        r = http.put(
            f"/v1/agents/{agent_id}/prompts/labels/production",
            json={"version": r.json()["version"], "reason": "bench"},
            headers=ADMIN,
        )
        r.raise_for_status()


def add_knowledge(api: str, agent_id: str, timeout_s: float = 180) -> int:
    """A text source, ingested by the worker's refresh workflow; its chunk count."""
    with httpx.Client(base_url=api, timeout=30) as http:
        r = http.post(
            f"/v1/agents/{agent_id}/knowledge/sources",
            json={"kind": "text", "name": "services", "text": KNOWLEDGE},
            headers=ADMIN,
        )
        r.raise_for_status()
        source_id = r.json()["source"]["id"]
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            source = http.get(f"/v1/knowledge/sources/{source_id}", headers=ADMIN).json()
            if source.get("chunk_count") and not source.get("index_pending"):
                return int(source["chunk_count"])
            time.sleep(1)
    raise RuntimeError("the knowledge source was not ingested in time")


def restart_api(stack: Stack, env: dict[str, str]) -> None:
    stack.kill("api", signal.SIGTERM)
    stack.extra_env.update(env)
    stack.respawn("api")
    stack._wait_ready()


def report(args: argparse.Namespace, runs: list[Run]) -> tuple[str, dict[str, Any]]:
    base = summarize_ms(runs[0].ttft_s) if runs[0].ttft_s else {}
    rows = []
    data: dict[str, Any] = {}
    for run in runs:
        ttft = summarize_ms(run.ttft_s) if run.ttft_s else {}
        total = summarize_ms(run.total_s) if run.total_s else {}
        added = {k: ttft[k] - base[k] for k in ("p50", "p95") if k in ttft and k in base}
        late = summarize_ms(run.late_s) if run.late_s else {}
        data[run.name] = {
            "turns": len(run.ttft_s),
            "errors": run.errors,
            "ttft_ms": ttft,
            "total_ms": total,
            "added_ttft_ms": added,
            "client_lag_ms": late,
        }
        rows.append(
            [
                run.name,
                str(len(run.ttft_s)),
                str(run.errors),
                fmt_ms(ttft.get("p50", float("nan"))),
                fmt_ms(ttft.get("p95", float("nan"))),
                fmt_ms(added["p50"]) if "p50" in added and run is not runs[0] else "-",
                fmt_ms(added["p95"]) if "p95" in added and run is not runs[0] else "-",
                fmt_ms(late.get("p95", float("nan"))),
            ]
        )
    text = (
        f"{args.calls} calls, one streamed turn every {args.interval:g} s for "
        f"{args.duration:g} s; upstream TTFT {args.ttft_ms:g} ms, "
        f"{args.token_delay_ms:g} ms between words\n"
        + table(
            [
                "run",
                "turns",
                "errors",
                "TTFT p50",
                "TTFT p95",
                "added p50",
                "added p95",
                "client lag p95",
            ],
            rows,
        )
    )
    return text, data


async def measure(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    extra_env = parse_env(args.env)
    if SHARED_MODEL_DIR.is_dir():
        extra_env.setdefault("BACKLINE_MODEL_DIR", str(SHARED_MODEL_DIR))
    with FakeUpstream(args.ttft_ms, args.token_delay_ms) as upstream:
        extra_env.update(
            {
                "BACKLINE_LLM_BASE_URL": upstream.base_url,
                "BACKLINE_LLM_MODEL": "fake-agent-model",
                "BACKLINE_AGENT_KNOWLEDGE_PER_TURN": "true",
            }
        )
        with Stack(
            sqlite=args.sqlite,
            label="custom-llm",
            keep=args.keep,
            extra_env=extra_env,
            profile=args.profile,
        ) as stack:
            tenant = stack.create_tenant()
            release(stack.api_url, tenant.agent_id)
            chunks = await asyncio.to_thread(add_knowledge, stack.api_url, tenant.agent_id)
            say(f"knowledge source ingested ({chunks} chunks)")
            await asyncio.sleep(2)  # the API's prompt cache polls every second
            say(wait_quiet(args.quiet_wait))
            headers = {"Authorization": f"Bearer {tenant.vapi_token}"}
            url = f"{stack.api_url}/v1/agents/{tenant.agent_id}/chat/completions"

            def with_number(call_id: str, i: int) -> dict[str, Any]:
                number = f"+1415555{i:04d}"
                return {"call": {"id": call_id, "customer": {"number": number}}}

            def without_number(call_id: str, i: int) -> dict[str, Any]:
                return {"call": {"id": call_id}}

            runs = []
            say("run: upstream alone")
            runs.append(
                await load(
                    args,
                    Run("upstream alone"),
                    f"{upstream.base_url}/chat/completions",
                    {},
                    lambda _c, _i: None,
                    system=True,
                )
            )
            await warm_up(url, headers, with_number)
            say("run: backline, memory + knowledge on")
            runs.append(
                await load(
                    args, Run("backline, memory+knowledge on"), url, headers, with_number, False
                )
            )
            await asyncio.to_thread(
                restart_api, stack, {"BACKLINE_AGENT_KNOWLEDGE_PER_TURN": "false"}
            )
            await warm_up(url, headers, without_number)
            say("run: backline, memory + knowledge off")
            runs.append(
                await load(
                    args,
                    Run("backline, memory+knowledge off"),
                    url,
                    headers,
                    without_number,
                    False,
                )
            )
    return report(args, runs)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.custom_llm_latency",
        description="Time to first token Backline's custom-LLM endpoint adds over the upstream.",
    )
    p.add_argument("--calls", type=int, default=50, help="concurrent calls (default 50)")
    p.add_argument("--interval", type=float, default=3.0, help="seconds between a call's turns")
    p.add_argument("--duration", type=float, default=45.0, help="seconds of load per run")
    p.add_argument("--ttft-ms", type=float, default=300.0, help="the upstream's fixed TTFT")
    p.add_argument(
        "--token-delay-ms", type=float, default=15.0, help="the upstream's delay between words"
    )
    add_common_args(p)
    args = p.parse_args(argv)
    install_signal_handlers()
    text, data = asyncio.run(measure(args))
    print(text)
    write_json(args.json, {"machine": machine_info(), "args": vars(args), "results": data})
    return 0


if __name__ == "__main__":
    sys.exit(main())
