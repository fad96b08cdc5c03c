"""Prompts through the real API over HTTP (Postgres, the Temporal dev server, a worker):
the VAPI assistant-request serves the labelled version inline and records it on the call, a
label move is served within a second, the CLI drives the same routes, and a rollout started
through the API answers its live status and aborts on a signal."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlalchemy.engine import Engine
from sqlmodel import Session
from temporalio.testing import WorkflowEnvironment
from typer.testing import CliRunner

from activities.prompts import PromptActivities
from cli.main import app as cli_app
from cli.worker import worker_for
from connectors.embedder import MiniLMEmbedder
from core.calls import repository as calls_repo
from core.prompts import repository as prompts_repo
from tests.bland_helpers import create_bland_tenant
from tests.bland_helpers import dynamic_data as bland_dynamic_data
from tests.conftest import ApiServer, async_wait_for, make_settings, temporal_address
from tests.helpers import ADMIN, Tenant, assistant_request, create_tenant, raw
from tests.retell_helpers import call_inbound, create_retell_tenant

pytestmark = [pytest.mark.postgres, pytest.mark.temporal]
MODEL = {"provider": "openai", "model": "gpt-4o-mini", "temperature": 0.2}
DANA = "+14155550123"


@dataclass
class PromptStack:
    api: ApiServer
    engine: Engine

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.api.url, timeout=30)


@pytest_asyncio.fixture(loop_scope="session")
async def prompt_stack(
    pg_url: str,
    pg_engine: Engine,
    temporal_env: WorkflowEnvironment,
    embedder: MiniLMEmbedder,
    tmp_path: Path,
) -> AsyncIterator[PromptStack]:
    settings = make_settings(pg_url, tmp_path, temporal_address=temporal_address(temporal_env))
    api = await asyncio.to_thread(lambda: ApiServer(settings, embedder).start())
    with ThreadPoolExecutor(max_workers=4) as executor:
        async with worker_for(
            temporal_env.client, settings.task_queue, [PromptActivities(pg_engine)], executor
        ):
            yield PromptStack(api, pg_engine)
            await asyncio.to_thread(api.stop)


def _key(http: httpx.Client, tenant: Tenant, *scopes: str) -> dict[str, str]:
    r = http.post(
        f"/v1/orgs/{tenant.org_id}/keys",
        json={"name": "-".join(scopes), "scopes": scopes},
        headers=ADMIN,
    )
    assert r.status_code == 201, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def _push(http: httpx.Client, tenant: Tenant, n: int, headers: dict[str, str]) -> dict[str, Any]:
    r = http.post(
        f"/v1/agents/{tenant.agent_id}/prompts/versions",
        json={
            "template": f"Prompt v{n} for {{{{backline.agent_name}}}}. Known caller: "
            "{{backline.caller_known}}. Greet {{customer.name}}.",
            "model": MODEL,
            "first_message": f"Hello from v{n}",
            "tools": [{"name": "memory_search"}],
            "message": f"version {n}",
        },
        headers=headers,
    )
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def _go_live(http: httpx.Client, agent_id: str, version: dict[str, Any]) -> None:
    """Push ``version`` as the agent's first and label it production."""
    base = f"/v1/agents/{agent_id}/prompts"
    r = http.post(f"{base}/versions", json=version, headers=ADMIN)
    assert r.status_code == 201, r.text
    r = http.put(
        f"{base}/labels/production", json={"version": 1, "reason": "go live"}, headers=ADMIN
    )
    assert r.status_code == 200, r.text


def _served(
    http: httpx.Client, tenant: Tenant, call_id: str | None = None, number: str = DANA
) -> dict[str, Any]:
    r = http.post(
        tenant.webhook, content=raw(assistant_request(number, call_id)), headers=tenant.vapi_headers
    )
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _invoke(runner: CliRunner, args: list[str]) -> Any:
    # Synchronous on purpose: the CLI is a plain HTTP client of the API thread.
    return runner.invoke(cli_app, args)


def _version(reply: dict[str, Any]) -> str | None:
    return reply["assistantOverrides"]["variableValues"].get("backline_prompt_version")


