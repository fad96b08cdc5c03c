"""The tool gateway against real MCP servers: the example servers over stdio and streamable
HTTP, the third-party ``mcp-server-time``, and a deliberately broken server, on Postgres (and
SQLite where the ledger's locking differs). Faults are real: processes are killed mid-call,
servers are slow, answers are malformed.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from core.audit.models import AuditEvent
from core.calls.models import CallEvent
from core.errors import ConflictError
from core.tools.schemas import GatewayResult
from tests.conftest import async_wait_for
from tests.mcp_helpers import (
    APPOINTMENTS,
    FAULTY,
    MARKER_ENV,
    ORDERS,
    TIME_SERVER,
    Harness,
    HttpServer,
    kill_marked,
    pids_with_marker,
)


@pytest.fixture(scope="module")
def appointments_http() -> Iterator[HttpServer]:
    server = HttpServer(APPOINTMENTS).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def orders_http() -> Iterator[HttpServer]:
    server = HttpServer(ORDERS, "--refund-delay", "0.4").start()
    yield server
    server.stop()


@pytest_asyncio.fixture(loop_scope="session")
async def harness(pg_engine: Engine) -> AsyncIterator[Harness]:
    h = Harness(pg_engine)
    yield h
    await h.aclose()


def stdio(script: str, *args: str, marker: str | None = None) -> dict[str, object]:
    fields: dict[str, object] = {"transport": "stdio", "command": [sys.executable, script, *args]}
    if marker is not None:
        fields["env"] = {MARKER_ENV: marker}
    return fields


async def refund_log(h: Harness) -> dict[str, Any]:
    result = await h.call("list_refunds", {})
    assert result.record.status == "ok", result.outcome
    data: dict[str, Any] = json.loads(result.outcome.result or "{}")
    return data


# -- discovery and calls --------------------------------------------------------------------


async def test_tools_are_discovered_and_called_over_stdio_and_http(
    harness: Harness, orders_http: HttpServer
) -> None:
    await harness.register(name="appointments", **stdio(APPOINTMENTS))
    await harness.register(name="orders", transport="http", url=orders_http.url)
    await harness.register(name="time", transport="stdio", command=TIME_SERVER)
    for ref in ("list_slots", "book_slot", "orders/order_status", "time/get_current_time"):
        harness.enable(ref)

    slots = await harness.call("list_slots", {"limit": 2})
    assert slots.record.status == "ok", slots.outcome
    first = json.loads(slots.outcome.result or "")["slots"][0]["slot_id"]
    order = await harness.call("order_status", {"order_id": "1042"})
    assert order.record.status == "ok" and '"status":"delivered"' in (order.outcome.result or "")
    now = await harness.call("get_current_time", {"timezone": "UTC"})
    assert now.record.status == "ok" and '"timezone":"UTC"' in (now.outcome.result or "")

    call_id = f"call-{uuid.uuid4().hex[:8]}"
    booking = await harness.call(
        "book_slot",
        {"slot_id": first, "customer_name": "Dana", "phone_number": "+1 415 555 0123"},
        call_id=call_id,
    )
    assert booking.record.status == "ok", booking.outcome
    assert '"status":"confirmed"' in (booking.outcome.result or "")
    again = await harness.call(
        "book_slot", {"slot_id": first, "customer_name": "Sam"}, call_id=call_id
    )
    assert again.record.status == "tool_error" and "not open" in (again.outcome.error or "")

    harness.record(booking)
    with Session(harness.engine) as s:
        event = s.exec(
            select(CallEvent).where(
                CallEvent.platform_call_id == call_id, CallEvent.type == "tool_call"
            )
        ).one()
        audit = s.exec(
            select(AuditEvent)
            .where(AuditEvent.org_id == harness.org_id, AuditEvent.action == "tool.call")
            .order_by(col(AuditEvent.id).desc())
        ).first()
    assert event.data["tool"] == "book_slot" and event.data["status"] == "ok"
    assert event.data["attempts"] == 1 and event.data["breaker"] == "closed"
    assert event.data["latency_ms"] > 0
    stored = json.dumps(event.data)
    assert "555 0123" not in stored and "5550123" not in stored  # the phone is masked
    assert "Dana" in stored  # names stay on the trace: memory and bookings need them
    # The audit chain is kept forever, so it holds ids and argument names, never values.
    assert audit is not None and audit.detail["call_id"] == call_id
    assert audit.detail["arguments"] == ["customer_name", "phone_number", "slot_id"]
    assert "Dana" not in json.dumps(audit.detail) and "0123" not in json.dumps(audit.detail)

    harness.record(slots)  # read-only: on the trace (none here: no call id), not in the audit
    with Session(harness.engine) as s:
        listed = s.exec(
            select(AuditEvent).where(
                AuditEvent.org_id == harness.org_id,
                AuditEvent.action == "tool.call",
                AuditEvent.target == f"agent:{harness.agent_id}/tool:list_slots",
            )
        ).all()
    assert slots.record.read_only and not booking.record.read_only and listed == []


async def test_a_name_clash_needs_a_prefix(harness: Harness, appointments_http: HttpServer) -> None:
    await harness.register(name="booking-a", transport="http", url=appointments_http.url)
    await harness.register(
        name="booking-b", transport="http", url=appointments_http.url, prefix="backup"
    )
    assert harness.enable("booking-a/list_slots") == "list_slots"
    assert harness.enable("booking-b/list_slots") == "backup_list_slots"
    await harness.register(name="booking-c", transport="http", url=appointments_http.url)
    with pytest.raises(ConflictError, match="prefix"):
        harness.enable("booking-c/list_slots")
    with pytest.raises(ConflictError, match="several servers"):
        harness.enable("list_slots")  # ambiguous across booking-a and booking-c
    result = await harness.call("backup_list_slots", {"limit": 1})
    assert result.record.status == "ok" and result.record.server == "booking-b"


async def test_arguments_that_do_not_fit_the_schema_never_reach_the_server(
    harness: Harness, orders_http: HttpServer
) -> None:
    await harness.register(name="orders", transport="http", url=orders_http.url)
    harness.enable("refund_order")
    harness.enable("list_refunds")
    before = (await refund_log(harness))["refund_requests"]
    result = await harness.call(
        "refund_order", {"order_id": "1043", "reason": "late", "amount": "lots"}
    )
    assert result.record.status == "invalid_arguments"
    assert result.outcome.error is not None
    assert "refund_order" in result.outcome.error and "'amount'" in result.outcome.error
    missing = await harness.call("refund_order", {"reason": "late", "amount": 5})
    assert "'order_id' is a required property" in (missing.outcome.error or "")
    assert (await refund_log(harness))["refund_requests"] == before


async def test_rate_limits_per_tool_and_per_organization(
    pg_engine: Engine, orders_http: HttpServer
) -> None:
    h = Harness(pg_engine, org_calls_per_minute=3)
    try:
        await h.register(
            name="orders", transport="http", url=orders_http.url, rate_limit_per_minute=2
        )
        h.enable("order_status")
        h.enable("list_refunds")
        statuses = [
            (await h.call("order_status", {"order_id": "1042"})).record.status for _ in range(3)
        ]
        assert statuses == ["ok", "ok", "rate_limited"]
        assert (await h.call("list_refunds", {})).record.status == "ok"
        limited = await h.call("list_refunds", {})
        assert limited.record.status == "rate_limited"  # the organization's 3 per minute
        assert "a moment" in (limited.outcome.error or "")
        status = await h.gateway.status(h.org_id)
        assert status["org_rate_limit"]["remaining"] == 0
        assert status["metrics"]["order_status"]["by_status"] == {"ok": 2, "rate_limited": 1}
    finally:
        await h.aclose()


# -- deadlines and faults -------------------------------------------------------------------


async def test_a_slow_server_gets_the_fallback_inside_the_deadline(harness: Harness) -> None:
    await harness.register(
        name="slowbook",
        display_name="our booking system",
        timeout_s=0.6,
        **stdio(APPOINTMENTS, "--delay", "3"),
    )
    harness.enable("list_slots")
    t0 = time.monotonic()
    result = await harness.call("list_slots", {})
    took = time.monotonic() - t0
    assert result.record.status == "timeout"
    assert 0.55 <= took < 1.2, took  # cut at the deadline, not the server's 3 s
    assert result.outcome.error is not None
    assert result.outcome.error.startswith("I can't reach our booking system right now")
    # The platform's own deadline wins when it is the tighter one (minus our safety margin).
    harness.enable("list_slots", timeout_s=20)
    t0 = time.monotonic()
    result = await harness.call("list_slots", {}, platform="retell", budget_s=2.2)
    took = time.monotonic() - t0
    assert result.record.status == "timeout" and took < 2.2 - 1.0, took


async def test_a_stdio_server_killed_mid_call_is_respawned_and_only_safe_calls_are_retried(
    harness: Harness,
) -> None:
    marker = uuid.uuid4().hex
    await harness.register(name="appts", **stdio(APPOINTMENTS, "--delay", "0.7", marker=marker))
    harness.enable("list_slots")
    harness.enable("book_slot")
    assert len(pids_with_marker(marker)) == 1

    sent = harness.watch_sends()

    async def kill_soon() -> int:
        await asyncio.wait_for(sent.wait(), timeout=10)
        return kill_marked(marker)

    # An idempotent tool is re-sent on a fresh session after the server died under it.
    killer = asyncio.create_task(kill_soon())
    result = await harness.call("list_slots", {"limit": 1})
    assert await killer == 1
    assert result.record.status == "ok" and result.record.attempts == 2, result.record
    slot = json.loads(result.outcome.result or "")["slots"][0]["slot_id"]

    # A side-effecting one is not: it may have run, so the caller hears the fallback.
    sent.clear()
    killer = asyncio.create_task(kill_soon())
    t0 = time.monotonic()
    result = await harness.call("book_slot", {"slot_id": slot, "customer_name": "Dana"})
    assert await killer == 1
    assert result.record.status == "unavailable" and result.record.attempts == 1
    assert time.monotonic() - t0 < 1.5
    assert "can't reach" in (result.outcome.error or "")
    # The pool reconnects on the next call.
    result = await harness.call("list_slots", {"limit": 1})
    assert result.record.status == "ok" and result.record.attempts == 1


async def test_breaker_opens_on_a_dead_http_server_then_half_opens_and_closes(
    harness: Harness,
) -> None:
    server = HttpServer(APPOINTMENTS, "--delay", "0.5")
    try:
        # Registered while the server is down: discovery records the error, nothing breaks.
        server_id = harness.add_server(
            name="flaky",
            transport="http",
            url=server.url,
            max_retries=0,
            breaker_failures=2,
            breaker_cooldown_s=1.0,
        )
        report = await harness.gateway.refresh_server(server_id)
        assert report is not None and report.error and report.tools == []
        server.start()
        report = await harness.gateway.refresh_server(server_id)
        assert report is not None and report.error is None and "list_slots" in report.tools
        harness.enable("list_slots")
        assert (await harness.call("list_slots", {})).record.status == "ok"

        # Killed mid-call: the call in flight answers the fallback at once.
        sent = harness.watch_sends()

        async def kill_soon() -> None:
            await asyncio.wait_for(sent.wait(), timeout=10)
            await asyncio.to_thread(server.kill)

        killer = asyncio.create_task(kill_soon())
        t0 = time.monotonic()
        first = await harness.call("list_slots", {})
        await killer
        assert first.record.status == "unavailable" and time.monotonic() - t0 < 1.0
        second = await harness.call("list_slots", {})
        assert second.record.status == "unavailable"
        assert second.record.breaker == "open"
        t0 = time.monotonic()
        refused = await harness.call("list_slots", {})
        assert refused.record.status == "breaker_open" and time.monotonic() - t0 < 0.2
        assert "can't reach" in (refused.outcome.error or "")

        server.start()
        snapshot = await async_wait_for(
            lambda: (
                (s := harness.gateway.breaker_snapshot(server_id))
                and s["state"] == "half_open"
                and s
            ),
            timeout=5,
            interval=0.05,
        )
        assert snapshot["opens_total"] == 1
        probe = await harness.call("list_slots", {})
        assert probe.record.status == "ok", probe.outcome
        assert probe.record.breaker == "closed"
        status = await harness.gateway.status(harness.org_id)
        assert status["servers"][0]["breaker"]["state"] == "closed"
        assert status["servers"][0]["connected"] is True
    finally:
        server.stop()


async def test_malformed_answers_get_the_fallback_and_count_against_the_breaker(
    harness: Harness,
) -> None:
    await harness.register(
        name="faulty",
        display_name="the faulty system",
        breaker_failures=2,
        **stdio(FAULTY),
    )
    for tool in ("garbage", "crash", "fine"):
        harness.enable(tool)
    garbage = await harness.call("garbage", {})
    assert garbage.record.status == "malformed_result"
    assert (garbage.outcome.error or "").startswith("I can't reach the faulty system")
    crash = await harness.call("crash", {})
    assert crash.record.status == "malformed_result"
    assert crash.record.breaker == "open"
    assert (await harness.call("fine", {})).record.status == "breaker_open"


# -- idempotency ----------------------------------------------------------------------------


async def test_a_platform_retrying_a_refund_runs_it_once(
    any_engine: Engine, orders_http: HttpServer
) -> None:
    # Two gateways on one database: two API replicas, each receiving one of Retell's retries.
    first, second = Harness(any_engine), Harness(any_engine)
    second.org_id, second.agent_id = first.org_id, first.agent_id
    try:
        await first.register(name="orders", transport="http", url=orders_http.url)
        first.enable("refund_order")
        first.enable("list_refunds")
        before = await refund_log(first)
        call_id = f"retell-{uuid.uuid4().hex[:8]}"
        args = {"order_id": "1044", "reason": "arrived damaged", "amount": 10}

        async def retry(h: Harness) -> GatewayResult:
            result = await h.gateway.call(
                h.request(
                    "refund_order",
                    args,
                    call_id=call_id,
                    tool_call_id=f"refund_order@{call_id}",
                    platform="retell",
                    budget_s=10.0,
                )
            )
            assert result is not None
            return result

        results = await asyncio.gather(retry(first), retry(first), retry(second))
        statuses = sorted(r.record.status for r in results)
        assert statuses == ["duplicate", "duplicate", "ok"], statuses
        answers = {r.outcome.result for r in results}
        assert len(answers) == 1 and '"status":"refunded"' in answers.pop()

        late = await retry(second)
        assert late.record.status == "duplicate" and late.record.duplicate

        after = await refund_log(first)
        assert after["refund_requests"] == before["refund_requests"] + 1
        assert len(after["refunds"]) == len(before["refunds"]) + 1

        # A different tool call in the same call is a different refund.
        other = await first.call(
            "refund_order", args, call_id=call_id, tool_call_id="another", platform="retell"
        )
        assert other.record.status == "ok"
        assert (await refund_log(first))["refund_requests"] == after["refund_requests"] + 1
    finally:
        await first.aclose()
        await second.aclose()
