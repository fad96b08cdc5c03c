"""Resident memory of the whole embedded stack that `make run` starts, after every model loaded.

Starts `backline up` (the Temporal dev server, migrations, the demo agent and its three demo
calls, a worker, the API, the dashboard) in a temporary data dir on free ports, waits until the
demo calls' memories are searchable through the VAPI `memory_search` tool (so the worker has
embedded them and the API has embedded a query: both MiniLM encoders are loaded), asks one
knowledge question, then reads RSS and PSS of every process in the tree from /proc. PSS splits
pages shared between processes (the same shared libraries in the API and the worker) fairly,
so the PSS total is what the stack really costs the machine; the RSS total counts them twice.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.common import free_port, machine_info, say, table, write_json

TOOL_CALL = {
    "message": {
        "type": "tool-calls",
        "call": {"id": "stack-memory-1", "customer": {"number": "+14155550100"}},
        "toolCallList": [
            {
                "id": "tc-1",
                "type": "function",
                "function": {"name": "memory_search", "arguments": {"query": "water heater"}},
            }
        ],
    }
}
HEADERS = {"Authorization": "Bearer demo-vapi-token"}


def _children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return out


def _tree(root: int) -> list[int]:
    pids, todo = [], [root]
    while todo:
        pid = todo.pop()
        pids.append(pid)
        todo += _children(pid)
    return pids


def _name(pid: int) -> str:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "?"
    words = [a.decode(errors="replace") for a in argv if a]
    for marker, label in (
        ("cli.worker", "worker"),
        ("uvicorn", "api"),
        ("streamlit", "dashboard"),
    ):
        if marker in words:
            return label
    if words and Path(words[0]).name == "temporal":
        return "temporal dev server"
    if words and words[-1] == "up":
        return "backline up (supervisor)"
    return " ".join([Path(words[0]).name, *words[1:3]])[:60] if words else "?"


def _memory_kb(pid: int) -> tuple[int, int]:
    rss = pss = 0
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Rss:"):
                rss = int(line.split()[1])
            elif line.startswith("Pss:"):
                pss = int(line.split()[1])
    except OSError:
        pass
    return rss, pss


def _wait_for_memory(api: str, deadline_s: float) -> str:
    """Poll the tool call until it answers from the demo caller's memory; its result text."""
    end = time.monotonic() + deadline_s
    last = ""
    with httpx.Client(timeout=30) as http:
        while time.monotonic() < end:
            try:
                r = http.post(f"{api}/v1/webhooks/vapi/demo", json=TOOL_CALL, headers=HEADERS)
                last = r.text
                if r.status_code == 200 and "order 1042" in r.text:
                    return last
            except httpx.HTTPError as exc:
                last = str(exc)
            time.sleep(2)
    raise SystemExit(f"the demo caller's memory never became searchable: {last[:300]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="also write results to this JSON file")
    parser.add_argument("--keep", action="store_true", help="keep the temporary data dir")
    parser.add_argument("--timeout", type=float, default=300, help="seconds to wait for the stack")
    args = parser.parse_args()

    data = Path(tempfile.mkdtemp(prefix="backline-stack-"))
    ports = {k: free_port() for k in ("api", "dashboard", "temporal", "temporal_ui")}
    api = f"http://127.0.0.1:{ports['api']}"
    env = {
        **os.environ,
        "BACKLINE_DATA_DIR": str(data),
        "BACKLINE_API_PORT": str(ports["api"]),
        "BACKLINE_DASHBOARD_PORT": str(ports["dashboard"]),
        "BACKLINE_TEMPORAL_PORT": str(ports["temporal"]),
        "BACKLINE_TEMPORAL_UI_PORT": str(ports["temporal_ui"]),
        "BACKLINE_API_URL": api,
        "BACKLINE_PUBLIC_URL": api,
    }
    cmd = [str(Path(sys.executable).parent / "backline"), "up"]
    say(f"starting backline up in {data} (API {api})")
    log = (data / "up.log").open("wb")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    began = time.monotonic()
    try:
        say("waiting for the demo calls' memories (worker and API encoders loaded)")
        _wait_for_memory(api, args.timeout)
        with httpx.Client(timeout=30) as http:
            r = http.post(
                f"{api}/v1/knowledge/search",
                json={"agent_id": "demo", "query": "what are your opening hours"},
                headers={"Authorization": "Bearer dev-admin-token"},
            )
            say(f"knowledge search answered {r.status_code}")
        time.sleep(3)
        rows: list[dict[str, Any]] = []
        for pid in _tree(proc.pid):
            rss, pss = _memory_kb(pid)
            if rss:
                rows.append(
                    {"pid": pid, "process": _name(pid), "rss_mb": rss / 1024, "pss_mb": pss / 1024}
                )
        rows.sort(key=lambda r: -r["pss_mb"])
        total_rss = sum(r["rss_mb"] for r in rows)
        total_pss = sum(r["pss_mb"] for r in rows)
        print(
            table(
                ["process", "pid", "RSS MB", "PSS MB"],
                [[r["process"], r["pid"], f"{r['rss_mb']:.0f}", f"{r['pss_mb']:.0f}"] for r in rows]
                + [["total", "", f"{total_rss:.0f}", f"{total_pss:.0f}"]],
            )
        )
        info = machine_info()
        print(f"\nready after {time.monotonic() - began:.0f} s; machine: {info}")
        write_json(
            args.json,
            {
                "processes": rows,
                "total_rss_mb": total_rss,
                "total_pss_mb": total_pss,
                "machine": info,
            },
        )
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        if args.keep:
            say(f"kept {data}")
        else:
            shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
