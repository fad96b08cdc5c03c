"""Label move -> served by every API process: how long until all of them serve the new version.

Starts ``--processes`` API processes (uvicorn, free ports) against one fresh Postgres database,
pushes two prompt versions, then moves ``production`` back and forth ``--moves`` times. After
each move one thread per process sends VAPI assistant requests to its process (a poll every
``--poll-ms``) until the reply carries the new version. Latency is measured from *before* the
label-move request is sent (so it includes the move's own round trip) to the first reply with
the new version; "served by all" is the slowest process for that move. Target: <= 1 s.

Run: ``.venv/bin/python -m bench.prompt_propagation [--write-readme]``.
"""

from __future__ import annotations

import argparse
import random
import threading
import time

import httpx

from bench.common import (
    PYTHON,
    Stack,
    fmt_ms,
    free_port,
    machine_info,
    met,
    say,
    summarize_ms,
    table,
    wait_for_apis,
)
from bench.prompt_readme import write_subsection
from fakes.common import ADMIN, raw
from fakes.vapi import Tenant, assistant_request, create_tenant

MODEL = {"provider": "openai", "model": "gpt-4o-mini"}
CALLER = "+14155550142"


def _spawn_apis(stack: Stack, n: int) -> list[str]:
    urls = []
    for i in range(n):
        port = free_port()
        stack._spawn(
            f"api{i}",
            [
                PYTHON, "-m", "uvicorn", "api.main:create_app", "--factory",
                "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
            ],
        )  # fmt: skip
        urls.append(f"http://127.0.0.1:{port}")
    wait_for_apis(stack, urls)
    say(f"{n} API processes ready")
    return urls


def _served_version(http: httpx.Client, tenant: Tenant) -> str | None:
    r = http.post(
        tenant.webhook, content=raw(assistant_request(CALLER)), headers=tenant.vapi_headers
    )
    r.raise_for_status()
    version: str | None = r.json()["assistantOverrides"]["variableValues"].get(
        "backline_prompt_version"
    )
    return version


def _setup(url: str) -> tuple[Tenant, dict[str, str]]:
    with httpx.Client(base_url=url, timeout=30) as http:
        tenant = create_tenant(http)
        r = http.post(
            f"/v1/orgs/{tenant.org_id}/keys", json={"name": "bench", "scopes": ["release"]},
            headers=ADMIN,
        )  # fmt: skip
        r.raise_for_status()
        release = {"Authorization": f"Bearer {r.json()['token']}"}
        for n in (1, 2):
            http.post(
                f"/v1/agents/{tenant.agent_id}/prompts/versions",
                json={
                    "template": f"Prompt v{n}: {{{{backline.caller_known}}}}",
                    "model": MODEL,
                    "message": f"v{n}",
                },
                headers=release,
            ).raise_for_status()
        http.put(
            f"/v1/agents/{tenant.agent_id}/prompts/labels/production",
            json={"version": 1, "reason": "bench start"},
            headers=release,
        ).raise_for_status()
    return tenant, release


def _measure_move(
    urls: list[str], tenant: Tenant, release: dict[str, str], target: int, poll_s: float
) -> tuple[list[float], float]:
    """Per-process latencies (s) for one move, and the move request's own round trip."""
    want = f"v{target}"
    seen: list[float | None] = [None] * len(urls)
    go = threading.Event()
    t0 = 0.0

    def poll(i: int, url: str) -> None:
        with httpx.Client(base_url=url, timeout=10) as http:
            go.wait()
            while time.perf_counter() - t0 < 10:
                if _served_version(http, tenant) == want:
                    seen[i] = time.perf_counter() - t0
                    return
                time.sleep(poll_s)

    threads = [threading.Thread(target=poll, args=(i, u)) for i, u in enumerate(urls)]
    for t in threads:
        t.start()
    with httpx.Client(base_url=urls[0], timeout=10) as http:
        t0 = time.perf_counter()
        go.set()
        http.put(
            f"/v1/agents/{tenant.agent_id}/prompts/labels/production",
            json={"version": target, "reason": "bench move"},
            headers=release,
        ).raise_for_status()
        move_rtt = time.perf_counter() - t0
    for t in threads:
        t.join()
    if any(s is None for s in seen):
        raise RuntimeError(f"a process never served {want} within 10 s: {seen}")
    return [float(s) for s in seen if s is not None], move_rtt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--moves", type=int, default=40)
    parser.add_argument("--poll-ms", type=float, default=5.0)
    parser.add_argument("--write-readme", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the work dir (logs)")
    args = parser.parse_args()

    with Stack(
        temporal=False, worker=False, api=False, label="prompt-prop", keep=args.keep
    ) as stack:
        urls = _spawn_apis(stack, args.processes)
        tenant, release = _setup(urls[0])
        # Every process serves v1 before the first measured move.
        for url in urls:
            with httpx.Client(base_url=url, timeout=10) as http:
                deadline = time.monotonic() + 10
                while _served_version(http, tenant) != "v1":
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"{url} never served v1")
                    time.sleep(0.05)
        rng = random.Random(7)
        all_by_move: list[float] = []
        per_process: list[list[float]] = [[] for _ in urls]
        rtts: list[float] = []
        target = 2
        for i in range(args.moves):
            latencies, rtt = _measure_move(urls, tenant, release, target, args.poll_ms / 1000)
            all_by_move.append(max(latencies))
            rtts.append(rtt)
            for p, lat in enumerate(latencies):
                per_process[p].append(lat)
            target = 1 if target == 2 else 2
            # Decorrelate moves from the processes' poll phase.
            time.sleep(rng.uniform(0.2, 0.6))
            if (i + 1) % 10 == 0:
                say(f"{i + 1}/{args.moves} moves")

    worst = summarize_ms(all_by_move)
    rows = [
        ["served by all processes", worst["n"], fmt_ms(worst["p50"]), fmt_ms(worst["p95"]),
         fmt_ms(worst["max"]), f"<= 1000 ms: {met(worst['max'] <= 1000)}"],
    ]  # fmt: skip
    for p, values in enumerate(per_process):
        s = summarize_ms(values)
        rows.append(
            [
                f"API process {p + 1}",
                s["n"],
                fmt_ms(s["p50"]),
                fmt_ms(s["p95"]),
                fmt_ms(s["max"]),
                "",
            ]
        )
    rtt = summarize_ms(rtts)
    rows.append(
        ["(the label-move request itself)", rtt["n"], fmt_ms(rtt["p50"]), fmt_ms(rtt["p95"]),
         fmt_ms(rtt["max"]), ""]
    )  # fmt: skip
    info = machine_info()
    body = f"""`bench/prompt_propagation.py`: {args.processes} API processes (uvicorn) on one
Postgres database; {args.moves} moves of `production` between two versions; per process a
thread sends VAPI assistant requests every {args.poll_ms:g} ms until the new version is served.
Latency runs from just before the move request is sent to the first reply with the new
version. Each process polls the single-row change marker every 200 ms and reloads its
in-process cache only when it moved; the request path never reads prompts from the database.

{table(["label move -> served", "moves", "p50 ms", "p95 ms", "max ms", "target"], rows)}

{info["cpus"]} x {info["cpu_model"]}, {info["memory_gb"]} GB, {info["date"]}, load at start
{info["loadavg_at_start"]}.
"""
    print(body)
    if args.write_readme:
        write_subsection("Label-move propagation (bench/prompt_propagation.py)", body)
        say("bench/README.md updated (Prompt rollouts section)")


if __name__ == "__main__":
    main()