async def test_a_label_move_is_served_by_the_next_assistant_request_within_a_second(
    prompt_stack: PromptStack,
) -> None:
    with prompt_stack.http() as http:
        tenant = create_tenant(http)
        content, release = _key(http, tenant, "content"), _key(http, tenant, "release")
        base = f"/v1/agents/{tenant.agent_id}/prompts"

        # No version yet: the reply is exactly what an agent without prompts always got.
        before = _served(http, tenant)
        assert before["assistantId"] == "asst-123" and "model" not in before["assistantOverrides"]
        assert _version(before) is None

        _push(http, tenant, 1, content)
        _push(http, tenant, 2, content)
        refused = http.put(
            f"{base}/labels/production", json={"version": 1, "reason": "go live"}, headers=content
        )
        assert refused.status_code == 403 and "protected" in refused.json()["detail"]
        r = http.put(
            f"{base}/labels/production", json={"version": 1, "reason": "first"}, headers=release
        )
        assert r.status_code == 200, r.text

        call_id = f"call-{uuid.uuid4().hex[:8]}"

        def _served_v1() -> dict[str, Any] | None:
            reply = _served(http, tenant, call_id)
            return reply if _version(reply) == "v1" else None

        reply = await async_wait_for(_served_v1, timeout=5)
        model = reply["assistantOverrides"]["model"]
        assert (model["provider"], model["model"], model["temperature"]) == (
            "openai",
            "gpt-4o-mini",
            0.2,
        )
        assert model["messages"][0] == {
            "role": "system",
            "content": "Prompt v1 for Test agent. Known caller: no. Greet {{customer.name}}.",
        }
        assert model["tools"][0]["function"]["name"] == "memory_search"
        assert reply["assistantOverrides"]["firstMessage"] == "Hello from v1"
        with Session(prompt_stack.engine) as session:
            call = calls_repo.get_call(session, tenant.agent_id, "vapi", call_id)
            assert call is not None and call.prompt_version == "v1"

        r = http.put(
            f"{base}/labels/production", json={"version": 2, "reason": "ship v2"}, headers=release
        )
        assert r.status_code == 200, r.text
        moved_at = time.monotonic()
        while _version(_served(http, tenant)) != "v2":
            assert time.monotonic() - moved_at < 1.0, "label move not served within 1 s"
        took = time.monotonic() - moved_at
        assert took < 1.0

        r = http.post(
            f"{base}/labels/production/rollback", json={"reason": "v2 misbehaves"}, headers=release
        )
        assert r.status_code == 200 and r.json()["label"]["version"] == 1
        await async_wait_for(lambda: _version(_served(http, tenant)) == "v1", timeout=2)
        history = http.get(
            f"{base}/labels/history", params={"label": "production"}, headers=content
        )
        assert [(m["kind"], m["reason"]) for m in history.json()] == [
            ("rollback", "v2 misbehaves"),
            ("move", "ship v2"),
            ("move", "first"),
        ]
        staging = http.put(
            f"{base}/labels/staging", json={"version": 2, "reason": "qa run"}, headers=content
        )
        assert staging.status_code == 200
        await async_wait_for(
            lambda: (
                httpx.post(
                    f"{prompt_stack.api.url}{tenant.webhook}?prompt_label=staging",
                    content=raw(assistant_request(DANA)),
                    headers=tenant.vapi_headers,
                ).json()["assistantOverrides"]["variableValues"]["backline_prompt_version"]
                == "v2"
            ),
            timeout=2,
        )


