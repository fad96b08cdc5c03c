"""One backend whatever the platform: the same conversation delivered through VAPI, Retell,
Bland and the custom contract yields the same canonical events, the same memories, and the same
context on the next call from any platform."""

from __future__ import annotations

import copy
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import Session, select

from connectors.bland import webhooks as bland
from connectors.custom import webhooks as custom
from connectors.retell import webhooks as retell
from connectors.vapi import webhooks as vapi
from core.calls.events import CallEnded, CallStarted, ContextRequest
from core.memory.models import Fact, Memory
from fakes import custom as custom_fakes
from fakes.custom import CustomTenant
from tests import bland_helpers, retell_helpers
from tests.bland_helpers import BlandTenant
from tests.conftest import Stack, async_wait_for
from tests.helpers import (
    ADMIN,
    DANA_CALL_1,
    assistant_request,
    create_tenant,
    end_of_call,
    fixture,
    raw,
)
from tests.retell_helpers import RetellTenant

pytestmark = [pytest.mark.postgres, pytest.mark.temporal]
DANA = "+14155550123"
STARTED = datetime(2026, 3, 2, 17, 4, 10, tzinfo=UTC)
ENDED = datetime(2026, 3, 2, 17, 7, 10, tzinfo=UTC)
TURNS = DANA_CALL_1


def _iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def vapi_report(call_id: str) -> dict[str, Any]:
    body = end_of_call(call_id, DANA, TURNS, ended_at=_iso(ENDED))
    m = body["message"]
    m["startedAt"] = m["call"]["startedAt"] = _iso(STARTED)
    m["endedReason"] = m["call"]["endedReason"] = "customer-ended-call"
    return body


def retell_ended(call_id: str) -> dict[str, Any]:
    body = retell_helpers.call_ended(call_id, DANA, TURNS)
    body["call"]["start_timestamp"] = int(STARTED.timestamp() * 1000)
    body["call"]["end_timestamp"] = int(ENDED.timestamp() * 1000)
    body["call"]["disconnection_reason"] = "user_hangup"
    return body


def bland_post_call(call_id: str) -> dict[str, Any]:
    body = bland_helpers.post_call(call_id, DANA, TURNS)
    body["started_at"] = STARTED.isoformat()
    body["end_at"] = ENDED.isoformat()
    body["call_ended_by"] = "USER"
    body["error_message"] = None
    body["transferred_to"] = None
    for i, item in enumerate(body["transcripts"]):
        item["created_at"] = (STARTED + timedelta(seconds=5 * i)).isoformat()
    return body


def custom_ended(call_id: str) -> dict[str, Any]:
    # A team's own stack sends times of day; the contract also takes seconds from the start.
    body = custom_fakes.call_ended(
        call_id, DANA, TURNS, started_at=STARTED, ended_at=ENDED, end_reason="caller_hangup"
    )
    for i, turn in enumerate(body["transcript"]):
        turn["at"] = _iso(STARTED + timedelta(seconds=5 * i))
    return body


def _canonical(event: CallEnded) -> dict[str, Any]:
    """Every canonical field; platform-only ones (its summary, verdict, wording) excluded."""
    data = event.model_dump(
        exclude={"platform_summary", "platform_success", "platform_ended_reason"}
    )
    data["call"].pop("platform")
    data["call"].pop("call_id")
    return data


def test_call_ended_is_field_by_field_equal_across_platforms() -> None:
    events = {
        "vapi": vapi.parse_call_ended(vapi_report("c-v")),
        "retell": retell.parse_call_ended(retell_ended("c-r")),
        "bland": bland.parse_post_call(bland_post_call("c-b")),
        "custom": custom.parse_call_ended(custom_ended("c-c")),
    }
    canonical = {name: _canonical(e) for name, e in events.items()}
    assert canonical["vapi"] == canonical["retell"] == canonical["bland"]
    assert canonical["custom"] == canonical["vapi"]
    assert canonical["vapi"]["ended_reason"] == "caller_hangup"
    assert [t["role"] for t in canonical["vapi"]["turns"]] == [r for r, _ in TURNS]
    assert canonical["vapi"]["turns"][1]["seconds_from_start"] == 5.0


def test_call_start_and_context_requests_agree_across_platforms() -> None:
    started_vapi = vapi.parse_event(fixture("vapi_status_update__in_progress.json"))
    started_retell = retell.parse_event(fixture("retell_call_started.json"))
    assert isinstance(started_vapi, CallStarted) and isinstance(started_retell, CallStarted)
    assert started_vapi.call.caller_number == started_retell.call.caller_number == DANA
    assert started_vapi.call.direction == started_retell.call.direction == "inbound"

    contexts = [
        vapi.parse_event(assistant_request(DANA)),
        retell.parse_inbound(retell_helpers.call_inbound(DANA), id_key="k"),
        bland.parse_dynamic_data(bland_helpers.dynamic_data(DANA)),
        custom.parse_event(custom_fakes.call_started(DANA)),
    ]
    assert all(isinstance(c, ContextRequest) for c in contexts)
    assert {c.call.caller_number for c in contexts} == {DANA}  # type: ignore[union-attr]
    assert contexts[-1].call.direction == "inbound"  # type: ignore[union-attr]


