"""A caller's second call remembers the first: VAPI edge -> PostCallWorkflow -> memory -> next
call's assistant-request, on Postgres, the Temporal dev server and the real embedder."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from sqlmodel import Session, select

from core.calls.models import CallEvent
from core.memory.models import Fact, Memory
from tests.conftest import Stack, async_wait_for, post_call_result
from tests.helpers import (
    ADMIN,
    DANA_CALL_1,
    DANA_CALL_2,
    Tenant,
    assistant_request,
    create_tenant,
    end_of_call,
    raw,
    tool_call,
)

pytestmark = [pytest.mark.postgres, pytest.mark.temporal]
DANA = "+14155550123"
BOB = "+14155550188"


def _variables(http, tenant, number: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    r = http.post(
        tenant.webhook, content=raw(assistant_request(number)), headers=tenant.vapi_headers
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["assistantId"] == "asst-123"
    variables: dict[str, str] = body["assistantOverrides"]["variableValues"]
    return variables


async def test_second_call_remembers_the_first_and_no_one_else_sees_it(stack: Stack) -> None:
    with stack.http() as http:
        tenant = create_tenant(http)
        other = create_tenant(http)

        first = _variables(http, tenant, DANA)
        assert first["backline_caller_known"] == "no"
        assert first["backline_memory_summary"] == ""

        call_id = f"call-{uuid.uuid4().hex[:8]}"
        r = http.post(
            tenant.webhook,
            content=raw(end_of_call(call_id, DANA, DANA_CALL_1)),
            headers=tenant.vapi_headers,
        )
        assert r.status_code == 200, r.text
        assert r.json()["workflow_id"] == f"post-call-{tenant.agent_id}-vapi-{call_id}"

        known = await async_wait_for(
            lambda: _variables(http, tenant, DANA)["backline_caller_known"] == "yes", timeout=30
        )
        assert known
        after = _variables(http, tenant, DANA)
        assert "water heater" in after["backline_memory_summary"].lower()
        assert "contact preference: email" in after["backline_caller_facts"]
        assert "name: Dana" in after["backline_caller_facts"]

        # Another caller of the same agent, and the same caller on another org, see nothing.
        assert _variables(http, tenant, BOB)["backline_caller_known"] == "no"
        assert _variables(http, other, DANA)["backline_caller_known"] == "no"
        assert _variables(http, other, DANA)["backline_memory_summary"] == ""

        # memory_search answers in VAPI's results shape, arguments as object or JSON string.
        for args in ({"query": "what broke at home"}, '{"query": "what broke at home"}'):
            r = http.post(
                tenant.webhook,
                content=raw(tool_call(DANA, "memory_search", args)),
                headers=tenant.vapi_headers,
            )
            assert r.status_code == 200
            result = r.json()["results"][0]
            assert result["toolCallId"] == "call_Zs9Qm2P1aB7c"
            assert "water heater" in result["result"].lower()
            assert "\n" not in result["result"]
        r = http.post(
            other.webhook,
            content=raw(tool_call(DANA, "memory_search", {"query": "water heater"})),
            headers=other.vapi_headers,
        )
        assert "water heater" not in r.text.lower()


async def test_contradicting_fact_in_a_later_call_closes_the_older_one(stack: Stack) -> None:
    with stack.http() as http:
        tenant = create_tenant(http)
        for i, (turns, ended) in enumerate(
            [(DANA_CALL_1, "2026-03-02T17:07:10.000Z"), (DANA_CALL_2, "2026-03-09T10:00:00.000Z")]
        ):
            call_id = f"call-{i}-{uuid.uuid4().hex[:8]}"
            r = http.post(
                tenant.webhook,
                content=raw(end_of_call(call_id, DANA, turns, ended_at=ended)),
                headers=tenant.vapi_headers,
            )
            assert r.status_code == 200

            def _processed(cid: str = call_id) -> bool:
                with Session(stack.engine) as s:
                    return (
                        s.exec(select(Memory).where(Memory.source_call_id == cid)).first()
                        is not None
                    )

            await async_wait_for(_processed, timeout=30)

        with Session(stack.engine) as s:
            prefs = s.exec(
                select(Fact).where(
                    Fact.agent_id == tenant.agent_id, Fact.key == "contact_preference"
                )
            ).all()
        by_value = {f.value: f for f in prefs}
        assert set(by_value) == {"email", "text"}
        assert by_value["email"].valid_to is not None
        assert by_value["text"].valid_to is None
        variables = _variables(http, tenant, DANA)
        assert "contact preference: text" in variables["backline_caller_facts"]
        assert "email" not in variables["backline_caller_facts"]
        assert variables["backline_call_count"] == "2"


async def test_unknown_tool_answers_an_error_string_not_a_5xx(stack: Stack) -> None:
    with stack.http() as http:
        tenant = create_tenant(http)
        r = http.post(
            tenant.webhook,
            content=raw(tool_call(DANA, "launch_rocket", {})),
            headers=tenant.vapi_headers,
        )
        assert r.status_code == 200
        result = r.json()["results"][0]
        assert "launch_rocket" in result["error"]
        assert "result" not in result


async def test_healthz_reports_db_temporal_and_worker(stack: Stack) -> None:
    with stack.http() as http:
        # A just-started worker shows up as a poller once its first poll reaches the server.
        await async_wait_for(lambda: http.get("/healthz").status_code == 200, timeout=20)
        r = await asyncio.to_thread(http.get, "/healthz")
        assert r.status_code == 200, r.text
        assert (
            r.json()["db"] == "ok" and r.json()["temporal"] == "ok" and r.json()["worker"] == "ok"
        )


async def _processed_memory(
    stack: Stack, tenant: Tenant, reply: httpx.Response, call_id: str
) -> Memory:
    """The one memory the reply's workflow wrote for the tenant's agent, once it finished."""
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["duplicate"] is False and body["revision"] == 1
    assert body["workflow_id"].startswith(f"post-call-{tenant.agent_id}-vapi-")
    result = await post_call_result(stack.client, body["workflow_id"])
    assert result.status == "processed"
    with Session(stack.engine) as s:
        memories = s.exec(
            select(Memory).where(
                Memory.agent_id == tenant.agent_id, Memory.source_call_id == call_id
            )
        ).all()
    assert len(memories) == 1 and memories[0].org_id == tenant.org_id
    return memories[0]


async def test_same_report_bytes_to_two_orgs_agents_are_two_calls_both_remembered(
    stack: Stack,
) -> None:
    call_id = f"call-{uuid.uuid4().hex[:8]}"
    body = raw(end_of_call(call_id, DANA, DANA_CALL_1))
    with stack.http() as http:
        a, b = create_tenant(http), create_tenant(http)
        reply_a = http.post(a.webhook, content=body, headers=a.vapi_headers)
        reply_b = http.post(b.webhook, content=body, headers=b.vapi_headers)
    memory_a = await _processed_memory(stack, a, reply_a, call_id)
    memory_b = await _processed_memory(stack, b, reply_b, call_id)
    assert memory_a.id != memory_b.id and memory_a.text == memory_b.text


async def test_another_orgs_call_id_with_a_new_body_is_a_new_call_not_its_revision(
    stack: Stack,
) -> None:
    call_id = f"call-{uuid.uuid4().hex[:8]}"
    with stack.http() as http:
        a, b = create_tenant(http), create_tenant(http)
        reply_a = http.post(
            a.webhook, content=raw(end_of_call(call_id, DANA, DANA_CALL_1)), headers=a.vapi_headers
        )
        reply_b = http.post(
            b.webhook, content=raw(end_of_call(call_id, BOB, DANA_CALL_2)), headers=b.vapi_headers
        )
    memory_a = await _processed_memory(stack, a, reply_a, call_id)
    memory_b = await _processed_memory(stack, b, reply_b, call_id)
    assert memory_a.revision == 1 and memory_b.revision == 1
    assert memory_a.caller_hash != memory_b.caller_hash  # each call kept its own caller


async def test_a_withheld_caller_id_is_served_without_memory_and_says_why(stack: Stack) -> None:
    with stack.http() as http:
        tenant = create_tenant(http)
        call_id = f"call-{uuid.uuid4().hex[:8]}"
        r = http.post(
            tenant.webhook,
            content=raw(end_of_call(call_id, "anonymous", DANA_CALL_1)),
            headers=tenant.vapi_headers,
        )
        assert r.status_code == 200, r.text
        await async_wait_for(
            lambda: (
                http.get(f"/v1/calls/{tenant.agent_id}/vapi/{call_id}", headers=ADMIN)
                .json()
                .get("status")
                == "processed"
            ),
            timeout=30,
        )
        # Another caller whose id is also withheld must not inherit the first one's memory.
        second = f"call-{uuid.uuid4().hex[:8]}"
        r = http.post(
            tenant.webhook,
            content=raw(assistant_request("anonymous", second)),
            headers=tenant.vapi_headers,
        )
        assert r.status_code == 200, r.text
        variables = r.json()["assistantOverrides"]["variableValues"]
        assert variables["backline_caller_known"] == "no"
        assert variables["backline_memory_summary"] == ""
    with Session(stack.engine) as session:
        [context] = session.exec(
            select(CallEvent).where(
                CallEvent.platform_call_id == second, CallEvent.type == "context_request"
            )
        ).all()
        assert "not a phone number" in context.data["no_memory"]
        assert not session.exec(select(Memory).where(Memory.agent_id == tenant.agent_id)).all()
