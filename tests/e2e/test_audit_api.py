"""The audit trail through the real API and CLI: every filter is applied, unknown ones are
rejected, and verification (server-side, recomputing hashes) catches a row edited in the DB."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from cli.main import app as cli_app
from tests.conftest import Stack
from tests.helpers import ADMIN, create_tenant

pytestmark = [pytest.mark.postgres, pytest.mark.temporal]


def test_filters_are_applied_and_unknown_ones_rejected(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    with stack.http() as http:
        tenant = create_tenant(http)
        org = tenant.org_id
        r = http.post(
            f"/v1/orgs/{org}/agents", json={"id": f"{org}-b", "name": "Other"}, headers=ADMIN
        )
        assert r.status_code == 201, r.text
        r = http.post(
            f"/v1/orgs/{org}/keys", json={"name": "ops", "scopes": ["admin"]}, headers=ADMIN
        )
        assert r.status_code == 201, r.text
        key = {"Authorization": f"Bearer {r.json()['token']}"}

        def listed(**params: object) -> list[dict[str, object]]:
            resp = http.get("/v1/audit", params={"org_id": org, **params}, headers=ADMIN)
            assert resp.status_code == 200, resp.text
            return list(resp.json())

        everything = listed()
        assert [e["seq"] for e in everything] == list(range(len(everything), 0, -1))
        on_agent = listed(agent_id=tenant.agent_id)
        assert {e["action"] for e in on_agent} == {"agent.create", "credential.set"}
        assert all(str(e["target"]).startswith(f"agent:{tenant.agent_id}") for e in on_agent)
        assert [e["action"] for e in listed(action="api_key.create")] == ["api_key.create"]
        assert len(listed(kind="agent.*")) == 2
        assert listed(actor="nobody") == []
        assert listed(limit=1) == everything[:1]
        later = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
        assert listed(since=later) == [] and len(listed(until=later)) == len(everything)
        naive_later = later[:19]  # no offset: read as UTC
        assert listed(since=naive_later) == [] and listed(until=naive_later) == everything

        bad = http.get("/v1/audit", params={"org_id": org, "agentid": "x"}, headers=ADMIN)
        assert bad.status_code == 422 and "agentid" in bad.json()["detail"], bad.text
        assert bad.json()["error"] == "InvalidInputError"
        # An org key reads its own org without naming it; verification needs admin too.
        assert http.get("/v1/audit/verify", headers=key).json()["ok"] is True

    runner = CliRunner()
    monkeypatch.setenv("BACKLINE_API_URL", stack.api.url)
    monkeypatch.setenv("BACKLINE_API_KEY", "test-admin-token")
    out = runner.invoke(cli_app, ["audit", "list", "--org-id", org, "--json", "--action", "org.*"])
    assert out.exit_code == 0, out.output
    assert [e["action"] for e in json.loads(out.output)] == ["org.create"]
    table = runner.invoke(cli_app, ["audit", "list", "--org-id", org, "--agent-id", f"{org}-b"])
    assert table.exit_code == 0 and "agent.create" in table.output, table.output
    wrong = runner.invoke(cli_app, ["audit", "list", "--org-id", org, "--since", "yesterday"])
    assert wrong.exit_code == 2 and "--since" in wrong.output
    backwards = runner.invoke(
        cli_app, ["audit", "list", "--org-id", org, "--since", "1h", "--until", "2d"]
    )
    assert backwards.exit_code == 2 and "--since must be before --until" in backwards.output
    ok = runner.invoke(cli_app, ["audit", "verify", "--org-id", org])
    assert ok.exit_code == 0 and "intact" in ok.output, ok.output

    with stack.engine.begin() as c:
        row_id = c.execute(
            text("SELECT id FROM auditevent WHERE org_id = :o AND action = 'api_key.create'"),
            {"o": org},
        ).scalar_one()
        c.execute(text("UPDATE auditevent SET actor = 'key:intruder' WHERE id = :i"), {"i": row_id})
    broken = runner.invoke(cli_app, ["audit", "verify", "--org-id", org])
    assert broken.exit_code == 1, broken.output
    assert "BROKEN (edited)" in broken.output and f"row {row_id} " in broken.output
    for command in ("list", "verify"):
        assert runner.invoke(cli_app, ["audit", command, "--help"]).exit_code == 0


def test_retention_windows_are_set_through_the_api_and_cli(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    with stack.http() as http:
        org = create_tenant(http).org_id
        r = http.get(f"/v1/orgs/{org}/retention", headers=ADMIN)
        assert r.status_code == 200, r.text
        assert r.json()["raw_payload_days"] is None
        assert r.json()["effective_raw_payload_days"] == stack.settings.raw_payload_retention_days
        r = http.patch(
            f"/v1/orgs/{org}/retention",
            json={"transcript_days": 30, "memory_days": 90},
            headers=ADMIN,
        )
        assert r.status_code == 200 and r.json()["memory_days"] == 90, r.text
        r = http.patch(f"/v1/orgs/{org}/retention", json={"memory_days": -1}, headers=ADMIN)
        assert r.status_code == 422 and "memory_days" in r.json()["detail"], r.text
        assert http.get("/v1/orgs/no-such-org/retention", headers=ADMIN).status_code == 404
        changes = http.get(
            "/v1/audit", params={"org_id": org, "action": "org.retention.set"}, headers=ADMIN
        ).json()
        assert [c["detail"] for c in changes] == [{"memory_days": 90, "transcript_days": 30}]

    runner = CliRunner()
    monkeypatch.setenv("BACKLINE_API_URL", stack.api.url)
    monkeypatch.setenv("BACKLINE_API_KEY", "test-admin-token")
    out = runner.invoke(
        cli_app,
        ["retention", "set", org, "--raw-payload-days", "2", "--memory-days", "keep", "--json"],
    )
    assert out.exit_code == 0, out.output
    policy = json.loads(out.output)
    assert (policy["raw_payload_days"], policy["transcript_days"], policy["memory_days"]) == (
        2,
        30,
        None,
    )
    shown = runner.invoke(cli_app, ["retention", "show", org])
    assert shown.exit_code == 0 and "forever" in shown.output and "2 days" in shown.output
    bad = runner.invoke(cli_app, ["retention", "set", org, "--memory-days", "a year"])
    assert bad.exit_code == 2 and "--memory-days" in bad.output
    for command in ("show", "set"):
        assert runner.invoke(cli_app, ["retention", command, "--help"]).exit_code == 0
