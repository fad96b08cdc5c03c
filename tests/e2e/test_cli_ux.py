"""The CLI a new user touches, against the real API: tables by default and JSON with --json,
errors that name the CLI flag, invalid phone numbers refused with a 422, and the commands for
routes that had none (calls show, keys list/revoke, tools export, quality)."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest
from typer.testing import CliRunner

from cli.main import app
from tests.conftest import ADMIN_TOKEN, Stack, wait_for
from tests.helpers import ADMIN, DANA_CALL_1, create_tenant, end_of_call, raw

pytestmark = [pytest.mark.postgres, pytest.mark.temporal]
DANA = "+14155550123"


def _cli(*args: str) -> Any:
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


async def test_cli_commands_print_tables_json_and_errors_that_say_how_to_fix(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BACKLINE_API_URL", stack.api.url)
    monkeypatch.setenv("BACKLINE_API_KEY", ADMIN_TOKEN)
    monkeypatch.setenv("COLUMNS", "200")

    def _go() -> None:
        with stack.http() as http:
            tenant = create_tenant(http)
            call_id = f"call-{uuid.uuid4().hex[:8]}"
            http.post(
                tenant.webhook,
                content=raw(end_of_call(call_id, DANA, DANA_CALL_1)),
                headers=tenant.vapi_headers,
            )
            wait_for(
                lambda: (
                    http.get(f"/v1/calls/{tenant.agent_id}/vapi/{call_id}", headers=ADMIN)
                    .json()
                    .get("status")
                    == "processed"
                ),
                timeout=60,
            )
            bad = http.post(
                f"/v1/agents/{tenant.agent_id}/callers/lookup",
                json={"number": "not a number"},
                headers=ADMIN,
            )
            assert bad.status_code == 422
            assert "not a phone number" in bad.json()["detail"]
            key = http.post(
                f"/v1/orgs/{tenant.org_id}/keys",
                json={"name": "ci", "scopes": ["viewer"]},
                headers=ADMIN,
            ).json()

        agent, org = tenant.agent_id, tenant.org_id
        # memory show: a bad number is refused, a good one is a table (or JSON)
        refused = _cli("memory", "show", agent, "--number", "not a number")
        assert refused.exit_code == 1
        assert "422" in refused.output and "not a phone number" in refused.output
        assert "--number" in refused.output
        shown = _cli("memory", "show", agent, "--number", "(415) 555-0123")
        assert shown.exit_code == 0, shown.output
        assert "Call summaries" in shown.output and "Facts" in shown.output
        assert not shown.output.lstrip().startswith("{")
        as_json = json.loads(_cli("memory", "show", agent, "--number", DANA, "--json").output)
        assert as_json["summaries"] and as_json["context"]["known"] is True

        # calls list: the operator must name the org, and the error says with which flag
        missing = _cli("calls", "list")
        assert missing.exit_code == 1 and "--org-id" in missing.output
        assert "?org_id" not in missing.output
        listed = _cli("calls", "list", "--org-id", org)
        assert listed.exit_code == 0 and call_id in listed.output and "processed" in listed.output
        rows = json.loads(_cli("calls", "list", "--org-id", org, "--json").output)
        assert [r["platform_call_id"] for r in rows] == [call_id]
        one = _cli("calls", "show", call_id, "--agent", agent)
        assert one.exit_code == 0, one.output
        assert "processed" in one.output and "Transcript" in one.output
        assert "caller_hangup" in one.output and "Events" in one.output
        detail = json.loads(_cli("calls", "show", call_id, "--agent", agent, "--json").output)
        assert detail["platform_call_id"] == call_id and detail["transcript"]
        # the post-call workflow stored the four-layer card, and quality aggregates it
        assert set(detail["score_layers"]) == {"infrastructure", "execution", "reaction", "outcome"}
        assert detail["score_metrics"]["evidence_gathered"] is True
        quality = _cli("quality", agent)
        assert quality.exit_code == 0 and "Call quality of" in quality.output, quality.output
        summary = json.loads(_cli("quality", agent, "--json").output)
        assert summary["overall"]["calls"] == 1 and summary["overall"]["layered_calls"] == 1

        # keys list / revoke
        keys = _cli("keys", "list", org)
        assert keys.exit_code == 0 and key["id"] in keys.output and "active" in keys.output
        assert key["token"] not in keys.output
        revoked = _cli("keys", "revoke", org, key["id"], "--yes")
        assert revoked.exit_code == 0 and key["id"] in revoked.output, revoked.output
        with stack.http() as http:
            denied = http.get(
                f"/v1/orgs/{org}/alerts", headers={"Authorization": f"Bearer {key['token']}"}
            )
            assert denied.status_code == 401

        # tools export per platform, tools status
        for platform in ("vapi", "retell", "bland", "custom"):
            exported = _cli("tools", "export", agent, "--platform", platform)
            assert exported.exit_code == 0 and "memory_search" in exported.output, platform
            definitions = json.loads(
                _cli("tools", "export", agent, "--platform", platform, "--json").output
            )
            assert definitions and isinstance(definitions, list)
        custom = _cli(
            "agents",
            "set-credential",
            agent,
            "custom",
            "--kind",
            "signing_secret",
            "--secret",
            "custom-signing-secret",
        )
        assert custom.exit_code == 0 and '"platform": "custom"' in custom.output, custom.output
        status = _cli("tools", "status", org)
        assert status.exit_code == 0 and "MCP servers" in status.output, status.output
        assert "servers" in json.loads(_cli("tools", "status", org, "--json").output)

    await asyncio.to_thread(_go)
