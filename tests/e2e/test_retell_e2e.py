"""Retell end to end, on Postgres, the Temporal dev server and the real embedder: signed
webhooks -> edge -> PostCallWorkflow -> memory -> the next call_inbound and custom functions.
Retell itself is replaced by requests in its wire format, signed over the raw bytes."""

from __future__ import annotations

import asyncio
import re
import uuid
from typing import Any

import httpx
import pytest
from sqlmodel import Session, col, func, select

from connectors.retell.webhooks import SIGNATURE_HEADER, sign
from core.calls.models import WebhookInbox
from core.memory.models import Memory
from tests.conftest import Stack, async_wait_for, post_call_result
from tests.helpers import ADMIN, DANA_CALL_1, raw
from tests.retell_helpers import (
    RetellTenant,
    call_analyzed,
    call_ended,
    call_inbound,
    create_org_and_agent,
    create_retell_tenant,
    function_call,
)

pytestmark = [pytest.mark.postgres, pytest.mark.temporal]
DANA = "+14155550123"
BOB = "+14155550188"


def _new_call_id() -> str:
    return f"call_{uuid.uuid4().hex}"


def _inbound_variables(http: httpx.Client, tenant: RetellTenant, number: str) -> dict[str, str]:
    r = tenant.post(http, "inbound", call_inbound(number))
    assert r.status_code == 200, r.text
    reply = r.json()["call_inbound"]
    assert reply["metadata"]["backline_agent_id"] == tenant.agent_id
    variables: dict[str, str] = reply["dynamic_variables"]
    assert all(isinstance(v, str) for v in variables.values())
    return variables


def _inbox_rows(stack: Stack, call_id: str) -> int:
    with Session(stack.engine) as s:
        return int(
            s.exec(
                select(func.count())
                .select_from(WebhookInbox)
                .where(WebhookInbox.platform == "retell", WebhookInbox.call_id == call_id)
            ).one()
        )


def _has_memory(stack: Stack, call_id: str) -> bool:
    with Session(stack.engine) as s:
        return s.exec(select(Memory).where(Memory.source_call_id == call_id)).first() is not None


async def _post_call_runs(stack: Stack, call_id: str) -> list[str]:
    """Every PostCallWorkflow run for this call, any revision."""
    return [
        w.id
        async for w in stack.client.list_workflows("WorkflowType = 'PostCallWorkflow'")
        if re.fullmatch(rf"post-call-agent-\w+-retell-{call_id}(-r\d+)?", w.id)
    ]


async def _ingested_call(stack: Stack, http: httpx.Client, tenant: RetellTenant) -> str:
    """A Retell call whose call_ended has gone through PostCallWorkflow; returns its id."""
    call_id = _new_call_id()
    r = tenant.post(http, "events", call_ended(call_id, DANA, DANA_CALL_1))
    assert r.status_code == 200, r.text
    assert r.json()["workflow_id"] == f"post-call-{tenant.agent_id}-retell-{call_id}"
    result = await post_call_result(stack.client, f"post-call-{tenant.agent_id}-retell-{call_id}")
    assert result.status == "processed"
    return call_id


def _call_detail(http: httpx.Client, tenant: RetellTenant, call_id: str) -> dict[str, Any]:
    r = http.get(f"/v1/calls/{tenant.agent_id}/retell/{call_id}", headers=ADMIN)
    assert r.status_code == 200, r.text
    detail: dict[str, Any] = r.json()
    return detail


def _rejections(http: httpx.Client, org_id: str) -> list[dict[str, Any]]:
    r = http.get("/v1/rejected-webhooks", params={"org_id": org_id}, headers=ADMIN)
    assert r.status_code == 200, r.text
    rows: list[dict[str, Any]] = r.json()
    return rows


async def test_unknown_caller_inbound_gets_empty_backline_context(stack: Stack) -> None:
    with stack.http() as http:
        tenant = create_retell_tenant(http)
        variables = _inbound_variables(http, tenant, DANA)
    assert variables["backline_caller_known"] == "no"
    assert variables["backline_memory_summary"] == ""
    assert variables["backline_caller_facts"] == ""
    assert variables["backline_call_count"] == "0"


async def test_call_ended_builds_memory_that_the_next_call_inbound_carries(stack: Stack) -> None:
    with stack.http() as http:
        tenant = create_retell_tenant(http)
        other = create_retell_tenant(http)
        assert _inbound_variables(http, tenant, DANA)["backline_caller_known"] == "no"

        call_id = _new_call_id()
        r = tenant.post(http, "events", call_ended(call_id, DANA, DANA_CALL_1))
        assert r.status_code == 200, r.text
        assert r.json()["workflow_id"] == f"post-call-{tenant.agent_id}-retell-{call_id}"
        await async_wait_for(lambda: _has_memory(stack, call_id), timeout=30)

        after = _inbound_variables(http, tenant, DANA)
        assert after["backline_caller_known"] == "yes"
        assert "water heater" in after["backline_memory_summary"].lower()
        assert "contact preference: email" in after["backline_caller_facts"]
        assert "name: Dana" in after["backline_caller_facts"]
        # Another caller of this agent, and the same caller on another tenant, see nothing.
        assert _inbound_variables(http, tenant, BOB)["backline_caller_known"] == "no"
        assert _inbound_variables(http, other, DANA)["backline_memory_summary"] == ""

        detail = _call_detail(http, tenant, call_id)
        assert detail["ended_reason"] == "caller_hangup"
        assert detail["analysis"]["platform_ended_reason"] == "user_hangup"
        assert [t["role"] for t in detail["transcript"]][:2] == ["agent", "caller"]
        assert detail["caller_display"].endswith("0123")
        assert "4155550123" not in detail["caller_display"]


