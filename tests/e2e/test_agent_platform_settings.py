"""An agent's per-platform settings through the admin API: the document is checked by each
platform's connector (422 naming the platform or key), the older top-level VAPI fields still
read and write it, and VAPI's assistant-request reply answers with what it holds."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.conftest import Stack
from tests.helpers import ADMIN, assistant_request, create_tenant, raw

pytestmark = [pytest.mark.postgres, pytest.mark.temporal]
DANA = "+14155550123"
INLINE = {"name": "Inline assistant", "model": {"provider": "openai", "model": "gpt-4o"}}


def _org(http: httpx.Client) -> str:
    org_id = f"org-{uuid.uuid4().hex[:8]}"
    r = http.post("/v1/orgs", json={"id": org_id, "name": "Settings org"}, headers=ADMIN)
    assert r.status_code == 201, r.text
    return org_id


def _create(http: httpx.Client, org_id: str, **fields: Any) -> httpx.Response:
    agent_id = f"agent-{uuid.uuid4().hex[:8]}"
    return http.post(
        f"/v1/orgs/{org_id}/agents", json={"id": agent_id, "name": "A", **fields}, headers=ADMIN
    )


def _reply(http: httpx.Client, agent_id: str, token: str) -> dict[str, Any]:
    r = http.post(
        f"/v1/webhooks/vapi/{agent_id}",
        content=raw(assistant_request(DANA)),
        headers={"Authorization": f"Bearer {token}", "content-type": "application/json"},
    )
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def test_the_older_vapi_fields_are_still_accepted_and_returned(stack: Stack) -> None:
    with stack.http() as http:
        org_id = _org(http)
        r = _create(http, org_id, vapi_assistant_id="asst-old", vapi_assistant=INLINE)
        assert r.status_code == 201, r.text
        agent = r.json()
        assert agent["platform_settings"] == {
            "vapi": {"assistant_id": "asst-old", "assistant": INLINE}
        }
        assert agent["vapi_assistant_id"] == "asst-old" and agent["vapi_assistant"] == INLINE
        got = http.get(f"/v1/agents/{agent['id']}", headers=ADMIN).json()
        assert got["vapi_assistant_id"] == "asst-old" and got["vapi_assistant"] == INLINE
        assert got["platform_settings"] == agent["platform_settings"]
        listed = http.get(f"/v1/orgs/{org_id}/agents", headers=ADMIN).json()
        assert [a["vapi_assistant_id"] for a in listed] == ["asst-old"]
        bare = _create(http, org_id).json()
        assert bare["platform_settings"] == {}
        assert bare["vapi_assistant_id"] is None and bare["vapi_assistant"] is None


async def test_platform_settings_are_accepted_and_served_on_assistant_request(
    stack: Stack,
) -> None:
    with stack.http() as http:
        tenant = create_tenant(http, assistant_id="asst-123")  # the older field
        assert _reply(http, tenant.agent_id, tenant.vapi_token)["assistantId"] == "asst-123"
        r = http.patch(
            f"/v1/agents/{tenant.agent_id}",
            json={"platform_settings": {"vapi": {"assistant": INLINE}, "retell": {}}},
            headers=ADMIN,
        )
        assert r.status_code == 200, r.text
        assert r.json()["platform_settings"] == {"vapi": {"assistant": INLINE}, "retell": {}}
        assert r.json()["vapi_assistant_id"] is None and r.json()["vapi_assistant"] == INLINE
        reply = _reply(http, tenant.agent_id, tenant.vapi_token)
        assert "assistantId" not in reply and reply["assistant"]["name"] == "Inline assistant"

        created = _create(
            http, tenant.org_id, platform_settings={"vapi": {"assistant_id": "asst-new"}}
        )
        assert created.status_code == 201, created.text
        assert created.json()["vapi_assistant_id"] == "asst-new"


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"nope": {}}, "platform_settings.nope"),
        ({"vapi": {"voice": "x"}}, "platform_settings.vapi.voice"),
        ({"vapi": {"assistant": "not an object"}}, "platform_settings.vapi.assistant"),
        ({"vapi": {"assistant_id": 42}}, "platform_settings.vapi.assistant_id"),
        ({"vapi": {"assistant_id": "x" * 257}}, "platform_settings.vapi.assistant_id"),
        ({"retell": {"agent_id": "r"}}, "platform_settings.retell.agent_id"),
    ],
)
async def test_bad_platform_settings_answer_422_naming_the_key(
    stack: Stack, settings: dict[str, Any], named: str
) -> None:
    with stack.http() as http:
        org_id = _org(http)
        r = _create(http, org_id, platform_settings=settings)
        assert r.status_code == 422 and named in r.json()["detail"], r.text
        agent_id = _create(http, org_id).json()["id"]
        r = http.patch(
            f"/v1/agents/{agent_id}", json={"platform_settings": settings}, headers=ADMIN
        )
        assert r.status_code == 422 and named in r.json()["detail"], r.text
        assert http.get(f"/v1/agents/{agent_id}", headers=ADMIN).json()["platform_settings"] == {}
    if named == "platform_settings.vapi.assistant":
        with stack.http() as http:
            r = _create(http, _org(http), vapi_assistant="not an object")
            assert r.status_code == 422, r.text


async def test_credential_kinds_come_from_the_platforms(stack: Stack) -> None:
    with stack.http() as http:
        tenant = create_tenant(http)
        url = f"/v1/agents/{tenant.agent_id}/credentials"
        secret = "a-long-enough-secret"
        r = http.put(f"{url}/nope", json={"kind": "bearer", "secret": secret}, headers=ADMIN)
        assert r.status_code == 422, r.text
        r = http.put(f"{url}/retell", json={"kind": "bearer", "secret": secret}, headers=ADMIN)
        assert r.status_code == 422 and "api_key" in r.json()["detail"], r.text
        for platform, kind in (("retell", "api_key"), ("bland", "tool_token"), ("vapi", "hmac")):
            r = http.put(f"{url}/{platform}", json={"kind": kind, "secret": secret}, headers=ADMIN)
            assert r.status_code == 200 and r.json()["kind"] == kind, r.text
