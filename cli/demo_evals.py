"""``backline up``: the demo's scripted agent model and its eval suite.

Without an LLM configured, the demo agent still needs a chat model to answer eval cases (and
the custom-LLM and Retell LLM endpoints): :func:`scripted_model_command` is ``python -m
fakes.llm`` on a free loopback port, the local scripted model whose answers follow from what it
is sent (docs/llm.md). :func:`start_demo_eval_run` then registers ``examples/evals/demo`` for
agent ``demo`` and starts one run of it, in a background thread and best effort, so the Evals
page has data; it never blocks or fails startup.
"""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import httpx

from evals.files import SuiteError

ROOT = Path(__file__).resolve().parent.parent
DEMO_SUITE = ROOT / "examples" / "evals" / "demo"
SCRIPTED_MODEL_NOTE = (
    "no LLM configured: the demo uses the local scripted model (fakes.llm); "
    "set BACKLINE_LLM_BASE_URL for a real one"
)


def _say(msg: str) -> None:
    print(f"backline: {msg}", flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def scripted_model_command(python: str, port: int) -> list[str]:
    return [python, "-m", "fakes.llm", "--host", "127.0.0.1", "--port", str(port)]


def scripted_model_env(port: int) -> dict[str, str]:
    """What the API and the worker are started with: the scripted model as their LLM, and
    post-call analysis kept on the non-LLM path (the scripted model does not answer in the
    analysis schema)."""
    return {
        "BACKLINE_LLM_BASE_URL": f"http://127.0.0.1:{port}/v1",
        "BACKLINE_LLM_ANALYSIS": "false",
    }


def suite_files(folder: Path = DEMO_SUITE) -> dict[str, str]:
    from evals.scenarios import load_suite

    load_suite(folder)  # raises SuiteError listing every problem
    return {
        p.relative_to(folder).as_posix(): p.read_text(encoding="utf-8")
        for p in sorted(folder.rglob("*.yaml"))
    }


def register_and_run(api_url: str, token: str, agent_id: str, timeout_s: float = 30) -> str:
    """PUT the demo suite for ``agent_id`` and start one run of it; the run's id."""
    files = suite_files()
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=api_url, headers=headers, timeout=timeout_s) as http:
        pushed = http.put(f"/v1/agents/{agent_id}/evals/suite", json={"files": files})
        pushed.raise_for_status()
        started = http.post(f"/v1/agents/{agent_id}/evals/runs", json={"files": files})
        started.raise_for_status()
        return str(started.json()["id"])


def _run_quietly(api_url: str, token: str, agent_id: str) -> None:
    try:
        run_id = register_and_run(api_url, token, agent_id)
    except (httpx.HTTPError, SuiteError, OSError, KeyError, ValueError) as exc:
        _say(f"the demo eval run was not started: {exc!r}")
        return
    _say(f"demo eval suite registered; run {run_id} started (see `backline eval show {run_id}`)")


def start_demo_eval_run(api_url: str, token: str, agent_id: str) -> threading.Thread | None:
    """Register the demo suite and start a run in a daemon thread; None without the suite."""
    if not DEMO_SUITE.exists():
        return None
    thread = threading.Thread(
        target=_run_quietly, args=(api_url, token, agent_id), name="demo-evals", daemon=True
    )
    thread.start()
    return thread
