"""What ``backline up`` adds for the demo's evals (cli/demo_evals.py): the local scripted model
it starts when no LLM is configured answers OpenAI's wire format, and the demo suite is
registered and a run of it started through the real API, best effort."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import httpx
import pytest

from cli.demo_evals import (
    DEMO_SUITE,
    register_and_run,
    scripted_model_command,
    scripted_model_env,
    start_demo_eval_run,
    suite_files,
)
from cli.launch import port_open, wait_until
from evals.runner import Ports
from evals.scenarios import load_suite
from tests.conftest import Stack, free_port
from tests.e2e.test_evals_api import wait_done
from tests.eval_helpers import Reply, ScriptedRuntime
from tests.helpers import ADMIN, create_tenant

pytestmark = [pytest.mark.postgres, pytest.mark.temporal]


def test_the_scripted_model_answers_as_the_children_are_told() -> None:
    port = free_port()
    env = scripted_model_env(port)
    assert env["BACKLINE_LLM_BASE_URL"] == f"http://127.0.0.1:{port}/v1"
    assert env["BACKLINE_LLM_ANALYSIS"] == "false"
    proc = subprocess.Popen(
        scripted_model_command(sys.executable, port),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_until(lambda: port_open("127.0.0.1", port), 30, "the scripted model")
        r = httpx.post(
            f"{env['BACKLINE_LLM_BASE_URL']}/chat/completions",
            json={
                "model": "demo",
                "messages": [
                    {"role": "system", "content": "Our office is open Monday to Friday."},
                    {"role": "user", "content": "When is your office open?"},
                ],
            },
            timeout=10,
        )
        assert r.status_code == 200, r.text
        assert "Monday to Friday" in r.json()["choices"][0]["message"]["content"]
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)


def test_the_demo_suite_is_registered_and_a_run_started(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    state = stack.api._app_state()
    state.eval_ports = lambda agent: Ports(ScriptedRuntime(default=Reply("Sorry, no.")))
    files = suite_files()
    assert "suite.yaml" in files and len(files) == len(list(DEMO_SUITE.rglob("*.yaml")))
    with stack.http() as http:
        agent_id = create_tenant(http).agent_id
        run_id = register_and_run(stack.api.url, "test-admin-token", agent_id)
        run = wait_done(http, run_id, ADMIN)
        assert run["suite"] == "demo"
        assert run["progress"]["total"] == len(load_suite(DEMO_SUITE).cases())
        # "Sorry, no." says none of the facts: the run ends failed, not errored.
        assert run["status"] == "failed"
        suites = http.get(f"/v1/agents/{agent_id}/evals/suite", headers=ADMIN)
        assert suites.status_code == 200, suites.text
        assert "demo" in suites.text

    # Best effort: an API that is not there is a log line, never an exception.
    thread = start_demo_eval_run(f"http://127.0.0.1:{free_port()}", "x", "demo")
    assert thread is not None
    thread.join(timeout=30)
    assert "the demo eval run was not started" in capsys.readouterr().out
