"""Tools end to end: a VAPI tool call through the webhook reaches a real MCP server through the
gateway, the tool shows in the platform export, the trace and audit hold it, the CLI drives it,
and Backline serves the agent's tools as its own MCP endpoint."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from sqlmodel import Session, select
from typer.testing import CliRunner

from cli.main import app as cli_app
from core.audit.models import AuditEvent
from core.calls.models import CallEvent
from core.tools.models import McpServer
from tests.conftest import ADMIN_TOKEN, LOOPBACK_ALLOWED, Stack
from tests.helpers import ADMIN, create_tenant, raw, tool_call
from tests.mcp_helpers import ORDERS, HttpServer

pytestmark = [pytest.mark.postgres, pytest.mark.temporal]
DANA = "+14155550123"
ORDERS_KEY = "orders-secret-value"


@pytest.fixture(scope="module")
def orders_server() -> Iterator[HttpServer]:
    server = HttpServer(ORDERS, "--refund-delay", "0", "--api-key", ORDERS_KEY).start()
    yield server
    server.stop()


@pytest.fixture
def stack_settings() -> dict[str, Any]:
    # The example orders server listens on loopback: the operator allow-list admits it.
    return {"egress_allow": LOOPBACK_ALLOWED}


def _register_orders(http: httpx.Client, org_id: str, url: str) -> dict[str, Any]:
    r = http.post(
        f"/v1/orgs/{org_id}/tools/servers",
        json={
            "name": "orders",
            "transport": "http",
            "url": url,
            "display_name": "our order system",
            "bearer_token": ORDERS_KEY,  # the server answers 401 without it
            "headers": {"X-Request-Source": "backline-e2e"},
        },
        headers=ADMIN,
    )
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def _tool_events(stack: Stack, call_id: str) -> list[CallEvent]:
    with Session(stack.engine) as s:
        return list(
            s.exec(
                select(CallEvent).where(
                    CallEvent.platform_call_id == call_id, CallEvent.type == "tool_call"
                )
            )
        )


async def test_a_vapi_tool_call_runs_an_mcp_tool_through_the_gateway(
    stack: Stack, orders_server: HttpServer
) -> None:
    runner = CliRunner()
    env = {"BACKLINE_API_URL": stack.api.url, "BACKLINE_API_KEY": ADMIN_TOKEN}
    with stack.http() as http:
        tenant = create_tenant(http)
        server = _register_orders(http, tenant.org_id, orders_server.url)
        assert "order_status" in server["tools"] and "refund_order" in server["tools"]
        assert server["secret_header_names"] == ["X-Request-Source"]
        assert server["has_bearer_token"] is True and server["last_error"] is None
        assert ORDERS_KEY not in json.dumps(server)

        # An org key cannot make Backline run a command: stdio is the operator's.
        key = http.post(
            f"/v1/orgs/{tenant.org_id}/keys",
            json={"name": "admin", "scopes": ["admin"]},
            headers=ADMIN,
        ).json()["token"]
        stdio = http.post(
            f"/v1/orgs/{tenant.org_id}/tools/servers",
            json={"name": "evil", "transport": "stdio", "command": ["sh", "-c", "id"]},
            headers={"Authorization": f"Bearer {key}"},
        )
        assert stdio.status_code == 403, stdio.text

        enabled = runner.invoke(
            cli_app, ["tools", "enable", tenant.agent_id, "order_status", "--timeout", "3"], env=env
        )
        assert enabled.exit_code == 0, enabled.output
        assert json.loads(enabled.output)["timeout_s"] == 3
        r = http.put(
            f"/v1/agents/{tenant.agent_id}/tools/orders/refund_order", json={}, headers=ADMIN
        )
        assert r.status_code == 200 and r.json()["idempotent"] is False, r.text

        exported = http.get(
            f"/v1/agents/{tenant.agent_id}/platforms/vapi/tools", headers=ADMIN
        ).json()
        by_name = {t["function"]["name"]: t for t in exported}
        assert {"memory_search", "order_status", "refund_order"} <= set(by_name)
        refund_params = by_name["refund_order"]["function"]["parameters"]
        assert "idempotency_key" not in refund_params["properties"]
        assert "idempotency_key" not in refund_params.get("required", [])

        body = tool_call(DANA, "order_status", {"order_id": "1042"})
        call_id = body["message"]["call"]["id"]
        r = http.post(tenant.webhook, content=raw(body), headers=tenant.vapi_headers)
        assert r.status_code == 200, r.text
        result = r.json()["results"][0]
        assert result["toolCallId"] == "call_Zs9Qm2P1aB7c"
        assert '"status":"delivered"' in result["result"] and "\n" not in result["result"]

        bad = tool_call(DANA, "refund_order", {"order_id": 1042}, call_id=call_id)
        r = http.post(tenant.webhook, content=raw(bad), headers=tenant.vapi_headers)
        assert "don't fit its schema" in r.json()["results"][0]["error"]

        # Written in the webhook's own commit, before it answered: no waiting.
        stored = {e.data["tool"]: e for e in _tool_events(stack, call_id)}
        assert set(stored) == {"order_status", "refund_order"}
        assert stored["order_status"].data["status"] == "ok"
        assert stored["order_status"].caller_hash is not None
        assert stored["refund_order"].data["status"] == "invalid_arguments"
        with Session(stack.engine) as s:
            audits = list(
                s.exec(
                    select(AuditEvent).where(
                        AuditEvent.org_id == tenant.org_id, AuditEvent.action == "tool.call"
                    )
                )
            )
        # order_status is read-only: on the trace, not in the audit trail.
        assert {a.detail["tool"] for a in audits} == {"refund_order"}
        assert all(a.actor == f"agent:{tenant.agent_id}" for a in audits)
        # The header secret is stored encrypted and never echoed, logged or audited.
        with Session(stack.engine) as s:
            row = s.exec(select(McpServer).where(McpServer.org_id == tenant.org_id)).one()
            added = s.exec(
                select(AuditEvent).where(
                    AuditEvent.org_id == tenant.org_id, AuditEvent.action == "tool_server.add"
                )
            ).one()
        assert row.secrets_encrypted and ORDERS_KEY not in row.secrets_encrypted
        assert added.detail["secret_headers"] == ["X-Request-Source"]
        assert added.detail["bearer_token"] is True
        assert ORDERS_KEY not in json.dumps(added.detail)

        status = http.get(f"/v1/orgs/{tenant.org_id}/tools/status", headers=ADMIN).json()
        assert status["servers"][0]["breaker"]["state"] == "closed"
        assert status["metrics"]["order_status"]["by_status"] == {"ok": 1}
        metrics = http.get(f"/v1/orgs/{tenant.org_id}/tools/metrics", headers=ADMIN).text
        assert f'backline_tool_breaker_state{{org="{tenant.org_id}",server="orders"}} 0' in metrics

    # The CLI drives the same routes.
    def cli(*args: str) -> Any:
        out = runner.invoke(cli_app, ["tools", *args], env=env)
        assert out.exit_code == 0, out.output
        return json.loads(out.output)

    listed = await asyncio.to_thread(cli, "servers", "list", tenant.org_id)
    assert [s["name"] for s in listed] == ["orders"]
    refreshed = await asyncio.to_thread(cli, "servers", "refresh", tenant.org_id, "orders")
    assert refreshed["error"] is None and "list_refunds" in refreshed["tools"]
    tools = await asyncio.to_thread(cli, "list", tenant.org_id, "--agent", tenant.agent_id)
    assert {t["name"]: t["enabled"] for t in tools}["refund_order"] is True
    called = await asyncio.to_thread(
        cli, "call", tenant.agent_id, "order_status", "--args", '{"order_id": "1043"}'
    )
    assert called["status"] == "ok" and "shipped" in called["result"]
    status = await asyncio.to_thread(cli, "status", tenant.org_id, "--json")
    assert status["metrics"]["order_status"]["calls"] == 2
    disabled = await asyncio.to_thread(cli, "disable", tenant.agent_id, "order_status")
    assert disabled["status"] == "disabled"
    # Removing the server disables the rest; API processes started later will not warm it.
    removed = await asyncio.to_thread(cli, "servers", "remove", tenant.org_id, "orders")
    assert removed["name"] == "orders"
    with stack.http() as http:
        left = http.get(f"/v1/agents/{tenant.agent_id}/tools", headers=ADMIN).json()
    assert left == []
    for command in (
        ["tools", "--help"],
        ["tools", "servers", "add", "--help"],
        ["tools", "servers", "list", "--help"],
        ["tools", "servers", "refresh", "--help"],
        ["tools", "list", "--help"],
        ["tools", "enable", "--help"],
        ["tools", "disable", "--help"],
        ["tools", "call", "--help"],
        ["tools", "status", "--help"],
    ):
        assert runner.invoke(cli_app, command).exit_code == 0, command


async def test_backline_serves_an_agents_tools_as_an_mcp_endpoint(
    stack: Stack, orders_server: HttpServer
) -> None:
    with stack.http() as http:
        tenant = create_tenant(http)
        _register_orders(http, tenant.org_id, orders_server.url)
        r = http.put(f"/v1/agents/{tenant.agent_id}/tools/order_status", json={}, headers=ADMIN)
        assert r.status_code == 200, r.text
        viewer = http.post(
            f"/v1/orgs/{tenant.org_id}/keys",
            json={"name": "viewer", "scopes": ["viewer"]},
            headers=ADMIN,
        ).json()["token"]
    url = f"{stack.api.url}/v1/agents/{tenant.agent_id}/mcp"

    # The agent's own tool credential (its VAPI bearer token) works as the bearer.
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {tenant.vapi_token}"}) as h,
        Client(streamable_http_client(url, http_client=h)) as client,
    ):
        names = {t.name for t in (await client.list_tools()).tools}
        assert {"memory_search", "order_status"} <= names
        result = await client.call_tool("order_status", {"order_id": "1044"})
        assert not result.is_error
        assert "processing" in result.content[0].text  # type: ignore[union-attr]
        bad = await client.call_tool("order_status", {})
        assert bad.is_error and "required property" in bad.content[0].text  # type: ignore[union-attr]

    async with httpx.AsyncClient() as plain:
        initialize = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
        headers = {"Accept": "application/json, text/event-stream"}
        missing = await plain.post(url, json=initialize, headers=headers)
        wrong = await plain.post(
            url, json=initialize, headers={**headers, "Authorization": "Bearer nope"}
        )
        weak = await plain.post(
            url, json=initialize, headers={**headers, "Authorization": f"Bearer {viewer}"}
        )
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    assert wrong.status_code == 401
    assert weak.status_code == 403 and "release" in weak.json()["detail"]
    with stack.http() as http:
        r = http.delete(f"/v1/orgs/{tenant.org_id}/tools/servers/orders", headers=ADMIN)
        assert r.status_code == 200, r.text
