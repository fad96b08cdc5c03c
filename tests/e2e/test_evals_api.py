"""Eval runs through the real API and CLI: a suite folder sent by ``backline eval run``, played
in the API process against a scripted stand-in for the agent runtime (``AppState.eval_ports``),
stored with its per-case results, compared with an accepted baseline, cancelled, and kept from
other organizations. JUnit and HTML reports from the finished run."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import httpx
import pytest
from typer.testing import CliRunner

from cli.main import app as cli_app
from evals.runner import Ports
from tests.conftest import Stack
from tests.eval_helpers import Reply, ScriptedRuntime, Tool, write_suite
from tests.helpers import ADMIN, create_tenant

pytestmark = [pytest.mark.postgres, pytest.mark.temporal]

SCENARIO = """\
name: book
tags: [smoke]
caller: {number: "+14155550132"}
turns: [I'd like a table for four, "My card is 4111 1111 1111 1111"]
expect:
  tools_called: [{name: create_booking, args: {party_size: 4}}]
  must_say: [booked]
"""
SIMULATED = "name: sim\nsimulated: {goal: get a refund}\n"


def good_runtime(delay: float = 0.0) -> ScriptedRuntime:
    return ScriptedRuntime(
        {"four": Reply("You're booked.", tool_calls=[Tool("create_booking", {"party_size": 4})])},
        delay=delay,
    )


def use_runtime(stack: Stack, make: Any) -> None:
    state = stack.api._app_state()
    state.eval_ports = lambda agent: Ports(make())


def wait_done(http: httpx.Client, run_id: str, headers: dict[str, str]) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        run = http.get(f"/v1/evals/runs/{run_id}", headers=headers).json()
        if run["status"] not in ("queued", "running"):
            return dict(run)
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} did not finish")


def test_cli_run_baseline_compare_and_reports(
    stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = write_suite(
        tmp_path / "suite",
        {"book.yaml": SCENARIO, "sim.yaml": SIMULATED},
        "name: booking\nrepeats: 3\nconcurrency: 2\n",
    )
    monkeypatch.setenv("BACKLINE_API_URL", stack.api.url)
    monkeypatch.setenv("BACKLINE_API_KEY", "test-admin-token")
    runner = CliRunner()
    use_runtime(stack, good_runtime)
    with stack.http() as http:
        tenant = create_tenant(http)
    agent = tenant.agent_id

    junit, page = tmp_path / "junit.xml", tmp_path / "report.html"
    first = runner.invoke(
        cli_app,
        ["eval", "run", agent, str(folder), "--junit", str(junit), "--html", str(page), "--json"],
    )
    # Nothing to compare with: every scripted case passed, but that is not a pass (exit 3).
    assert first.exit_code == 3, first.output
    run = json.loads(first.stdout)
    assert run["status"] == "inconclusive" and run["progress"] == {"done": 6, "total": 6}
    assert (run["passed"], run["failed"], run["skipped"]) == (3, 0, 3)
    book = next(c for c in run["cases"] if c["scenario"] == "book")
    texts = " ".join(t["text"] for t in book["transcript"])
    assert "4111 1111 1111 1111" not in texts  # stored redacted, like call transcripts
    sim = next(c for c in run["cases"] if c["scenario"] == "sim")
    assert sim["status"] == "skipped" and "needs an LLM" in sim["reason"]
    suite_xml = ET.parse(junit).getroot()
    assert suite_xml.get("tests") == "2" and suite_xml.get("skipped") == "1"
    assert "<details>" in page.read_text() and "book" in page.read_text()

    accepted = runner.invoke(cli_app, ["eval", "accept", run["id"]])
    assert accepted.exit_code == 0, accepted.output

    # A broken candidate against the accepted baseline: 0/3 vs 3/3 is not significant at
    # three runs each, so the verdict is inconclusive, and the run has failures.
    use_runtime(stack, lambda: ScriptedRuntime(default=Reply("Sorry, no.")))
    second = runner.invoke(
        cli_app, ["eval", "run", agent, str(folder), "--tags", "smoke", "--repeats", "5"]
    )
    assert second.exit_code in (1, 3), second.output
    listed = runner.invoke(cli_app, ["eval", "list", "--agent", agent, "--json"])
    runs = json.loads(listed.stdout)
    assert len(runs) == 2 and runs[0]["baseline_run_id"] == run["id"]
    assert runs[0]["progress"]["total"] == 5
    assert runs[0]["status"] == "regressed"  # 0/5 against 3/3 is significant
    compared = runner.invoke(cli_app, ["eval", "compare", runs[0]["id"], run["id"], "--json"])
    assert compared.exit_code == 1, compared.output
    assert json.loads(compared.stdout)["verdict"] == "regressed"
    shown = runner.invoke(cli_app, ["eval", "show", runs[0]["id"], "--cases"])
    assert shown.exit_code == 0 and "called create_booking" in shown.output

    pushed = runner.invoke(cli_app, ["eval", "suite", "push", agent, str(folder)])
    assert pushed.exit_code == 0 and "booking" in pushed.output


def test_invalid_files_exit_2_with_file_and_line(
    stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = write_suite(
        tmp_path / "bad", {"a.yaml": "name: a\nturns: [x]\nexpect:\n  must_sey: [x]\n"}
    )
    monkeypatch.setenv("BACKLINE_API_URL", stack.api.url)
    monkeypatch.setenv("BACKLINE_API_KEY", "test-admin-token")
    result = CliRunner().invoke(cli_app, ["eval", "run", "nobody", str(folder)])
    assert result.exit_code == 2
    assert "a.yaml:4" in result.output and "must_say" in result.output
    # Valid here, refused by the API (no scenario has the tag): exit 2 with its message.
    good = write_suite(tmp_path / "good", {"a.yaml": "name: a\nturns: [x]\n"})
    with stack.http() as http:
        agent_id = create_tenant(http).agent_id
    refused = CliRunner().invoke(cli_app, ["eval", "run", agent_id, str(good), "--tags", "nope"])
    assert refused.exit_code == 2 and "nope" in refused.output, refused.output
    with stack.http() as http:
        tenant = create_tenant(http)
        r = http.post(
            f"/v1/agents/{tenant.agent_id}/evals/runs",
            json={
                "files": {
                    "suite.yaml": "name: s\n",
                    "a.yaml": "name: a\nturns: [x]\nexpect:\n  must_sey: [x]\n",
                }
            },
            headers=ADMIN,
        )
        assert r.status_code == 422 and "a.yaml:4" in r.json()["detail"], r.text
        r = http.post(
            f"/v1/agents/{tenant.agent_id}/evals/runs",
            json={"files": {"../suite.yaml": "name: s\n"}},
            headers=ADMIN,
        )
        assert r.status_code == 422, r.text


def test_cancel_and_tenant_isolation(stack: Stack, tmp_path: Path) -> None:
    use_runtime(stack, lambda: good_runtime(delay=0.5))
    files = {"suite.yaml": "name: slow\nrepeats: 20\nconcurrency: 1\n", "book.yaml": SCENARIO}
    with stack.http() as http:
        tenant = create_tenant(http)
        other = create_tenant(http)
        key = http.post(
            f"/v1/orgs/{other.org_id}/keys", json={"name": "x", "scopes": ["admin"]}, headers=ADMIN
        ).json()["token"]
        outsider = {"Authorization": f"Bearer {key}"}
        r = http.post(
            f"/v1/agents/{tenant.agent_id}/evals/runs", json={"files": files}, headers=ADMIN
        )
        assert r.status_code == 202, r.text
        run_id = r.json()["id"]
        assert http.get(f"/v1/evals/runs/{run_id}", headers=outsider).status_code == 403
        assert http.post(f"/v1/evals/runs/{run_id}/cancel", headers=outsider).status_code == 403
        assert http.get("/v1/evals/runs", headers=outsider).json() == []
        # Another organization can neither start runs on, register suites for, nor list the
        # suites of this agent.
        agent_url = f"/v1/agents/{tenant.agent_id}/evals"
        assert (
            http.post(f"{agent_url}/runs", json={"files": files}, headers=outsider).status_code
            == 403
        )
        assert (
            http.put(f"{agent_url}/suite", json={"files": files}, headers=outsider).status_code
            == 403
        )
        assert http.get(f"{agent_url}/suite", headers=outsider).status_code == 403
        r = http.post(f"/v1/evals/runs/{run_id}/cancel", headers=ADMIN)
        assert r.status_code == 200, r.text
        run = wait_done(http, run_id, ADMIN)
        assert run["status"] == "cancelled" and run["progress"]["done"] == 20
        assert run["skipped"] >= 15
        again = http.post(f"/v1/evals/runs/{run_id}/cancel", headers=ADMIN)
        assert again.status_code == 409


async def test_runs_on_the_workers_as_a_workflow(stack: Stack) -> None:
    """Without in-process adapters the API starts EvalSuiteWorkflow; its cases run on the
    worker (with the stand-in runtime the test gives the worker) and a cancel signals it."""
    stack.api._app_state().eval_ports = None
    stack.eval_ports["ports"] = lambda agent: Ports(good_runtime(delay=0.3))
    files = {"suite.yaml": "name: w\nrepeats: 2\nconcurrency: 2\n", "book.yaml": SCENARIO}
    with stack.http() as sync_http:
        tenant = await asyncio.to_thread(create_tenant, sync_http)
    async with httpx.AsyncClient(base_url=stack.api.url, timeout=30, headers=ADMIN) as http:

        async def finished(run_id: str) -> dict[str, Any]:
            for _ in range(300):
                run = (await http.get(f"/v1/evals/runs/{run_id}")).json()
                if run["status"] not in ("queued", "running"):
                    return dict(run)
                await asyncio.sleep(0.2)
            raise AssertionError(f"run {run_id} did not finish")

        path = f"/v1/agents/{tenant.agent_id}/evals/runs"
        r = await http.post(path, json={"files": files})
        assert r.status_code == 202, r.text
        run = await finished(r.json()["id"])
        assert run["status"] == "inconclusive" and run["passed"] == 2, run

        slow = {**files, "suite.yaml": "name: w\nrepeats: 30\nconcurrency: 1\n"}
        run_id = (await http.post(path, json={"files": slow})).json()["id"]
        await asyncio.sleep(1.0)
        assert (await http.post(f"/v1/evals/runs/{run_id}/cancel")).status_code == 200
        run = await finished(run_id)
        assert run["status"] == "cancelled" and run["progress"]["done"] == 30
        assert run["skipped"] >= 20


async def test_registering_a_suite_schedules_its_nightly_run_on_production(stack: Stack) -> None:
    """PUT .../evals/suite creates the suite's Temporal Schedule (EvalSuiteWorkflow on the
    production label at BACKLINE_EVAL_NIGHTLY_CRON); a run of it stores and plays a run of the
    registered suite; DELETE removes the schedule."""
    from temporalio.client import ScheduleActionStartWorkflow
    from temporalio.service import RPCError

    from orchestration.eval_types import EvalSuiteInput, eval_nightly_schedule_id

    stack.api._app_state().eval_ports = None
    stack.eval_ports["ports"] = lambda agent: Ports(good_runtime())
    files = {"suite.yaml": "name: nightly\nrepeats: 2\n", "book.yaml": SCENARIO}
    with stack.http() as sync_http:
        tenant = await asyncio.to_thread(create_tenant, sync_http)
    agent = tenant.agent_id
    async with httpx.AsyncClient(base_url=stack.api.url, timeout=30, headers=ADMIN) as http:
        r = await http.put(f"/v1/agents/{agent}/evals/suite", json={"files": files})
        assert r.status_code == 200, r.text
        handle = stack.client.get_schedule_handle(eval_nightly_schedule_id(agent, "nightly"))
        described = await handle.describe()
        # The server keeps a cron expression as a calendar: 03:00 every day.
        assert stack.settings.eval_nightly_cron == "0 3 * * *"
        (calendar,) = described.schedule.spec.calendars
        assert [(r.start, r.end) for r in calendar.hour] == [(3, 3)]
        assert [(r.start, r.end) for r in calendar.minute] == [(0, 0)]
        assert "'0 3 * * *'" in (described.schedule.state.note or "")
        action = described.schedule.action
        assert isinstance(action, ScheduleActionStartWorkflow)
        assert action.workflow == "EvalSuiteWorkflow"
        assert action.task_queue == stack.settings.task_queue
        (arg,) = await stack.client.data_converter.decode(action.args, [EvalSuiteInput])
        assert arg == EvalSuiteInput("", agent_id=agent, suite_name="nightly", label="production")
        # Re-registering updates the same schedule rather than failing.
        r = await http.put(f"/v1/agents/{agent}/evals/suite", json={"files": files})
        assert r.status_code == 200, r.text

        await handle.trigger()
        for _ in range(300):
            runs = (await http.get("/v1/evals/runs", params={"agent_id": agent})).json()
            if runs and runs[0]["status"] not in ("queued", "running"):
                break
            await asyncio.sleep(0.2)
        else:
            raise AssertionError("the nightly run did not finish")
        (run,) = runs
        assert run["suite"] == "nightly" and run["label"] == "production", run
        assert run["passed"] == 2, run

        r = await http.delete(f"/v1/agents/{agent}/evals/suite/nightly")
        assert r.status_code == 204, r.text
        with pytest.raises(RPCError):
            await handle.describe()
        r = await http.delete(f"/v1/agents/{agent}/evals/suite/nightly")
        assert r.status_code == 404, r.text
