"""Bland end to end: dynamic data -> post-call -> PostCallWorkflow -> memory -> the next call's
dynamic data and tools, replays, the delayed corrected-transcript POST, and every rejection
recorded; on Postgres, the Temporal dev server and the real embedder."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx
import pytest
from sqlmodel import Session, func, select

from connectors.bland.webhooks import sign
from core.calls.answering import Answer, AnsweringService
from core.calls.models import Call, WebhookInbox
from core.memory.models import Fact, Memory
from core.memory.schemas import CallerContext
from core.pii.phone import caller_hash
from orchestration.post_call_types import PostCallResult
from tests.bland_helpers import (
    BlandTenant,
    corrected_transcript,
    create_bland_tenant,
    dynamic_data,
    post_call,
    tool_request,
)
from tests.conftest import SECRET_KEY, Stack, async_wait_for, post_call_result
from tests.helpers import ADMIN, DANA_CALL_1, raw

pytestmark = [pytest.mark.postgres, pytest.mark.temporal]
DANA = "+14155550123"
BOB = "+14155550188"


def _count(engine, model, *where) -> int:  # type: ignore[no-untyped-def]
    with Session(engine) as s:
        return int(s.exec(select(func.count()).select_from(model).where(*where)).one())


def _context(http: httpx.Client, tenant: BlandTenant, number: str) -> dict[str, str]:
    r = tenant.dynamic_data(http, dynamic_data(number))
    assert r.status_code == 200, r.text
    body: dict[str, str] = r.json()
    return body


def _rejected(http: httpx.Client, tenant: BlandTenant) -> list[dict[str, Any]]:
    r = http.get("/v1/rejected-webhooks", params={"org_id": tenant.org_id}, headers=ADMIN)
    assert r.status_code == 200, r.text
    rows: list[dict[str, Any]] = r.json()
    return rows


def _sign(tenant: BlandTenant, body: bytes) -> str:
    assert tenant.signing_secret is not None
    return sign(body, tenant.signing_secret)


async def _finished(stack: Stack, workflow_id: str) -> PostCallResult:
    return await post_call_result(stack.client, workflow_id)


async def test_unknown_caller_gets_empty_context_then_the_post_call_is_remembered(
    stack: Stack,
) -> None:
    with stack.http() as http:
        tenant = create_bland_tenant(http)
        other = create_bland_tenant(http)

        first = _context(http, tenant, DANA)
        assert first["backline_caller_known"] == "no"
        assert first["backline_memory_summary"] == ""
        assert first["backline_call_count"] == "0"

        call_id = f"bland-{uuid.uuid4().hex[:8]}"
        r = tenant.post_call(http, post_call(call_id, DANA, DANA_CALL_1))
        assert r.status_code == 200, r.text
        assert r.json()["workflow_id"] == f"post-call-{tenant.agent_id}-bland-{call_id}"
        assert r.json()["duplicate"] is False

        await async_wait_for(
            lambda: _context(http, tenant, DANA)["backline_caller_known"] == "yes", timeout=30
        )
        after = _context(http, tenant, DANA)
        assert "water heater" in after["backline_memory_summary"].lower()
        assert "contact preference: email" in after["backline_caller_facts"]
        assert "name: Dana" in after["backline_caller_facts"]
        assert after["backline_call_count"] == "1"

        # Another caller of this agent, and the same caller on another tenant, see nothing.
        assert _context(http, tenant, BOB)["backline_caller_known"] == "no"
        assert _context(http, other, DANA)["backline_memory_summary"] == ""

        r = tenant.tool(http, "memory_search", tool_request(DANA, "what broke at home"))
        assert r.status_code == 200, r.text
        assert "water heater" in r.json()["answer"].lower()
        r = other.tool(http, "memory_search", tool_request(DANA, "water heater"))
        assert r.status_code == 200
        assert "water heater" not in r.text.lower()


async def test_post_call_delivered_three_times_makes_one_inbox_row_and_one_workflow(
    stack: Stack,
) -> None:
    call_id = f"bland-{uuid.uuid4().hex[:8]}"
    with stack.http() as http:
        tenant = create_bland_tenant(http)
    body = raw(post_call(call_id, DANA, DANA_CALL_1))

    async with httpx.AsyncClient(base_url=stack.api.url, timeout=30) as client:
        replies = await asyncio.gather(
            *[
                client.post(
                    tenant.url("post-call"),
                    content=body,
                    headers={
                        "X-Webhook-Signature": _sign(tenant, body),
                        "content-type": "application/json",
                    },
                )
                for _ in range(3)
            ]
        )
    assert [r.status_code for r in replies] == [200, 200, 200], [r.text for r in replies]
    assert sorted(r.json()["duplicate"] for r in replies) == [False, True, True]
    workflow_id = f"post-call-{tenant.agent_id}-bland-{call_id}"
    assert {r.json()["workflow_id"] for r in replies} == {workflow_id}

    assert (await _finished(stack, workflow_id)).status == "processed"
    assert _count(stack.engine, WebhookInbox, WebhookInbox.call_id == call_id) == 1
    assert _count(stack.engine, Memory, Memory.source_call_id == call_id) == 1
    runs = [w async for w in stack.client.list_workflows(f"WorkflowId = '{workflow_id}'")]
    assert len(runs) == 1


async def test_corrected_transcript_delivery_updates_the_call_and_its_memories(
    stack: Stack,
) -> None:
    call_id = f"bland-{uuid.uuid4().hex[:8]}"
    corrected = [
        *DANA_CALL_1[:-2],
        ("caller", "Actually, please text me instead of email from now on."),
    ]
    with stack.http() as http:
        tenant = create_bland_tenant(http)
        first = tenant.post_call(http, post_call(call_id, DANA, DANA_CALL_1))
        assert first.status_code == 200, first.text
        await _finished(stack, first.json()["workflow_id"])
        with Session(stack.engine) as s:
            prefs = s.exec(
                select(Fact.value).where(
                    Fact.source_call_id == call_id, Fact.key == "contact_preference"
                )
            ).all()
        assert list(prefs) == ["email"]

        # Bland's delayed POST, 30-60 s later: the corrected transcript alone.
        second = tenant.post_call(http, corrected_transcript(call_id, corrected))
        assert second.status_code == 200, second.text
        assert second.json()["duplicate"] is False
        assert second.json()["revision"] == 2
        assert second.json()["workflow_id"] == f"post-call-{tenant.agent_id}-bland-{call_id}-r2"
        assert (await _finished(stack, second.json()["workflow_id"])).status == "processed"

        # Bland re-sends the same correction: the merge is deterministic, so it is a duplicate.
        again = tenant.post_call(http, corrected_transcript(call_id, corrected))
        assert again.status_code == 200, again.text
        assert again.json()["duplicate"] is True
        assert again.json()["workflow_id"] == f"post-call-{tenant.agent_id}-bland-{call_id}-r2"

        with Session(stack.engine) as s:
            memories = s.exec(select(Memory).where(Memory.source_call_id == call_id)).all()
            prefs = s.exec(
                select(Fact.value).where(
                    Fact.source_call_id == call_id, Fact.key == "contact_preference"
                )
            ).all()
            call = s.exec(select(Call).where(Call.platform_call_id == call_id)).one()
        assert len(memories) == 1 and memories[0].revision == 2
        assert list(prefs) == ["text"]
        assert call.revision == 2
        assert "text me instead of email" in call.transcript[-1]["text"]
        # The caller and times came from the first delivery; the correction did not erase them.
        assert call.caller_hash == caller_hash(SECRET_KEY, DANA)
        assert call.started_at is not None
        assert _count(stack.engine, WebhookInbox, WebhookInbox.call_id == call_id) == 2

        variables = _context(http, tenant, DANA)
        assert "contact preference: text" in variables["backline_caller_facts"]
        assert "email" not in variables["backline_caller_facts"]
        assert variables["backline_call_count"] == "1"


async def test_correction_before_its_call_object_is_a_recorded_conflict(stack: Stack) -> None:
    call_id = f"bland-{uuid.uuid4().hex[:8]}"
    with stack.http() as http:
        tenant = create_bland_tenant(http)
        r = tenant.post_call(http, corrected_transcript(call_id, DANA_CALL_1))
        assert r.status_code == 409, r.text
        assert r.json()["error"] == "ConflictError"
        assert call_id in r.json()["detail"]
        assert _count(stack.engine, WebhookInbox, WebhookInbox.call_id == call_id) == 0
        assert [row["status_code"] for row in _rejected(http, tenant)] == [409]


async def test_tool_without_the_bearer_token_is_401_and_recorded(stack: Stack) -> None:
    with stack.http() as http:
        tenant = create_bland_tenant(http)
        r = tenant.tool(http, "memory_search", tool_request(DANA, "order"), authorization=False)
        assert r.status_code == 401, r.text
        assert r.json()["error"] == "WebhookSignatureError"
        assert "Authorization header is missing" in r.json()["detail"]
        r = tenant.tool(http, "memory_search", tool_request(DANA, "order"), token="wrong")
        assert r.status_code == 401
        r = tenant.dynamic_data(http, dynamic_data(DANA), token="wrong")
        assert r.status_code == 401

        rows = _rejected(http, tenant)
        assert len(rows) == 3
        assert {(row["platform"], row["reason"], row["status_code"]) for row in rows} == {
            ("bland", "WebhookSignatureError", 401)
        }
        assert {row["agent_id"] for row in rows} == {tenant.agent_id}


async def test_bad_post_call_signature_is_401_and_nothing_is_inboxed(stack: Stack) -> None:
    call_id = f"bland-{uuid.uuid4().hex[:8]}"
    with stack.http() as http:
        tenant = create_bland_tenant(http)
        body = raw(post_call(call_id, DANA, DANA_CALL_1))
        r = tenant.post_call(http, body, signature=_sign(tenant, body + b" "))
        assert r.status_code == 401, r.text
        assert "does not match" in r.json()["detail"]
        r = tenant.post_call(http, body, signature="")
        assert r.status_code == 401
        assert "X-Webhook-Signature header is missing" in r.json()["detail"]
        assert len(_rejected(http, tenant)) == 2
    assert _count(stack.engine, WebhookInbox, WebhookInbox.call_id == call_id) == 0


async def test_malformed_requests_are_422_naming_the_field(stack: Stack) -> None:
    with stack.http() as http:
        tenant = create_bland_tenant(http)
        body = post_call(f"bland-{uuid.uuid4().hex[:8]}", DANA, DANA_CALL_1)
        del body["call_id"]
        r = tenant.post_call(http, body)
        assert r.status_code == 422, r.text
        assert r.json()["error"] == "MalformedWebhookError"
        assert "'call_id'" in r.json()["detail"]

        r = tenant.dynamic_data(http, {"call_id": "c1", "to": "+14155550999"})
        assert r.status_code == 422
        assert "'caller'" in r.json()["detail"]

        r = tenant.post_call(http, b"{not json")
        assert r.status_code == 400
        assert r.json()["error"] == "InvalidJsonError"
        assert [row["status_code"] for row in _rejected(http, tenant)] == [400, 422, 422]


async def test_missing_credentials_and_unknown_agent_are_named(stack: Stack) -> None:
    with stack.http() as http:
        no_secret = create_bland_tenant(http, signing_secret=False)
        r = no_secret.post_call(http, post_call("c1", DANA, DANA_CALL_1), signature="abc")
        assert r.status_code == 401
        assert f"PUT /v1/agents/{no_secret.agent_id}/credentials/bland" in r.json()["detail"]
        assert "signing_secret" in r.json()["detail"]

        no_token = create_bland_tenant(http, tool_token=False)
        r = no_token.dynamic_data(http, dynamic_data(DANA), token="anything")
        assert r.status_code == 401
        assert f"PUT /v1/agents/{no_token.agent_id}/credentials/bland" in r.json()["detail"]
        assert "tool_token" in r.json()["detail"]

        r = http.post(
            "/v1/webhooks/bland/agent-does-not-exist/dynamic-data",
            content=raw(dynamic_data(DANA)),
            headers={"Authorization": "Bearer x"},
        )
        assert r.status_code == 404
        assert "agent-does-not-exist" in r.json()["detail"]


async def test_slow_context_read_still_answers_dynamic_data_inside_blands_timeout(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def slow_answer(*_args: Any, **_kwargs: Any) -> Answer:
        await asyncio.sleep(3)
        return Answer(context=CallerContext(known=True, summary="too late"))

    with stack.http() as http:
        tenant = create_bland_tenant(http)
        # The API runs in this process, so the route sees the patched service.
        monkeypatch.setattr(AnsweringService, "answer", slow_answer)
        started = time.monotonic()
        r = tenant.dynamic_data(http, dynamic_data(DANA))
        elapsed = time.monotonic() - started
    assert r.status_code == 200, r.text
    assert elapsed < 2.0
    assert r.json()["backline_caller_known"] == "no"
    assert r.json()["backline_memory_summary"] == ""
