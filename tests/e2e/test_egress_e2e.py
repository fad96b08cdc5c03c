"""The egress policy through the real API (default settings: no allow-list): an organization's
keys cannot aim a knowledge URL source or an HTTP MCP server at loopback, private or link-local
targets (the local Temporal UI included), and a server registered before the policy existed is
refused when the gateway connects."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import httpx
import pytest

from core.db import session_scope
from core.tools.schemas import McpServerCreate
from core.tools.service import ToolRegistryService
from tests.conftest import SECRET_KEY, Stack
from tests.helpers import ADMIN, create_tenant

pytestmark = [pytest.mark.postgres, pytest.mark.temporal]


def _org_key(http: httpx.Client, org_id: str, scope: str) -> dict[str, str]:
    r = http.post(f"/v1/orgs/{org_id}/keys", json={"name": scope, "scopes": [scope]}, headers=ADMIN)
    assert r.status_code == 201, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def _refused(r: httpx.Response, klass: str) -> None:
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["error"] == "EgressDeniedError"
    assert klass in body["detail"] and "BACKLINE_EGRESS_ALLOW" in body["detail"]


async def test_tenants_cannot_aim_sources_or_mcp_servers_at_internal_addresses(
    stack: Stack,
) -> None:
    temporal_host = urlsplit(f"//{stack.settings.temporal_address}").hostname
    temporal_ui = f"http://{temporal_host}:{stack.settings.temporal_ui_port}"

    def _api() -> tuple[str, str]:
        with stack.http() as http:
            tenant = create_tenant(http)
            content = _org_key(http, tenant.org_id, "content")
            admin = _org_key(http, tenant.org_id, "admin")
            sources = f"/v1/agents/{tenant.agent_id}/knowledge/sources"
            for url, klass in (
                (f"{temporal_ui}/api/v1/namespaces/default/workflows", "loopback"),
                (f"http://localhost:{stack.settings.temporal_ui_port}/", "loopback"),
                ("http://[::ffff:127.0.0.1]:8233/", "IPv4-mapped loopback"),
                ("http://169.254.169.254/latest/meta-data/", "link-local"),
                ("http://10.0.0.7/wiki", "private"),
            ):
                r = http.post(
                    sources, json={"kind": "url", "name": "docs", "url": url}, headers=content
                )
                _refused(r, klass)
            assert http.get(sources, headers=content).json() == []

            # An unresolvable name passes registration (the fetch checks again); re-pointing
            # it at loopback is refused like a new source.
            r = http.post(
                sources,
                json={"kind": "url", "name": "later", "url": "https://docs.invalid/faq",
                      "refresh": False},
                headers=content,
            )  # fmt: skip
            assert r.status_code == 201, r.text
            sid = r.json()["source"]["id"]
            r = http.patch(
                f"/v1/knowledge/sources/{sid}",
                json={"url": f"{temporal_ui}/api/v1/namespaces"},
                headers=content,
            )
            _refused(r, "loopback")

            servers = f"/v1/orgs/{tenant.org_id}/tools/servers"
            for headers in (admin, ADMIN):  # not even the operator's token widens the policy
                r = http.post(
                    servers,
                    json={"name": "ui", "transport": "http", "url": f"{temporal_ui}/mcp"},
                    headers=headers,
                )
                _refused(r, "loopback")
            r = http.post(
                servers,
                json={"name": "meta", "transport": "http", "url": "http://[fc00::1]/mcp"},
                headers=admin,
            )
            _refused(r, "unique local")
            assert http.get(servers, headers=admin).json() == []
            return tenant.org_id, sid

    org_id, _sid = await asyncio.to_thread(_api)

    # A server registered before the policy (a row already in the database) is refused when
    # the gateway connects, and the refresh says why.
    with session_scope(stack.engine) as session:
        ToolRegistryService(session, SECRET_KEY).add_server(
            org_id,
            McpServerCreate(name="legacy", transport="http", url=f"{temporal_ui}/mcp"),
            "test",
            operator=True,
        )

    def _refresh() -> dict[str, object]:
        with stack.http() as http:
            r = http.post(f"/v1/orgs/{org_id}/tools/servers/legacy/refresh", headers=ADMIN)
            assert r.status_code == 200, r.text
            return dict(r.json())

    report = await asyncio.to_thread(_refresh)
    assert report["tools"] == []
    assert "EgressDeniedError" in str(report["error"]) and "loopback" in str(report["error"])
