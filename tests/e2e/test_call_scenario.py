"""A stored call as a regression scenario, through the API (``GET /v1/calls/.../scenario``) and
the CLI (``backline eval from-call``): the file written loads with ``load_suite`` and replays the
caller's lines and the tool call that answered."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlmodel import Session
from typer.testing import CliRunner

from cli.main import app as cli_app
from core.calls.models import Call, CallEvent
from evals.scenarios import load_suite
from tests.conftest import Stack
from tests.helpers import ADMIN, create_tenant

pytestmark = [pytest.mark.postgres]

TRANSCRIPT = [
    {"role": "agent", "text": "Thanks for calling Acme, how can I help?"},
    {"role": "caller", "text": "What is the status of my order 1043?"},
    {"role": "agent", "text": "Order 1043 has shipped."},
]


def _store(stack: Stack, org_id: str, agent_id: str, call_id: str, transcript: list) -> None:
    where = {
        "org_id": org_id,
        "agent_id": agent_id,
        "platform": "vapi",
        "platform_call_id": call_id,
    }
    with Session(stack.engine) as session:
        session.add(Call(**where, status="processed", transcript=transcript, prompt_version="v2"))
        session.add(
            CallEvent(
                **where,
                type="tool_call",
                platform_type="tool-calls",
                data={"tool": "order_status", "arguments": {"order_id": "1043"}, "ok": True},
            )
        )
        session.commit()


def test_a_stored_call_becomes_a_scenario_file(
    stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    call_id = f"call-{uuid.uuid4().hex[:8]}"
    silent = f"silent-{uuid.uuid4().hex[:8]}"
    with stack.http() as http:
        tenant = create_tenant(http)
        _store(stack, tenant.org_id, tenant.agent_id, call_id, TRANSCRIPT)
        _store(stack, tenant.org_id, tenant.agent_id, silent, TRANSCRIPT[:1])
        path = f"/v1/calls/{tenant.agent_id}/vapi"
        r = http.get(f"{path}/{call_id}/scenario", headers=ADMIN)
        assert r.status_code == 200, r.text
        assert "order_status" in r.json()["yaml"]
        assert http.get(f"{path}/nope/scenario", headers=ADMIN).status_code == 404
        assert http.get(f"{path}/{silent}/scenario", headers=ADMIN).status_code == 422
        assert http.get(f"{path}/{call_id}/scenario").status_code == 401

    monkeypatch.setenv("BACKLINE_API_URL", stack.api.url)
    monkeypatch.setenv("BACKLINE_API_KEY", "test-admin-token")
    out = tmp_path / "suite" / "order_status.yaml"
    result = CliRunner().invoke(
        cli_app, ["eval", "from-call", tenant.agent_id, "vapi", call_id, "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    (out.parent / "suite.yaml").write_text("name: regressions\n")
    [scenario] = load_suite(out.parent).scenarios
    assert scenario.turns == ["What is the status of my order 1043?"]
    [tool] = scenario.expect.tools_called
    assert tool.name == "order_status"
    assert scenario.version == 2

    printed = CliRunner().invoke(cli_app, ["eval", "from-call", tenant.agent_id, "vapi", call_id])
    assert printed.exit_code == 0 and printed.output == out.read_text()
    missing = CliRunner().invoke(cli_app, ["eval", "from-call", tenant.agent_id, "vapi", "nope"])
    assert missing.exit_code == 1 and "404" in missing.output