async def test_memory_search_in_nested_form_answers_with_the_callers_memory(stack: Stack) -> None:
    with stack.http() as http:
        tenant = create_retell_tenant(http)
        await _ingested_call(stack, http, tenant)
        live = _new_call_id()
        r = tenant.post(
            http,
            "functions/memory_search",
            function_call(live, DANA, "memory_search", {"query": "what broke at home"}),
        )
        assert r.status_code == 200, r.text
        assert set(r.json()) == {"result"}
        assert "water heater" in r.json()["result"].lower()

        # The caller is the one on this call: another number gets no one else's memory.
        r = tenant.post(
            http,
            "functions/memory_search",
            function_call(live, BOB, "memory_search", {"query": "what broke at home"}),
        )
        assert r.status_code == 200
        assert "water heater" not in r.text.lower()


async def test_memory_search_with_args_at_root_answers_a_clear_error_not_a_guess(
    stack: Stack,
) -> None:
    with stack.http() as http:
        tenant = create_retell_tenant(http)
        await _ingested_call(stack, http, tenant)
        r = tenant.post(http, "functions/memory_search", {"query": "what broke at home"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"error"}
    assert "caller" in body["error"]
    assert "water heater" not in r.text.lower()


async def test_unknown_function_answers_an_error_with_200(stack: Stack) -> None:
    with stack.http() as http:
        tenant = create_retell_tenant(http)
        r = tenant.post(
            http, "functions/launch_rocket", function_call(_new_call_id(), DANA, "x", {})
        )
    assert r.status_code == 200
    assert "launch_rocket" in r.json()["error"]


async def test_call_analyzed_enriches_the_call_and_starts_no_second_workflow(
    stack: Stack,
) -> None:
    with stack.http() as http:
        tenant = create_retell_tenant(http)
        call_id = await _ingested_call(stack, http, tenant)
        assert _call_detail(http, tenant, call_id)["analysis"].get("sentiment") is None

        analyzed = call_analyzed(call_id, DANA, DANA_CALL_1)
        for _ in range(2):  # Retell retries; the enrichment is an upsert
            r = tenant.post(http, "events", analyzed)
            assert r.status_code == 200, r.text
            assert "workflow_id" not in r.json()

        detail = _call_detail(http, tenant, call_id)
        assert detail["analysis"]["sentiment"] == "Positive"
        assert detail["analysis"]["platform_success"] is True
        assert detail["analysis"]["data"] == {"intent": "order_status"}
        assert "order 1042" in detail["platform_summary"]
        assert detail["status"] == "processed"  # the workflow's result is kept
        assert [e["type"] for e in detail["events"]].count("call_analyzed") == 2
    assert _inbox_rows(stack, call_id) == 1
    assert await _post_call_runs(stack, call_id) == [
        f"post-call-{tenant.agent_id}-retell-{call_id}"
    ]


async def test_call_analyzed_before_the_workflow_keeps_its_sentiment(stack: Stack) -> None:
    with stack.http() as http:
        tenant = create_retell_tenant(http)
        call_id = _new_call_id()
        r = tenant.post(http, "events", call_analyzed(call_id, DANA, DANA_CALL_1))
        assert r.status_code == 200, r.text
        r = tenant.post(http, "events", call_ended(call_id, DANA, DANA_CALL_1))
        assert r.status_code == 200, r.text
        await post_call_result(stack.client, f"post-call-{tenant.agent_id}-retell-{call_id}")
        detail = _call_detail(http, tenant, call_id)
    assert detail["status"] == "processed"
    assert detail["analysis"]["sentiment"] == "Positive"
    assert detail["analysis"]["platform_success"] is True


async def test_call_analyzed_before_the_workflow_keeps_its_summary(stack: Stack) -> None:
    with stack.http() as http:
        tenant = create_retell_tenant(http)
        call_id = _new_call_id()
        assert tenant.post(http, "events", call_analyzed(call_id, DANA, DANA_CALL_1)).is_success
        assert tenant.post(http, "events", call_ended(call_id, DANA, DANA_CALL_1)).is_success
        await post_call_result(stack.client, f"post-call-{tenant.agent_id}-retell-{call_id}")
        detail = _call_detail(http, tenant, call_id)
    assert detail["platform_summary"] == "Caller asked about order 1042; told it was delivered."


async def test_call_ended_delivered_three_times_runs_one_workflow(stack: Stack) -> None:
    with stack.http() as http:
        tenant = create_retell_tenant(http)
    call_id = _new_call_id()
    content = raw(call_ended(call_id, DANA, DANA_CALL_1))

    async def deliver(client: httpx.AsyncClient) -> httpx.Response:
        # Each retry is signed afresh (new timestamp) over the same body.
        return await client.post(
            tenant.url("events"),
            content=content,
            headers={
                SIGNATURE_HEADER: sign(content, tenant.api_key),
                "content-type": "application/json",
            },
        )

    async with httpx.AsyncClient(base_url=stack.api.url, timeout=30) as client:
        replies = await asyncio.gather(*[deliver(client) for _ in range(3)])
    assert [r.status_code for r in replies] == [200, 200, 200]
    assert sorted(r.json()["duplicate"] for r in replies) == [False, True, True]
    assert {r.json()["workflow_id"] for r in replies} == {
        f"post-call-{tenant.agent_id}-retell-{call_id}"
    }

    result = await post_call_result(stack.client, f"post-call-{tenant.agent_id}-retell-{call_id}")
    assert result.status == "processed"
    assert _inbox_rows(stack, call_id) == 1
    assert await _post_call_runs(stack, call_id) == [
        f"post-call-{tenant.agent_id}-retell-{call_id}"
    ]
    with Session(stack.engine) as s:
        memories = s.exec(
            select(func.count()).select_from(Memory).where(col(Memory.source_call_id) == call_id)
        ).one()
    assert memories == 1


async def test_bad_or_missing_signature_is_401_and_recorded(stack: Stack) -> None:
    with stack.http() as http:
        tenant = create_retell_tenant(http)
        call_id = _new_call_id()
        body = call_ended(call_id, DANA, DANA_CALL_1)
        content = raw(body)
        wrong = RetellTenant(tenant.org_id, tenant.agent_id, "key_someone_else")

        r = wrong.post(http, "events", content)
        assert r.status_code == 401, r.text
        assert r.json()["error"] == "WebhookSignatureError"
        assert "does not match" in r.json()["detail"]

        r = http.post(tenant.url("events"), content=content)  # no X-Retell-Signature at all
        assert r.status_code == 401
        assert "X-Retell-Signature" in r.json()["detail"]

        rows = _rejections(http, tenant.org_id)
        assert len(rows) == 2
        assert {(row["reason"], row["status_code"], row["platform"]) for row in rows} == {
            ("WebhookSignatureError", 401, "retell")
        }
    assert _inbox_rows(stack, call_id) == 0


async def test_agent_without_retell_key_answers_401_naming_the_credential_route(
    stack: Stack,
) -> None:
    with stack.http() as http:
        org_id, agent_id = create_org_and_agent(http)
        no_key = RetellTenant(org_id, agent_id, "key_anything")
        r = no_key.post(http, "inbound", call_inbound(DANA))
        assert r.status_code == 401
        assert f"PUT /v1/agents/{agent_id}/credentials/retell" in r.json()["detail"]
        assert _rejections(http, org_id)[0]["reason"] == "WebhookSignatureError"

        r = RetellTenant(org_id, "agent-does-not-exist", "k").post(http, "events", {})
        assert r.status_code == 404


async def test_malformed_body_is_422_naming_the_field_and_recorded(stack: Stack) -> None:
    with stack.http() as http:
        tenant = create_retell_tenant(http)
        body = call_ended(_new_call_id(), DANA, DANA_CALL_1)
        del body["call"]["call_id"]
        r = tenant.post(http, "events", body)
        assert r.status_code == 422, r.text
        assert r.json()["error"] == "MalformedWebhookError"
        assert "call.call_id" in r.json()["detail"]

        inbound = call_inbound(DANA)
        del inbound["call_inbound"]["from_number"]
        r = tenant.post(http, "inbound", inbound)
        assert r.status_code == 422
        assert "call_inbound.from_number" in r.json()["detail"]

        r = tenant.post(http, "events", b"{not json")
        assert r.status_code == 400
        assert r.json()["error"] == "InvalidJsonError"

        reasons = [row["reason"] for row in _rejections(http, tenant.org_id)]
    assert sorted(reasons) == ["InvalidJsonError", "MalformedWebhookError", "MalformedWebhookError"]


async def test_call_started_and_transcript_updates_are_recorded_on_the_call(
    stack: Stack,
) -> None:
    with stack.http() as http:
        tenant = create_retell_tenant(http)
        call_id = _new_call_id()
        started = call_ended(call_id, DANA, DANA_CALL_1)
        started["event"] = "call_started"
        r = tenant.post(http, "events", started)
        assert r.status_code == 200, r.text
        started["event"] = "transcript_updated"
        assert tenant.post(http, "events", started).status_code == 200
        started["event"] = "transfer_started"
        assert tenant.post(http, "events", started).status_code == 200

        detail = _call_detail(http, tenant, call_id)
    assert detail["caller_display"].endswith("0123")
    assert [(e["type"], e["platform_type"]) for e in detail["events"]] == [
        ("call_started", "call_started"),
        ("transcript_update", "transcript_update"),
        ("informational", "transfer_started"),
    ]
    assert detail["events"][1]["data"]["role"] == "agent"
    assert detail["events"][2]["data"]["disconnection_reason"] == "user_hangup"
