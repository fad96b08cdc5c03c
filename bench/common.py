"""Shared machinery for the benchmarks: a throw-away stack on loopback, CPU meters, stats, tables.

``Stack`` creates a fresh database (Postgres ``backline_bench_<random>`` on 127.0.0.1:5432, or a
SQLite file with ``sqlite=True``), migrates it, and starts the Temporal dev server, the API
(uvicorn) and a worker as child processes configured only through ``BACKLINE_*`` variables,
exactly as ``backline up`` would. Leaving the ``with`` block stops every child (by its own
process group) and drops the database.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import platform
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import httpx
import numpy as np

from cli.launch import (
    TEMPORAL_ENV,
    api_command,
    port_open,
    temporal_dev_server_command,
    wait_until,
    worker_command,
)
from core.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
PYTHON = str(VENV_BIN / "python") if (VENV_BIN / "python").exists() else sys.executable
PG_HOST = os.environ.get("BACKLINE_BENCH_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("BACKLINE_BENCH_PG_PORT", "5432"))
ADMIN_TOKEN = "test-admin-token"  # the bootstrap token fakes.common.ADMIN sends
CLK_TCK = os.sysconf("SC_CLK_TCK")

# Worker settings as shipped in cli/worker.py (reported next to throughput figures).
WORKER_CONCURRENCY = (
    "as cli/worker.py ships it: max_concurrent_activities=16 on a "
    "ThreadPoolExecutor(16); "
    "Temporal SDK 1.35 defaults otherwise (100 workflow-task slots, max 5 workflow-task and 5 "
    "activity-task pollers, sandboxed workflow runner, 1000 cached workflows); torch uses "
    "2 intra-op threads (nproc) unless OMP_NUM_THREADS is set"
)


def say(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- CPU accounting -------------------------------------------------------------------------


def proc_cpu_seconds(pid: int) -> float | None:
    """user+system CPU of one process (all its threads), from /proc/<pid>/stat."""
    try:
        data = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = data[data.rindex(")") + 2 :].split()  # fields after "pid (comm) "
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime (fields 14, 15)


def thread_cpu_seconds(pid: int) -> dict[str, tuple[int, float]]:
    """CPU per thread name (``comm``) of one process: name -> (threads, seconds)."""
    out: dict[str, tuple[int, float]] = {}
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return out
    for task in tasks:
        try:
            data = (task / "stat").read_text()
        except OSError:
            continue
        name = data[data.index("(") + 1 : data.rindex(")")]
        fields = data[data.rindex(")") + 2 :].split()
        n, cpu = out.get(name, (0, 0.0))
        out[name] = (n + 1, cpu + (int(fields[11]) + int(fields[12])) / CLK_TCK)
    return out


def self_cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def machine_cpu_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies over all CPUs from /proc/stat."""
    parts = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = parts[3] + (parts[4] if len(parts) > 4 else 0)
    total = sum(parts[:8])
    return total - idle, total


def postgres_backend_pids(db_name: str) -> list[int]:
    """Postgres backends serving our database (their process title names it)."""
    pids = []
    needle = f" {db_name} ".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if cmd.startswith(b"postgres:") and needle in cmd:
            pids.append(int(entry.name))
    return pids


class CpuMeter:
    """CPU used by named processes over a window, as % of one core (100% = one core busy)."""

    def __init__(self, pids: dict[str, int], pg_db: str | None = None) -> None:
        self.pids = pids
        self.pg_db = pg_db
        self._t0 = 0.0
        self._start: dict[str, float] = {}
        self._self0 = 0.0
        self._pg0: dict[int, float] = {}
        self._machine0 = (0, 0)
        self._threads0: dict[str, dict[str, tuple[int, float]]] = {}

    def _pg(self) -> dict[int, float]:
        if not self.pg_db:
            return {}
        out = {}
        for pid in postgres_backend_pids(self.pg_db):
            cpu = proc_cpu_seconds(pid)
            if cpu is not None:
                out[pid] = cpu
        return out

    def start(self) -> None:
        self._t0 = time.monotonic()
        self._start = {n: proc_cpu_seconds(p) or 0.0 for n, p in self.pids.items()}
        self._threads0 = {n: thread_cpu_seconds(p) for n, p in self.pids.items()}
        self._self0 = self_cpu_seconds()
        self._pg0 = self._pg()
        self._machine0 = machine_cpu_jiffies()

    def stop(self) -> dict[str, float]:
        wall = max(time.monotonic() - self._t0, 1e-9)
        out = {"load generator (bench process)": 100 * (self_cpu_seconds() - self._self0) / wall}
        threads: dict[str, float] = {}
        for name, pid in self.pids.items():
            now = proc_cpu_seconds(pid)
            if now is not None:
                out[name] = 100 * (now - self._start[name]) / wall
            before = self._threads0.get(name, {})
            for comm, (n, cpu) in thread_cpu_seconds(pid).items():
                used = 100 * (cpu - before.get(comm, (0, 0.0))[1]) / wall
                if used >= 2:
                    threads[f"  {name.removesuffix(' process')} threads '{comm}' (x{n})"] = used
        if self.pg_db:
            pg1 = self._pg()
            used = sum(v - self._pg0.get(pid, 0.0) for pid, v in pg1.items())
            out[f"postgres backends of {self.pg_db}"] = 100 * used / wall
        busy1, total1 = machine_cpu_jiffies()
        busy0, total0 = self._machine0
        ncpu = os.cpu_count() or 1
        ours = sum(out.values())
        machine = 100 * ncpu * (busy1 - busy0) / max(total1 - total0, 1)
        out["whole machine (all users)"] = machine
        out["other users (whole machine - ours)"] = max(machine - ours, 0.0)
        out.update(threads)
        return out


