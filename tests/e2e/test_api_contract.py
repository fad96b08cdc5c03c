"""The edge's contract: bad input answers a clear 4xx, is recorded, and loses nothing; scopes
guard every route; forgetting a caller erases them everywhere."""

from __future__ import annotations

import uuid

import pytest
from sqlmodel import Session, select

from core.calls.models import RejectedWebhook
from tests.conftest import ADMIN_TOKEN, Stack, async_wait_for
from tests.helpers import ADMIN, DANA_CALL_1, assistant_request, create_tenant, end_of_call, raw

pytestmark = [pytest.mark.postgres, pytest.mark.temporal]
DANA = "+14155550123"


def _rejections(stack: Stack, agent_id: str) -> list[RejectedWebhook]:
    with Session(stack.engine) as s:
        return list(s.exec(select(RejectedWebhook).where(RejectedWebhook.agent_id == agent_id)))


async def test_bad_credentials_answer_401_and_are_recorded(stack: Stack) -> None:
    with stack.http() as http:
        tenant = create_tenant(http)
        r = http.post(
            tenant.webhook,
            content=raw(assistant_request(DANA)),
            headers={"Authorization": "Bearer wrong", "content-type": "application/json"},
        )
    assert r.status_code == 401
    assert r.json()["error"] == "WebhookSignatureError"
    rows = _rejections(stack, tenant.agent_id)
    assert [(x.reason, x.status_code) for x in rows] == [("WebhookSignatureError", 401)]
    assert rows[0].payload is not None and "assistant-request" in rows[0].payload


async def test_malformed_bodies_answer_4xx_naming_the_problem_and_are_recorded(
    stack: Stack,
) -> None:
    body = assistant_request(DANA)
    del body["message"]["call"]["id"]
    with stack.http() as http:
        tenant = create_tenant(http)
        missing = http.post(tenant.webhook, content=raw(body), headers=tenant.vapi_headers)
        not_json = http.post(tenant.webhook, content=b"{not json", headers=tenant.vapi_headers)
        listed = http.get("/v1/rejected-webhooks", params={"org_id": tenant.org_id}, headers=ADMIN)
    assert missing.status_code == 422 and "message.call.id" in missing.json()["detail"]
    assert not_json.status_code == 400 and not_json.json()["error"] == "InvalidJsonError"
    reasons = sorted(x["reason"] for x in listed.json())
    assert reasons == ["InvalidJsonError", "MalformedWebhookError"]


async def test_unknown_agent_answers_404(stack: Stack) -> None:
    with stack.http() as http:
        r = http.post("/v1/webhooks/vapi/no-such-agent", content=raw(assistant_request(DANA)))
    assert r.status_code == 404 and "no-such-agent" in r.json()["detail"]


async def test_scopes_guard_routes_and_keys_are_bound_to_their_org(stack: Stack) -> None:
    with stack.http() as http:
        tenant = create_tenant(http)
        other = create_tenant(http)
        viewer = http.post(
            f"/v1/orgs/{tenant.org_id}/keys",
            json={"name": "v", "scopes": ["viewer"]},
            headers=ADMIN,
        ).json()["token"]
        admin = http.post(
            f"/v1/orgs/{tenant.org_id}/keys", json={"name": "a", "scopes": ["admin"]}, headers=ADMIN
        ).json()["token"]
        as_viewer = {"Authorization": f"Bearer {viewer}"}
        as_admin = {"Authorization": f"Bearer {admin}"}
        assert http.get(f"/v1/agents/{tenant.agent_id}", headers=as_viewer).status_code == 200
        assert http.get(f"/v1/agents/{other.agent_id}", headers=as_viewer).status_code == 403
        r = http.put(
            f"/v1/agents/{tenant.agent_id}/credentials/vapi",
            json={"kind": "bearer", "secret": "another-token"},
            headers=as_viewer,
        )
        assert r.status_code == 403 and "admin" in r.json()["detail"]
        assert (
            http.post("/v1/orgs", json={"id": "x-org", "name": "x"}, headers=as_admin).status_code
            == 403
        )
        assert http.get("/v1/calls", headers={"Authorization": "Bearer nope"}).status_code == 401
        assert http.get("/v1/calls").status_code == 401
        bad = http.post(
            f"/v1/orgs/{tenant.org_id}/keys", json={"name": "x", "scopes": ["root"]}, headers=ADMIN
        )
        assert bad.status_code == 422 and "scopes" in bad.json()["detail"]


async def test_forgetting_a_caller_through_the_api_erases_their_memory(stack: Stack) -> None:
    with stack.http() as http:
        tenant = create_tenant(http)
        call_id = f"call-{uuid.uuid4().hex[:8]}"
        http.post(
            tenant.webhook,
            content=raw(end_of_call(call_id, DANA, DANA_CALL_1)),
            headers=tenant.vapi_headers,
        )
        handle = http.post(
            f"/v1/agents/{tenant.agent_id}/callers/lookup",
            json={"number": "(415) 555-0123"},
            headers=ADMIN,
        ).json()
        assert handle["display"] == "+1••••••0123"
        memory_url = f"/v1/agents/{tenant.agent_id}/callers/{handle['caller_hash']}/memory"

        def _has_memory() -> bool:
            return bool(http.get(memory_url, headers=ADMIN).json()["summaries"])

        await async_wait_for(_has_memory, timeout=30)
        search = http.post(f"{memory_url}/search", json={"query": "water heater"}, headers=ADMIN)
        assert search.status_code == 200 and "water heater" in search.json()[0]["text"].lower()

        r = http.delete(
            f"/v1/agents/{tenant.agent_id}/callers/{handle['caller_hash']}", headers=ADMIN
        )
        assert r.status_code == 200 and r.json()["rows_deleted"] >= 4
        timeline = http.get(memory_url, headers=ADMIN).json()
        assert timeline["summaries"] == [] and timeline["facts"] == []
        assert (
            http.post(f"{memory_url}/search", json={"query": "water heater"}, headers=ADMIN).json()
            == []
        )
        calls = http.get("/v1/calls", params={"org_id": tenant.org_id}, headers=ADMIN).json()
        assert calls == []
        audit = http.get("/v1/audit", params={"org_id": tenant.org_id}, headers=ADMIN).json()
        assert any(e["action"] == "caller.forget" for e in audit)
        assert DANA not in str(audit) and "4155550123" not in str(audit)
        # Erasure never touches the audit chain: it still verifies.
        chain = http.get("/v1/audit/verify", params={"org_id": tenant.org_id}, headers=ADMIN)
        assert chain.json()["ok"] is True, chain.text


def test_admin_token_constant_is_the_one_tests_configure() -> None:
    assert ADMIN["Authorization"] == f"Bearer {ADMIN_TOKEN}"


async def test_unknown_routes_answer_the_standard_error_body(stack: Stack) -> None:
    with stack.http() as http:
        missing = http.get("/v1/no-such-route")
        wrong_method = http.delete("/healthz")
    assert missing.status_code == 404 and missing.json()["error"] == "NotFoundError"
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error"] == "MethodNotAllowedError"