def _all_platform_tenant(http) -> tuple[Any, RetellTenant, BlandTenant, CustomTenant]:  # type: ignore[no-untyped-def]
    tenant = create_tenant(http)
    secrets = {
        ("retell", "api_key"): f"key_retell_{uuid.uuid4().hex[:12]}",
        ("bland", "signing_secret"): f"bland-sign-{uuid.uuid4().hex[:12]}",
        ("bland", "tool_token"): f"bland-tool-{uuid.uuid4().hex[:12]}",
        ("custom", "signing_secret"): f"custom-sign-{uuid.uuid4().hex[:12]}",
    }
    for (platform, kind), secret in secrets.items():
        r = http.put(
            f"/v1/agents/{tenant.agent_id}/credentials/{platform}",
            json={"kind": kind, "secret": secret},
            headers=ADMIN,
        )
        assert r.status_code == 200, r.text
    return (
        tenant,
        RetellTenant(tenant.org_id, tenant.agent_id, secrets[("retell", "api_key")]),
        BlandTenant(
            tenant.org_id,
            tenant.agent_id,
            secrets[("bland", "signing_secret")],
            secrets[("bland", "tool_token")],
        ),
        CustomTenant(tenant.org_id, tenant.agent_id, secrets[("custom", "signing_secret")]),
    )


def _context_everywhere(http, v, r, b, c) -> list[dict[str, str]]:  # type: ignore[no-untyped-def]
    via_vapi = http.post(v.webhook, content=raw(assistant_request(DANA)), headers=v.vapi_headers)
    via_retell = r.post(http, "inbound", retell_helpers.call_inbound(DANA))
    via_bland = b.dynamic_data(http, bland_helpers.dynamic_data(DANA))
    via_custom = c.post(http, custom_fakes.call_started(DANA))
    assert via_vapi.status_code == via_retell.status_code == via_bland.status_code == 200
    assert via_custom.status_code == 200, via_custom.text
    # The custom reply carries the same memory as data too.
    memory = via_custom.json()["context"]
    variables = via_custom.json()["variables"]
    assert memory["memory_summary"] == variables["backline_memory_summary"]
    assert memory["caller_known"] == (variables["backline_caller_known"] == "yes")
    assert str(memory["call_count"]) == variables["backline_call_count"]
    found = [
        via_vapi.json()["assistantOverrides"]["variableValues"],
        via_retell.json()["call_inbound"]["dynamic_variables"],
        via_bland.json(),
        variables,
    ]
    return [
        {
            k: v
            for k, v in f.items()
            if k.startswith("backline_caller")
            or k in ("backline_memory_summary", "backline_call_count")
        }
        for f in found
    ]


@pytest.mark.parametrize("first_platform", ["vapi", "retell", "bland", "custom"])
async def test_memory_from_any_platform_is_the_context_on_every_platform(
    stack: Stack, first_platform: str
) -> None:
    with stack.http() as http:
        v, r, b, c = _all_platform_tenant(http)
        call_id = f"call-{uuid.uuid4().hex[:8]}"
        if first_platform == "vapi":
            resp = http.post(v.webhook, content=raw(vapi_report(call_id)), headers=v.vapi_headers)
        elif first_platform == "retell":
            resp = r.post(http, "events", retell_ended(call_id))
        elif first_platform == "bland":
            resp = b.post_call(http, bland_post_call(call_id))
        else:
            resp = c.post(http, custom_ended(call_id))
        assert resp.status_code == 200, resp.text

        def _stored() -> bool:
            with Session(stack.engine) as s:
                return (
                    s.exec(select(Memory).where(Memory.source_call_id == call_id)).first()
                    is not None
                )

        await async_wait_for(_stored, timeout=30)
        contexts = _context_everywhere(http, v, r, b, c)
    assert contexts[0] == contexts[1] == contexts[2]
    assert contexts[3] == contexts[0]
    assert contexts[0]["backline_caller_known"] == "yes"
    assert "water heater" in contexts[0]["backline_memory_summary"].lower()
    assert "contact preference: email" in contexts[0]["backline_caller_facts"]


async def test_same_conversation_yields_the_same_memories_on_every_platform(stack: Stack) -> None:
    results: dict[str, tuple[str, set[tuple[str, str]]]] = {}
    with stack.http() as http:
        for platform in ("vapi", "retell", "bland", "custom"):
            v, r, b, c = _all_platform_tenant(http)
            call_id = f"call-{uuid.uuid4().hex[:8]}"
            payload = {
                "vapi": vapi_report,
                "retell": retell_ended,
                "bland": bland_post_call,
                "custom": custom_ended,
            }[platform]
            body = copy.deepcopy(payload(call_id))
            if platform == "vapi":
                resp = http.post(v.webhook, content=raw(body), headers=v.vapi_headers)
            elif platform == "retell":
                resp = r.post(http, "events", body)
            elif platform == "bland":
                resp = b.post_call(http, body)
            else:
                resp = c.post(http, body)
            assert resp.status_code == 200, resp.text

            def _memory(cid: str = call_id) -> Memory | None:
                with Session(stack.engine) as s:
                    return s.exec(select(Memory).where(Memory.source_call_id == cid)).first()

            memory = await async_wait_for(_memory, timeout=30)
            with Session(stack.engine) as s:
                facts = {
                    (f.key, f.value)
                    for f in s.exec(select(Fact).where(Fact.source_call_id == call_id))
                }
            results[platform] = (memory.text, facts)
    assert results["vapi"] == results["retell"] == results["bland"]
    assert results["custom"] == results["vapi"]
    assert ("contact_preference", "email") in results["vapi"][1]