def cpu_rows(cpu: dict[str, float]) -> list[list[str]]:
    return [[name, f"{pct:.0f}%"] for name, pct in cpu.items()]


# -- stats and tables -------------------------------------------------------------------------


def summarize_ms(values_s: Sequence[float]) -> dict[str, float]:
    """n, p50, p95, p99, max and mean in milliseconds of latencies given in seconds."""
    if not values_s:
        return {
            "n": 0,
            "p50": float("nan"),
            "p95": float("nan"),
            "p99": float("nan"),
            "max": float("nan"),
            "mean": float("nan"),
        }
    arr = np.asarray(values_s, dtype=np.float64) * 1000.0
    p50, p95, p99 = np.percentile(arr, [50, 95, 99])
    return {
        "n": len(arr),
        "p50": float(p50),
        "p95": float(p95),
        "p99": float(p99),
        "max": float(arr.max()),
        "mean": float(arr.mean()),
    }


def fmt_ms(v: float) -> str:
    if v != v:  # NaN
        return "-"
    return f"{v:.1f}" if v < 100 else f"{v:.0f}"


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    rows = [[str(c) for c in r] for r in rows]
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)
    ]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |"
    sep = "| " + " | ".join("-" * w for w in widths) + " |"
    body = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in rows
    ]
    return "\n".join([line, sep, *body])


def met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def machine_info() -> dict[str, str]:
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem_kb = int(line.split()[1])
    load = os.getloadavg()
    return {
        "cpus": str(os.cpu_count()),
        "cpu_model": model,
        "memory_gb": f"{mem_kb / 1024 / 1024:.0f}",
        "python": platform.python_version(),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "loadavg_at_start": " ".join(f"{x:.2f}" for x in load),
    }


def write_json(path: str | None, data: dict[str, Any]) -> None:
    if path:
        Path(path).write_text(json.dumps(data, indent=2, default=str))
        say(f"results written to {path}")


def install_signal_handlers() -> None:
    """SIGTERM behaves like Ctrl-C so every ``finally`` (child shutdown, DB drop) runs."""

    def _raise(_signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _raise)


# -- the stack under test ---------------------------------------------------------------------


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path
    args: list[str] = field(default_factory=list)