async def test_the_cli_pushes_diffs_labels_and_reports_status(
    prompt_stack: PromptStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with prompt_stack.http() as http:
        tenant = create_tenant(http)
        release = _key(http, tenant, "release")
    monkeypatch.setenv("BACKLINE_API_URL", prompt_stack.api.url)
    monkeypatch.setenv("BACKLINE_API_KEY", release["Authorization"].removeprefix("Bearer "))
    runner = CliRunner()
    agent = tenant.agent_id
    first, second = tmp_path / "v1.md", tmp_path / "v2.md"
    first.write_text("You help {{backline.agent_name}} callers.\nBe brief.\n")
    second.write_text("You help {{backline.agent_name}} callers.\nBe warm and brief.\n")

    def cli(*args: str) -> str:
        result = _invoke(runner, list(args))
        assert result.exit_code == 0, result.output
        return result.output

    empty = cli("prompts", "status", agent)
    assert "vNone" not in empty and "no versions yet; push one with" in empty
    pushed = cli(
        *("prompts", "push", agent, "--template-file", str(first), "-m", "first"),
        *("--model", "provider=openai", "--model", "model=gpt-4o-mini"),
        *("--label", "production", "--reason", "initial"),
    )
    assert "v1 created" in pushed and "label production -> v1" in pushed
    assert "v2 created" in cli(
        "prompts", "push", agent, "--template-file", str(second), "-m", "warmer"
    )
    assert "v2 unchanged" in cli(
        "prompts", "push", agent, "--template-file", str(second), "-m", "again"
    )
    diff = cli("prompts", "diff", agent, "1", "2")
    assert "-Be brief." in diff and "+Be warm and brief." in diff
    assert "staging: nothing -> v2" in cli(
        "prompts", "label", agent, "staging", "2", "-r", "qa run"
    )
    status = cli("prompts", "status", agent)
    assert "production -> v1 (protected)" in status and "staging -> v2" in status
    assert "serving: v1 (production)" in status
    started = cli(
        *("prompts", "experiment", "start", agent, "--name", "warmth", "--variant", "2=0.5"),
        *("-r", "try warmth"),
    )
    assert "Experiment started" in started and "v2 50%, v1 50%" in started
    assert not started.lstrip().startswith("{")
    listed = json.loads(cli("prompts", "experiment", "list", agent, "--json"))
    assert [e["name"] for e in listed] == ["warmth"]
    stopped = cli("prompts", "experiment", "stop", agent, str(listed[0]["id"]), "-r", "done")
    assert "Experiment stopped" in stopped and "stopped" in stopped
    bad = _invoke(runner, ["prompts", "label", agent, "production", "9", "-r", "nope"])
    assert bad.exit_code == 1 and "NotFoundError" in bad.output
    for command in ("push", "diff", "label", "rollback", "experiment", "rollout", "status"):
        assert _invoke(runner, ["prompts", command, "--help"]).exit_code == 0
    assert "backline.*" not in _invoke(runner, ["prompts", "push", "--help"]).output


async def test_a_rollout_started_through_the_api_reports_live_status_and_aborts(
    prompt_stack: PromptStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    with prompt_stack.http() as http:
        tenant = create_tenant(http)
        release = _key(http, tenant, "release")
        base = f"/v1/agents/{tenant.agent_id}/prompts"
        _push(http, tenant, 1, release)
        _push(http, tenant, 2, release)
        no_control = http.post(
            f"{base}/rollouts", json={"candidate_version": 2, "reason": "try"}, headers=release
        )
        assert no_control.status_code == 422 and "production" in no_control.json()["detail"]
        http.put(
            f"{base}/labels/production", json={"version": 1, "reason": "first"}, headers=release
        )

        def step(weight: float, min_calls: int) -> dict[str, float]:
            return {"weight": weight, "hold_s": 5, "min_canary_calls": min_calls,
                    "max_duration_s": 120}  # fmt: skip

        # The reported plan: its 3-call steps could end before the guards tested anything.
        few = {
            "candidate_version": 2,
            "steps": [step(0.2, 3), step(0.5, 3), step(1.0, 3)],
            "reason": "too few calls",
        }
        r = http.post(f"{base}/rollouts", json=few, headers=release)
        assert r.status_code == 422, r.text
        assert r.json()["error"] == "InvalidInputError"
        assert "smallest valid value is 20" in r.json()["detail"]
        only_full = {"candidate_version": 2, "steps": [step(1.0, 50)], "reason": "all at once"}
        r = http.post(f"{base}/rollouts", json=only_full, headers=release)
        assert r.status_code == 422 and "below 100%" in r.json()["detail"], r.text
        with Session(prompt_stack.engine) as session:
            assert prompts_repo.latest_rollout(session, tenant.agent_id) is None

        body = {
            "candidate_version": 2,
            "steps": [
                {"weight": 0.5, "hold_s": 600, "min_canary_calls": 20, "max_duration_s": 900}
            ],
            "check_interval_s": 0.3,
            "reason": "new greeting",
        }
        r = http.post(f"{base}/rollouts", json=body, headers=release)
        assert r.status_code == 202, r.text
        assert r.json()["workflow_id"] == f"prompt-rollout-{tenant.agent_id}"
        again = http.post(f"{base}/rollouts", json=body, headers=release)
        assert again.status_code == 409

        def _live() -> dict[str, Any] | None:
            s = http.get(f"{base}/status", headers=release).json()
            live: dict[str, Any] | None = s.get("live")
            return live if live and live["history"] else None

        live = await async_wait_for(_live, timeout=20)
        assert live["state"] == "running" and live["weights"] == [0.5]
        assert live["history"][-1]["verdict"] == "insufficient"
        monkeypatch.setenv("BACKLINE_API_URL", prompt_stack.api.url)
        monkeypatch.setenv("BACKLINE_API_KEY", release["Authorization"].removeprefix("Bearer "))
        shown = _invoke(CliRunner(), ["prompts", "rollout", "status", tenant.agent_id])
        assert shown.exit_code == 0, shown.output
        assert "v1 -> v2 running, step 1/1 at 50%" in shown.output
        assert "insufficient" in shown.output and not shown.output.lstrip().startswith("{")
        callers = [f"+1415555{i:04d}" for i in range(30)]
        served = {_version(_served(http, tenant, number=n)) for n in callers}
        assert served == {"v1", "v2"}  # about half the callers on the canary

        r = http.post(
            f"{base}/rollouts/current/abort", json={"reason": "changed my mind"}, headers=release
        )
        assert r.status_code == 200, r.text

        def _ended() -> bool:
            with Session(prompt_stack.engine) as session:
                row = prompts_repo.latest_rollout(session, tenant.agent_id)
                return row is not None and row.status == "aborted"

        await async_wait_for(_ended, timeout=10)
        # Within a poll or two of the abort every caller is back on production.
        await async_wait_for(
            lambda: {_version(_served(http, tenant, number=n)) for n in callers} == {"v1"},
            timeout=2,
        )
        current = http.get(f"{base}/rollouts/current", headers=release).json()
        assert current["rollout"]["status"] == "aborted"
        assert "changed my mind" in current["rollout"]["outcome_reason"]


async def test_retell_and_bland_receive_the_served_prompt_as_dynamic_variables(
    prompt_stack: PromptStack,
) -> None:
    with prompt_stack.http() as http:
        retell, bland = create_retell_tenant(http), create_bland_tenant(http)
        for agent_id, model in (
            (retell.agent_id, {**MODEL, "retell_agent_id": "agent_retell_v1"}),
            (bland.agent_id, MODEL),
        ):
            _go_live(
                http,
                agent_id,
                {
                    "template": "You are {{backline.agent_name}}; known: {{backline.caller_known}}"
                    " ({{caller_name}} stays for the platform).",
                    "model": model,
                    "first_message": "Hi there",
                    "message": "first",
                },
            )

        def _retell() -> dict[str, Any] | None:
            reply = retell.post(http, "inbound", call_inbound(DANA)).json()["call_inbound"]
            return reply if "backline_system_prompt" in reply["dynamic_variables"] else None

        inbound = await async_wait_for(_retell, timeout=5)
        assert inbound["dynamic_variables"]["backline_system_prompt"] == (
            "You are Retell agent; known: no ({{caller_name}} stays for the platform)."
        )
        assert inbound["dynamic_variables"]["backline_prompt_version"] == "v1"
        assert inbound["dynamic_variables"]["backline_caller_known"] == "no"
        assert inbound["override_agent_id"] == "agent_retell_v1"

        def _bland() -> dict[str, Any] | None:
            reply: dict[str, Any] = bland.dynamic_data(http, bland_dynamic_data(DANA)).json()
            return reply if "backline_system_prompt" in reply else None

        variables = await async_wait_for(_bland, timeout=5)
        assert variables["backline_system_prompt"].startswith("You are Bland agent; known: no")
        assert variables["backline_first_message"] == "Hi there"


async def test_a_versions_variable_defaults_reach_vapi_unless_the_call_sets_its_own(
    prompt_stack: PromptStack,
) -> None:
    with prompt_stack.http() as http:
        tenant = create_tenant(http)
        _go_live(
            http,
            tenant.agent_id,
            {
                "template": "Serve {{account_tier}} customers. Known: {{backline_caller_known}}.",
                "variables": {"account_tier": "standard"},
                "model": MODEL,
                "message": "tiered",
            },
        )

        def _served_v1() -> dict[str, Any] | None:
            reply = _served(http, tenant)
            return reply if _version(reply) == "v1" else None

        reply = await async_wait_for(_served_v1, timeout=5)
        overrides = reply["assistantOverrides"]
        # Backline fills its own variable; {{account_tier}} stays for VAPI, with the default.
        assert overrides["model"]["messages"][0]["content"] == (
            "Serve {{account_tier}} customers. Known: no."
        )
        assert overrides["variableValues"]["account_tier"] == "standard"

        own = assistant_request(DANA)
        own["message"]["call"]["assistantOverrides"] = {"variableValues": {"account_tier": "gold"}}
        r = http.post(tenant.webhook, content=raw(own), headers=tenant.vapi_headers)
        assert r.status_code == 200, r.text
        values = r.json()["assistantOverrides"]["variableValues"]
        assert "account_tier" not in values  # the call's own "gold" stands
        assert values["backline_prompt_version"] == "v1"
