"""The custom platform end to end, through the running API: a team's own voice stack posts
signed messages of Backline's contract to one URL and gets context, tool results, knowledge and
an inbox receipt back; what it gets wrong is a recorded 4xx naming the reason."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import pytest
from sqlmodel import Session, select

from core.memory.models import Memory
from fakes import custom
from fakes.common import ADMIN
from fakes.custom import CustomTenant, create_custom_tenant
from tests.conftest import Stack, async_wait_for
from tests.helpers import DANA_CALL_1

pytestmark = [pytest.mark.postgres, pytest.mark.temporal]
DANA = "+14155550123"


def _rejections(http: httpx.Client, tenant: CustomTenant) -> list[dict[str, Any]]:
    r = http.get("/v1/rejected-webhooks", params={"org_id": tenant.org_id}, headers=ADMIN)
    assert r.status_code == 200, r.text
    return [row for row in r.json() if row["agent_id"] == tenant.agent_id]


async def test_a_call_from_start_to_memory_and_the_next_calls_context(stack: Stack) -> None:
    with stack.http() as http:
        tenant = create_custom_tenant(http)
        call_id = f"call-{uuid.uuid4().hex[:8]}"
        first = tenant.post(http, custom.call_started(DANA, call_id, variables={"plan": "gold"}))
        assert first.status_code == 200, first.text
        assert first.json()["version"] == "1" and first.json()["call_id"] == call_id
        assert first.json()["context"]["caller_known"] is False
        assert first.json()["prompt"] is None

        said = tenant.post(http, custom.transcript_update(call_id, DANA, "caller", "Hello?"))
        assert said.json() == {"version": "1", "status": "recorded"}

        tools = tenant.post(
            http,
            custom.tool_calls(
                DANA,
                [("t1", "memory_search", {"query": "water heater"}), ("t2", "no_such_tool", {})],
                call_id,
            ),
        )
        assert tools.status_code == 200, tools.text
        results = tools.json()["results"]
        assert [r["id"] for r in results] == ["t1", "t2"]
        assert "result" in results[0]
        assert "no_such_tool" in results[1]["error"]

        knowledge = tenant.post(
            http, custom.knowledge_request(DANA, query="what are your hours", call_id=call_id)
        )
        assert knowledge.status_code == 200, knowledge.text
        assert knowledge.json()["answer_status"] == "empty"
        assert knowledge.json()["documents"] == []

        ended = tenant.post(http, custom.call_ended(call_id, DANA, DANA_CALL_1))
        assert ended.status_code == 200, ended.text
        receipt = ended.json()
        assert receipt["version"] == "1" and receipt["status"] == "accepted"
        assert receipt["workflow_id"] == f"post-call-{tenant.agent_id}-custom-{call_id}"
        again = tenant.post(http, custom.call_ended(call_id, DANA, DANA_CALL_1))
        assert again.json()["duplicate"] is True

        def _memory() -> Memory | None:
            with Session(stack.engine) as s:
                return s.exec(select(Memory).where(Memory.source_call_id == call_id)).first()

        await async_wait_for(_memory, timeout=30)
        nxt = tenant.post(http, custom.call_started(DANA)).json()
        assert nxt["context"]["caller_known"] is True
        assert nxt["context"]["facts"]["contact_preference"] == "email"
        assert "water heater" in nxt["context"]["memory_summary"].lower()
        assert nxt["variables"]["backline_call_count"] == "1"

        detail = http.get(f"/v1/calls/{tenant.agent_id}/custom/{call_id}", headers=ADMIN)
        assert detail.status_code == 200, detail.text
        kinds = [e["type"] for e in detail.json()["events"]]
        for kind in ("context_request", "transcript_update", "tool_calls", "knowledge_request"):
            assert kind in kinds


async def test_what_a_sender_gets_wrong_is_a_recorded_4xx_naming_the_reason(stack: Stack) -> None:
    with stack.http() as http:
        tenant = create_custom_tenant(http)
        body = custom.call_started(DANA)
        stale = tenant.post(http, body, timestamp=int(time.time()) - 301)
        assert stale.status_code == 401
        assert stale.json()["error"] == "WebhookSignatureError"
        assert "too old" in stale.json()["detail"]
        future = tenant.post(http, body, timestamp=int(time.time()) + 400)
        assert future.status_code == 401 and "in the future" in future.json()["detail"]
        wrong = tenant.post(http, body, secrets=("not the secret",))
        assert wrong.status_code == 401 and "no Backline-Signature v1" in wrong.json()["detail"]
        unsigned = tenant.post(http, body, headers=custom.JSON)
        assert unsigned.status_code == 401 and "header is missing" in unsigned.json()["detail"]

        unknown = tenant.post(http, {**body, "type": "call.ringing"})
        assert unknown.status_code == 422
        assert "field 'type' is 'call.ringing'; accepted values:" in unknown.json()["detail"]
        version = tenant.post(http, {**body, "version": "2"})
        assert version.status_code == 422
        assert "field 'version' is '2'; accepted values: 1" in version.json()["detail"]
        not_json = tenant.post(http, b"{not json")
        assert not_json.status_code == 400

        # Rotation: the sender signs with the old and new secret while Backline switches.
        new_secret = f"custom-sign-{uuid.uuid4().hex[:16]}"
        both = (tenant.secret, new_secret)
        assert tenant.post(http, body, secrets=both).status_code == 200
        custom.set_secret(http, tenant.agent_id, new_secret)
        assert tenant.post(http, body, secrets=both).status_code == 200
        assert tenant.post(http, body).status_code == 401  # the old secret alone is retired

        rows = _rejections(http, tenant)
    reasons = sorted(r["reason"] for r in rows)
    assert reasons.count("WebhookSignatureError") == 5
    assert reasons.count("MalformedWebhookError") == 2
    assert all(r["platform"] == "custom" for r in rows)


async def test_tool_export_and_credentials_name_the_custom_platform(stack: Stack) -> None:
    with stack.http() as http:
        tenant = create_custom_tenant(http)
        r = http.get(f"/v1/agents/{tenant.agent_id}/platforms/custom/tools", headers=ADMIN)
        assert r.status_code == 200, r.text
        names = {t["function"]["name"] for t in r.json()}
        assert {"memory_search", "knowledge_search"} <= names
        assert all(t["url"].endswith(f"/v1/webhooks/custom/{tenant.agent_id}") for t in r.json())
        bad = http.put(
            f"/v1/agents/{tenant.agent_id}/credentials/custom",
            json={"kind": "bearer", "secret": "long enough secret"},
            headers=ADMIN,
        )
        assert bad.status_code == 422 and "signing_secret" in bad.text