class Stack:
    """Fresh DB + (optional) Temporal dev server + API + (optional) worker, all on loopback."""

    def __init__(
        self,
        *,
        sqlite: bool = False,
        temporal: bool = True,
        worker: bool = True,
        api: bool = True,
        db: bool = True,
        temporal_persist: bool = True,
        label: str = "bench",
        keep: bool = False,
        extra_env: dict[str, str] | None = None,
        profile: Iterable[str] = (),
    ) -> None:
        self.sqlite = sqlite
        self.profile = set(profile)
        self.profiles: dict[str, str] = {}
        self.want_temporal = temporal
        self.want_worker = worker
        self.want_api = api
        self.want_db = db
        self.temporal_persist = temporal_persist
        self.keep = keep
        self.extra_env = extra_env or {}
        self.workdir = Path(tempfile.mkdtemp(prefix=f"backline-{label}-"))
        self.secret_key = f"bench-secret-{secrets.token_hex(8)}"
        self.task_queue = f"bench-{uuid.uuid4().hex[:8]}"
        self.db_name: str | None = None
        self.database_url = ""
        self.temporal_port = free_port()
        self.temporal_address = f"127.0.0.1:{self.temporal_port}"
        self.api_port = free_port()
        self.api_url = f"http://127.0.0.1:{self.api_port}"
        self.children: list[Child] = []

    # lifecycle
    def __enter__(self) -> Stack:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        if self.want_db:
            self._create_db()
        if self.want_temporal:
            self._start_temporal()
        if self.want_api:
            # The keep-alive `backline up` gives the API (BACKLINE_API_KEEP_ALIVE_S or its default).
            keep_alive = Settings().api_keep_alive_s
            self._spawn(
                "api", api_command(PYTHON, "127.0.0.1", self.api_port, keep_alive_s=keep_alive)
            )
        if self.want_worker:
            self._spawn("worker", worker_command(PYTHON))
        if self.want_api:
            self._wait_ready()

    def stop(self) -> None:
        for child in reversed(self.children):
            if child.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for child in self.children:
            try:
                child.proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.proc.pid, signal.SIGKILL)
                child.proc.wait(timeout=5)
        for name in self.profile:
            path = self.workdir / f"{name}.profile.txt"
            if path.exists():
                self.profiles[name] = path.read_text()
        self.children.clear()
        self._drop_db()
        if self.keep:
            say(f"kept {self.workdir} (logs)")
        else:
            shutil.rmtree(self.workdir, ignore_errors=True)

    # parts
    def _create_db(self) -> None:
        from cli.ops import migrate

        if self.sqlite:
            self.database_url = f"sqlite:///{self.workdir / 'backline.db'}"
        else:
            import psycopg

            self.db_name = f"backline_bench_{secrets.token_hex(5)}"
            with psycopg.connect(
                f"postgresql://postgres@{PG_HOST}:{PG_PORT}/postgres", autocommit=True
            ) as admin:
                admin.execute(f'CREATE DATABASE "{self.db_name}"')
            self.database_url = f"postgresql+psycopg://postgres@{PG_HOST}:{PG_PORT}/{self.db_name}"
        say(f"database: {'SQLite file' if self.sqlite else 'Postgres ' + str(self.db_name)}")
        migrate(self.database_url)

    def _drop_db(self) -> None:
        if self.db_name is None:
            return
        import psycopg

        try:
            with psycopg.connect(
                f"postgresql://postgres@{PG_HOST}:{PG_PORT}/postgres", autocommit=True
            ) as admin:
                admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                    (self.db_name,),
                )
                admin.execute(f'DROP DATABASE IF EXISTS "{self.db_name}"')
            say(f"dropped database {self.db_name}")
        except Exception as exc:  # never mask the benchmark's own error
            say(f"could not drop database {self.db_name}: {exc}")
        self.db_name = None

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("BACKLINE_")}
        env.update(
            {
                "BACKLINE_DATABASE_URL": self.database_url,
                "BACKLINE_DATA_DIR": str(self.workdir / "data"),
                "BACKLINE_SECRET_KEY": self.secret_key,
                "BACKLINE_ADMIN_TOKEN": ADMIN_TOKEN,
                "BACKLINE_TASK_QUEUE": self.task_queue,
                # Without a Temporal server the address points at a closed port, so the API
                # never wanders onto someone else's dev server on the default port.
                "BACKLINE_TEMPORAL_ADDRESS": self.temporal_address,
                "HF_HUB_OFFLINE": "1",
                "TRANSFORMERS_OFFLINE": "1",
                "TOKENIZERS_PARALLELISM": "false",
                **TEMPORAL_ENV,
            }
        )
        env.update(self.extra_env)
        return env

    def _spawn(self, name: str, args: list[str]) -> Child:
        log = self.workdir / f"{name}.log"
        original = list(args)
        if name in self.profile and args[1:2] == ["-m"]:
            out = self.workdir / f"{name}.profile.txt"
            args = [args[0], "-m", "bench.sampled", "--out", str(out), "--", *args[1:]]
        proc = subprocess.Popen(
            args,
            cwd=ROOT,
            env=self.env(),
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        child = Child(name, proc, log, original)
        self.children.append(child)
        say(f"started {name} (pid {proc.pid})")
        return child

    def _start_temporal(self) -> None:
        self._spawn(
            "temporal",
            temporal_dev_server_command(
                self.temporal_port,
                db_file=self.workdir / "temporal.db" if self.temporal_persist else None,
            ),
        )

        def listening() -> bool:
            self._check_children()
            return port_open("127.0.0.1", self.temporal_port)

        wait_until(listening, 60, "the Temporal dev server to open its port")

    def _check_children(self) -> None:
        for c in self.children:
            code = c.proc.poll()
            if code is not None:
                raise RuntimeError(f"{c.name} exited with code {code}:\n{self.log_tail(c.name)}")

    def log_tail(self, name: str, lines: int = 30) -> str:
        for c in self.children:
            if c.name == name and c.log.exists():
                return "\n".join(c.log.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def _wait_ready(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            self._check_children()
            try:
                body = httpx.get(f"{self.api_url}/healthz", timeout=2).json()
                last = body
                ok = body.get("db") == "ok"
                if self.want_temporal:
                    ok = ok and body.get("temporal") == "ok"
                if self.want_worker:
                    ok = ok and body.get("worker") == "ok"
                if ok:
                    say("stack ready")
                    return
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.5)
        raise RuntimeError(f"stack not ready within {timeout:.0f}s; last /healthz: {last}")

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to a child's process group and wait until it has exited."""
        for c in self.children:
            if c.name == name and c.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(c.proc.pid, sig)
                c.proc.wait(timeout=30)

    def respawn(self, name: str) -> Child:
        """Start a child again with the arguments it was first started with."""
        old = next(c for c in self.children if c.name == name)
        if old.proc.poll() is None:
            raise RuntimeError(f"{name} is still running")
        self.children.remove(old)
        child = self._spawn(name, old.args)
        if name == "temporal":
            wait_until(
                lambda: port_open("127.0.0.1", self.temporal_port),
                60,
                "the restarted Temporal dev server to open its port",
            )
        return child

    def pid(self, name: str) -> int:
        for c in self.children:
            if c.name == name:
                return c.proc.pid
        raise KeyError(name)

    async def temporal_client(self) -> Any:
        """A client with the stack's payload codec (the keys the API and worker derive)."""
        from orchestration.codec import connect_temporal

        keys = self.extra_env.get("BACKLINE_TEMPORAL_CODEC_KEYS")
        return await connect_temporal(
            Settings(
                secret_key=self.secret_key,
                temporal_address=self.temporal_address,
                temporal_codec_keys=keys,
            )
        )

    def cpu_meter(self) -> CpuMeter:
        pids = {f"{c.name} process": c.proc.pid for c in self.children}
        return CpuMeter(pids, self.db_name)

    def create_tenant(self) -> Any:
        from fakes.vapi import create_tenant

        with httpx.Client(base_url=self.api_url, timeout=30) as http:
            return create_tenant(http)

    def engine(self) -> Any:
        from core.db import make_engine

        return make_engine(self.database_url)


def wait_for_apis(stack: Stack, urls: Sequence[str], timeout: float = 240) -> None:
    """Wait until every API process in ``urls`` answers /healthz with its database ok."""
    deadline = time.monotonic() + timeout
    for url in urls:
        while True:
            stack._check_children()
            with contextlib.suppress(httpx.HTTPError, ValueError):
                if httpx.get(f"{url}/healthz", timeout=2).json().get("db") == "ok":
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not become ready")
            time.sleep(0.3)


# -- Temporal history: where the post-call time goes ------------------------------------------


async def workflow_breakdown(
    client: Any, workflow_ids: Sequence[str], send_wall: dict[str, float] | None = None
) -> dict[str, Any]:
    """Per step of PostCallWorkflow, queue wait (scheduled->started) and run time
    (started->closed) from the workflow histories, in ms; also total workflow time."""
    from temporalio.api.enums.v1 import EventType as E

    waits: dict[str, list[float]] = {}
    totals: list[float] = []

    def ts(ev: Any) -> float:
        return float(ev.event_time.seconds + ev.event_time.nanos / 1e9)

    for wid in workflow_ids:
        history = await client.get_workflow_handle(wid).fetch_history()
        sched: dict[int, tuple[str, float]] = {}
        started: dict[int, float] = {}
        wf_start = wf_end = None
        for ev in history.events:
            t = ts(ev)
            et = ev.event_type
            if et == E.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
                wf_start = t
            elif et in (
                E.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
                E.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
            ):
                wf_end = t
            elif et == E.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                name = ev.activity_task_scheduled_event_attributes.activity_type.name
                sched[ev.event_id] = (name.removeprefix("post_call."), t)
            elif et == E.EVENT_TYPE_ACTIVITY_TASK_STARTED:
                started[ev.activity_task_started_event_attributes.scheduled_event_id] = t
            elif et in (E.EVENT_TYPE_ACTIVITY_TASK_COMPLETED, E.EVENT_TYPE_ACTIVITY_TASK_FAILED):
                attrs = (
                    ev.activity_task_completed_event_attributes
                    if et == E.EVENT_TYPE_ACTIVITY_TASK_COMPLETED
                    else ev.activity_task_failed_event_attributes
                )
                sid = attrs.scheduled_event_id
                if sid in sched and sid in started:
                    name, t_s = sched[sid]
                    waits.setdefault(f"{name}: queue wait", []).append(started[sid] - t_s)
                    waits.setdefault(f"{name}: run", []).append(t - started[sid])
            elif et == E.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED:
                sched[ev.event_id] = ("workflow task", t)
            elif et == E.EVENT_TYPE_WORKFLOW_TASK_STARTED:
                started[ev.workflow_task_started_event_attributes.scheduled_event_id] = t
            elif et == E.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
                sid = ev.workflow_task_completed_event_attributes.scheduled_event_id
                if sid in sched and sid in started:
                    waits.setdefault("workflow tasks: queue wait", []).append(
                        started[sid] - sched[sid][1]
                    )
                    waits.setdefault("workflow tasks: run", []).append(t - started[sid])
        if wf_start is not None and wf_end is not None:
            totals.append(wf_end - wf_start)
        if wf_start is not None and send_wall and wid in send_wall:
            waits.setdefault("webhook sent -> workflow started", []).append(
                wf_start - send_wall[wid]
            )
    n = max(len(workflow_ids), 1)
    out: dict[str, Any] = {"workflows": len(workflow_ids)}
    rows = {}
    for key, vals in waits.items():
        per_run = sum(vals) / n  # mean per workflow run (a step may occur several times)
        rows[key] = {"mean_per_run_ms": per_run * 1000, **summarize_ms(vals)}
    out["steps"] = rows
    out["total"] = summarize_ms(totals)
    return out


def breakdown_table(bd: dict[str, Any]) -> str:
    rows = [
        [k, fmt_ms(v["mean_per_run_ms"]), fmt_ms(v["p50"]), fmt_ms(v["p95"]), v["n"]]
        for k, v in bd["steps"].items()
    ]
    t = bd["total"]
    rows.append(
        [
            "whole workflow (start -> completed)",
            fmt_ms(t["mean"]),
            fmt_ms(t["p50"]),
            fmt_ms(t["p95"]),
            t["n"],
        ]
    )
    note = (
        f"Steps of {bd['workflows']} sampled workflows: 'mean/run' adds up every occurrence in one "
        "run (a run has about 7 workflow tasks); p50/p95 are per occurrence."
    )
    head = ["step (from Temporal history)", "mean/run ms", "p50 ms", "p95 ms", "n"]
    return note + "\n\n" + table(head, rows)


def parse_env(items: Sequence[str]) -> dict[str, str]:
    """``KEY=VALUE`` pairs from repeated ``--env`` options (experiments, e.g. OMP_NUM_THREADS=1)."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"--env expects KEY=VALUE, got {item!r}")
        out[key] = value
    return out


def wait_quiet(max_wait: float, threshold: float = 50.0) -> str:
    """Wait (up to ``max_wait`` s) until the machine's busy CPU, sampled over 2 s, is below
    ``threshold`` % of one core; other people's test runs share these cores. Returns a note."""
    if max_wait <= 0:
        return "did not wait for a quiet machine"
    t0 = time.monotonic()
    ncpu = os.cpu_count() or 1
    level = 0.0
    while True:
        b0, tot0 = machine_cpu_jiffies()
        time.sleep(2)
        b1, tot1 = machine_cpu_jiffies()
        level = 100 * ncpu * (b1 - b0) / max(tot1 - tot0, 1)
        waited = time.monotonic() - t0
        if level < threshold:
            return f"machine busy {level:.0f}% of one core before start (waited {waited:.0f}s)"
        if waited >= max_wait:
            say(f"machine still busy ({level:.0f}% of one core); starting anyway")
            return f"machine still busy {level:.0f}% of one core after waiting {waited:.0f}s"


def add_common_args(p: Any) -> None:
    p.add_argument("--sqlite", action="store_true", help="embedded mode: SQLite file DB")
    p.add_argument("--json", help="also write results to this JSON file")
    p.add_argument("--keep", action="store_true", help="keep the temp dir with child logs")
    p.add_argument(
        "--env",
        action="append",
        default=[],
        help="KEY=VALUE added to the children's environment (experiments, e.g. OMP_NUM_THREADS=1)",
    )
    p.add_argument(
        "--profile",
        action="append",
        default=[],
        choices=["api", "worker"],
        help="run that child under bench.sampled and print where its Python threads spend time",
    )
    p.add_argument(
        "--quiet-wait",
        type=float,
        default=30.0,
        help="wait up to this many seconds for other users' CPU load to drop before measuring",
    )
