"""``backline up`` heals its stack: a killed child is restarted with a log line saying so, and
only a child that crashes again and again (a crash loop) stops everything, with exit code 1.
Real child processes; fast pauses so the whole file runs in a few seconds."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest

from cli.supervisor import RestartPolicy, Stack, watch
from tests.conftest import make_settings, wait_for

FAST = RestartPolicy(crash_limit=5, window_s=60, backoff_first_s=0.05, backoff_max_s=0.4)
SLEEPER = [sys.executable, "-c", "import time; time.sleep(120)"]
CRASHER = [sys.executable, "-c", "import sys; sys.exit(3)"]


def _stack(tmp_path: Path) -> Stack:
    return Stack(make_settings(f"sqlite:///{tmp_path / 'x.db'}", tmp_path), FAST)


def test_a_killed_child_is_restarted_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stack = _stack(tmp_path)
    worker = stack.spawn("worker", SLEEPER)
    api = stack.spawn("api", SLEEPER)
    first, api_pid = worker.proc.pid, api.proc.pid
    try:
        os.kill(first, signal.SIGKILL)

        def _restarted() -> bool:
            stack.supervise()
            return worker.proc.pid != first and worker.proc.poll() is None

        wait_for(_restarted, timeout=10, interval=0.02)
        out = capsys.readouterr().out
        assert "worker exited with code -9; restarting it in 0.05s" in out, out
        assert f"restarted worker (pid {worker.proc.pid})" in out
        assert api.proc.pid == api_pid and api.proc.poll() is None  # the others keep running
    finally:
        stack.stop()
    assert worker.proc.poll() is not None and api.proc.poll() is not None


def test_a_crash_loop_stops_the_stack_with_a_clear_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stack = _stack(tmp_path)
    healthy = stack.spawn("dashboard", SLEEPER)
    stack.spawn("api", CRASHER)
    started = time.monotonic()
    code = watch(stack, poll_s=0.02)
    out = capsys.readouterr().out
    assert code == 1
    assert "error: api crashed 5 times within 60s (last exit code 3): a crash loop" in out, out
    assert out.count("restarted api") == 4
    assert "restarting it in 0.05s" in out and "restarting it in 0.4s" in out  # backoff grows
    assert healthy.proc.poll() is not None  # everything was stopped
    assert time.monotonic() - started < 15


def test_backoff_doubles_up_to_its_ceiling() -> None:
    p = RestartPolicy(backoff_first_s=1, backoff_max_s=30)
    assert [p.backoff(n) for n in (1, 2, 3, 4, 5, 6, 7)] == [1, 2, 4, 8, 16, 30, 30]
