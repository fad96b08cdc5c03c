"""Malformed and hostile webhook deliveries: each answers a 4xx naming the problem (never 5xx),
is recorded in rejected webhooks, and loses nothing already accepted. The cases are the ones a
probe found answering 500, for every platform route, with and without valid authentication.
"""

from __future__ import annotations

import asyncio
import copy
import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from temporalio.testing import WorkflowEnvironment

from connectors.embedder import MiniLMEmbedder
from connectors.vapi.webhooks import MAX_TOOL_CALLS
from core.calls.models import RejectedWebhook
from fakes import custom
from tests.bland_helpers import create_bland_tenant, dynamic_data, post_call, tool_request
from tests.conftest import ApiServer, Stack, make_settings, temporal_address
from tests.helpers import (
    ADMIN,
    DANA_CALL_1,
    assistant_request,
    create_tenant,
    end_of_call,
    raw,
    tool_call,
)
from tests.retell_helpers import call_ended, call_inbound, create_retell_tenant, function_call

pytestmark = [pytest.mark.postgres, pytest.mark.temporal]
DANA = "+14155550123"
DEEP = b"[" * 100_000
HUGE_INT = "1" + "0" * 4999


def _rejections(engine: Engine, agent_id: str) -> list[RejectedWebhook]:
    with Session(engine) as s:
        rows = s.exec(select(RejectedWebhook).where(RejectedWebhook.agent_id == agent_id))
        return sorted(rows, key=lambda r: r.id or 0)


def _with(body: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    body = copy.deepcopy(body)
    *parents, last = path.split(".")
    node = body
    for p in parents:
        node = node[p]
    node[last] = value
    return body


def _nested(body: dict[str, Any], depth: int) -> bytes:
    """``body`` with one extra field nested ``depth`` lists deep (valid JSON)."""
    text = raw(body)
    return text[:-1] + b',"deep":' + b"[" * depth + b"]" * depth + b"}"


def _huge_int(body: dict[str, Any]) -> bytes:
    return raw(body)[:-1] + f',"n":{HUGE_INT}}}'.encode()


def _lone_surrogate(body: dict[str, Any], field: str) -> bytes:
    # json.dumps would escape a real surrogate; write the JSON escape itself, as a sender would.
    marker = "SURROGATE-" + uuid.uuid4().hex
    return raw(_with(body, field, marker)).replace(marker.encode(), b"\\ud800")


def _assert_4xx(r: httpx.Response, *words: str) -> None:
    assert 400 <= r.status_code < 500, (r.status_code, r.text)
    body = r.json()
    assert set(body) == {"error", "detail"}, body
    for word in words:
        assert word in body["detail"], (word, body)


async def test_vapi_malformed_deliveries_answer_4xx_are_recorded_and_lose_nothing(
    stack: Stack,
) -> None:
    call_id = f"call-{uuid.uuid4().hex[:8]}"
    valid_end = end_of_call(call_id, DANA, DANA_CALL_1)
    ask = assistant_request(DANA)
    batch = tool_call(DANA, "memory_search", {"query": "order"})
    items = batch["message"]["toolCallList"]
    batch["message"]["toolCallList"] = [{**items[0], "id": f"tc-{i}"} for i in range(1000)]
    cases: list[tuple[bytes, tuple[str, ...]]] = [
        (raw(_with(ask, "message.type", 7)), ("message.type",)),
        (raw(_with(ask, "message.customer.number", 14155550123)), ("customer.number",)),
        (raw(_with(valid_end, "message.analysis.summary", {})), ("analysis.summary",)),
        (_nested(ask, 5000), ("nested",)),
        (DEEP, ()),
        (_huge_int(ask), ()),
        (_lone_surrogate(ask, "message.customer.number"), ("surrogate",)),
        (raw(_with(ask, "message.customer.number", "+1415\u00005550123")), ("NUL",)),
        (raw(batch), ("toolCallList", str(MAX_TOOL_CALLS))),
    ]
    with stack.http() as http:
        tenant = create_tenant(http)
        first = http.post(tenant.webhook, content=raw(valid_end), headers=tenant.vapi_headers)
        assert first.status_code == 200 and first.json()["duplicate"] is False
        for body, words in cases:
            r = http.post(tenant.webhook, content=body, headers=tenant.vapi_headers)
            _assert_4xx(r, *words)
            bad = {"Authorization": "Bearer wrong", "content-type": "application/json"}
            _assert_4xx(http.post(tenant.webhook, content=body, headers=bad))
        # What was accepted before is still there (a re-delivery is a duplicate of it), and a
        # valid delivery after the storm still works.
        again = http.post(tenant.webhook, content=raw(valid_end), headers=tenant.vapi_headers)
        assert again.status_code == 200 and again.json()["duplicate"] is True
        ok = http.post(tenant.webhook, content=raw(ask), headers=tenant.vapi_headers)
        assert ok.status_code == 200 and "assistant" in json.dumps(ok.json())
    rows = _rejections(stack.engine, tenant.agent_id)
    assert len(rows) == 2 * len(cases)
    unauthenticated = [r for r in rows if r.status_code == 401]
    assert len(unauthenticated) == len(cases)
    for row in unauthenticated:  # metadata and a short masked excerpt, never the whole body
        assert row.payload is not None and len(row.payload) < 300
        assert "body not kept" in row.payload and "4155550123" not in row.payload


async def test_retell_malformed_deliveries_answer_4xx_are_recorded_and_lose_nothing(
    stack: Stack,
) -> None:
    call_id = f"call-{uuid.uuid4().hex[:8]}"
    ended = call_ended(call_id, DANA, DANA_CALL_1)
    null_words = copy.deepcopy(ended)
    null_words["call"]["transcript_object"][0]["words"] = [None]
    with stack.http() as http:
        tenant = create_retell_tenant(http)
        assert tenant.post(http, "events", ended).json()["duplicate"] is False
        signed: list[tuple[str, bytes, tuple[str, ...]]] = [
            ("events", raw(null_words), ("words[0]",)),
            ("events", raw(_with(ended, "event", 7)), ("event",)),
            ("events", _nested(ended, 5000), ("nested",)),
            ("events", _huge_int(ended), ()),
            ("events", _lone_surrogate(ended, "call.transcript"), ("surrogate",)),
            ("inbound", raw(_with(call_inbound(DANA), "call_inbound.from_number", 1)), ("from",)),
            ("inbound", DEEP, ()),
            ("functions/memory_search", _huge_int(function_call(call_id, DANA, "x", {})), ()),
        ]
        for path, body, words in signed:
            _assert_4xx(tenant.post(http, path, body), *words)
            _assert_4xx(tenant.post(http, path, body, signature="v=1,d=" + "0" * 64))
        # A signature header with a timestamp of thousands of digits is just invalid.
        huge_stamp = "v=" + "9" * 5000 + ",d=" + "0" * 64
        r = tenant.post(http, "events", ended, signature=huge_stamp)
        _assert_4xx(r, "X-Retell-Signature")
        assert tenant.post(http, "events", ended).json()["duplicate"] is True
        later = call_ended(f"call-{uuid.uuid4().hex[:8]}", DANA, DANA_CALL_1)
        assert tenant.post(http, "events", later).json()["duplicate"] is False
    rows = _rejections(stack.engine, tenant.agent_id)
    assert len(rows) == 2 * len(signed) + 1
    assert all(len(r.payload or "") < 300 for r in rows if r.status_code == 401)


async def test_bland_malformed_deliveries_answer_4xx_are_recorded_and_lose_nothing(
    stack: Stack,
) -> None:
    call_id = f"bland-{uuid.uuid4().hex[:8]}"
    call = post_call(call_id, DANA, DANA_CALL_1)
    with stack.http() as http:
        tenant = create_bland_tenant(http)
        assert tenant.post_call(http, call).json()["duplicate"] is False

        def post_call_with(body: bytes, valid: bool) -> httpx.Response:
            return tenant.post_call(http, body, signature=None if valid else "0" * 64)

        def bearer(path: str) -> Callable[[bytes, bool], httpx.Response]:
            def send(body: bytes, valid: bool) -> httpx.Response:
                token = tenant.tool_token if valid else "wrong-token"
                return http.post(
                    tenant.url(path),
                    content=body,
                    headers={
                        "Authorization": f"Bearer {token}",
                        "content-type": "application/json",
                    },
                )

            return send

        cases: list[tuple[Callable[[bytes, bool], httpx.Response], bytes, tuple[str, ...]]] = [
            (post_call_with, DEEP, ()),
            (post_call_with, _nested(call, 5000), ("nested",)),
            (post_call_with, _huge_int(call), ()),
            (post_call_with, _lone_surrogate(call, "summary"), ("surrogate",)),
            (bearer("dynamic-data"), DEEP, ()),
            (bearer("dynamic-data"), _lone_surrogate(dynamic_data(DANA), "caller"), ()),
            (bearer("tools/memory_search"), _huge_int(tool_request(DANA, "order")), ()),
        ]
        for send, body, words in cases:
            _assert_4xx(send(body, True), *words)
            _assert_4xx(send(body, False))
        assert tenant.post_call(http, call).json()["duplicate"] is True
        later = post_call(f"bland-{uuid.uuid4().hex[:8]}", DANA, DANA_CALL_1)
        assert tenant.post_call(http, later).json()["duplicate"] is False
    rows = _rejections(stack.engine, tenant.agent_id)
    assert len(rows) == 2 * len(cases)
    assert all(len(r.payload or "") < 300 for r in rows if r.status_code == 401)


async def test_unknown_platforms_and_hooks_answer_404_naming_what_exists(stack: Stack) -> None:
    with stack.http() as http:
        tenant = create_tenant(http)
        r = http.post(f"/v1/webhooks/nope/{tenant.agent_id}", content=b"{}")
        assert r.status_code == 404, r.text
        assert r.json()["error"] == "NotFoundError"
        assert all(name in r.json()["detail"] for name in ("bland", "retell", "vapi"))
        for path in ("vapi/{a}/events", "retell/{a}", "retell/{a}/functions", "bland/{a}/x/y"):
            r = http.post("/v1/webhooks/" + path.format(a=tenant.agent_id), content=b"{}")
            assert r.status_code == 404, (path, r.text)
            assert "has no webhook" in r.json()["detail"]
        # A hook that exists goes on to the credential check.
        r = http.post(
            f"/v1/webhooks/retell/{tenant.agent_id}/functions/memory_search", content=b"{}"
        )
        assert r.status_code == 401, r.text
    # A URL naming no hook is not recorded against the agent; the refused credential is.
    assert [row.status_code for row in _rejections(stack.engine, tenant.agent_id)] == [401]


async def test_body_limit_answers_413_and_auth_failures_are_rate_limited(
    pg_url: str,
    pg_engine: Engine,
    temporal_env: WorkflowEnvironment,
    embedder: MiniLMEmbedder,
    tmp_path: Path,
) -> None:
    settings = make_settings(
        pg_url,
        tmp_path,
        temporal_address=temporal_address(temporal_env),
        max_body_bytes=64 * 1024,
        auth_failures_per_minute=3,
    )
    api = await asyncio.to_thread(lambda: ApiServer(settings, embedder).start())
    try:
        with httpx.Client(base_url=api.url, timeout=30) as http:
            tenant = create_tenant(http)
            big = _with(assistant_request(DANA), "message.padding", "x" * 70_000)
            r = http.post(tenant.webhook, content=raw(big), headers=tenant.vapi_headers)
            assert r.status_code == 413 and r.json()["error"] == "PayloadTooLargeError"
            assert "BACKLINE_MAX_BODY_BYTES" in r.json()["detail"]

            def chunks() -> Any:  # no Content-Length: counted as it streams
                yield raw(big)[:40_000]
                yield raw(big)[40_000:]

            r = http.post(tenant.webhook, content=chunks(), headers=tenant.vapi_headers)
            assert r.status_code == 413
            r = http.post("/v1/orgs", content=raw(big), headers={"Authorization": "Bearer x"})
            assert r.status_code == 413
            rows = _rejections(pg_engine, tenant.agent_id)
            assert [(x.reason, x.status_code) for x in rows] == [("PayloadTooLargeError", 413)] * 2
            # Three failed authentications from this address, then 429 with Retry-After.
            bad = {"Authorization": "Bearer wrong"}
            for _ in range(3):
                assert http.post(tenant.webhook, content=b"{}", headers=bad).status_code == 401
            r = http.post(tenant.webhook, content=raw(assistant_request(DANA)), headers=bad)
            assert r.status_code == 429 and r.json()["error"] == "RateLimitedError"
            assert 1 <= int(r.headers["retry-after"]) <= 60
            assert http.get("/v1/calls", headers=bad).status_code == 429
            assert len(_rejections(pg_engine, tenant.agent_id)) == 2 + 3  # 429s write nothing
    finally:
        await asyncio.to_thread(api.stop)


async def test_rest_bad_input_answers_4xx_and_other_orgs_learn_nothing(stack: Stack) -> None:
    with stack.http() as http:
        tenant = create_tenant(http)
        other = create_tenant(http)
        r = http.post(
            f"/v1/orgs/{other.org_id}/keys",
            json={"name": "b", "scopes": ["admin"]},
            headers=ADMIN,
        )
        outsider = {"Authorization": f"Bearer {r.json()['token']}"}
        base = f"/v1/agents/{tenant.agent_id}/prompts"
        push = {"template": "Hello {{caller_name}}", "message": "first"}
        assert http.post(f"{base}/versions", json=push, headers=ADMIN).status_code == 201
        move = {"version": 1, "reason": "go live"}
        assert http.put(f"{base}/labels/production", json=move, headers=ADMIN).status_code == 200
        # Another org's key gets the same 403 for an agent with a label, with none, and for an
        # agent that does not exist; an invalid body does not get it past the check either.
        answers = [
            http.put(f"{base}/labels/production", json=move, headers=outsider),
            http.put(f"{base}/labels/staging", json=move, headers=outsider),
            http.put(f"{base}/labels/production", json={"version": "x"}, headers=outsider),
            http.post(f"{base}/labels/staging/rollback", json={"reason": "oops"}, headers=outsider),
            http.put(
                "/v1/agents/no-such-agent/prompts/labels/production", json=move, headers=outsider
            ),
        ]
        assert [a.status_code for a in answers] == [403] * 5
        details = {a.json()["detail"].replace("no-such-agent", tenant.agent_id) for a in answers}
        assert len(details) == 1 and tenant.org_id not in details.pop()
        # Numbers past what the database holds, booleans for integers, unstorable text.
        bad = [
            http.get(f"{base}/versions/{2**40}", headers=ADMIN),
            http.get(f"{base}/versions/{'9' * 5000}", headers=ADMIN),
            http.get(
                f"{base}/diff", params={"from_version": 1, "to_version": 2**63}, headers=ADMIN
            ),
            http.put(f"{base}/labels/production", json={**move, "version": True}, headers=ADMIN),
            http.put(f"{base}/labels/production", json={**move, "version": 2**64}, headers=ADMIN),
            http.put(
                f"{base}/labels/production", json={**move, "reason": "go\u0000live"}, headers=ADMIN
            ),
            http.post(
                f"{base}/versions",
                content=raw(push).replace(b"first", b"\\ud800"),
                headers={**ADMIN, "content-type": "application/json"},
            ),
            http.post(
                f"{base}/versions",
                content=b"[" * 100_000,
                headers={**ADMIN, "content-type": "application/json"},
            ),
            http.post(
                f"/v1/agents/{tenant.agent_id}/knowledge/bases", json={"name": "📚"}, headers=ADMIN
            ),
            http.post(
                f"/v1/agents/{tenant.agent_id}/knowledge/sources",
                json={"kind": "text", "name": "faq", "kb": "📚", "text": "Opening hours"},
                headers=ADMIN,
            ),
        ]
        for r in bad:
            assert 400 <= r.status_code < 500, (r.request.url, r.status_code, r.text)
            assert set(r.json()) == {"error", "detail"}
        # Nothing above moved the label.
        labels = http.get(f"{base}/labels", headers=ADMIN).json()
        assert [(x["name"], x["version"]) for x in labels] == [("production", 1)]


async def test_custom_malformed_deliveries_answer_4xx_are_recorded_and_lose_nothing(
    stack: Stack,
) -> None:
    call_id = f"call-{uuid.uuid4().hex[:8]}"
    ended = custom.call_ended(call_id, DANA, DANA_CALL_1)
    started = custom.call_started(DANA)
    batch = custom.tool_calls(DANA, [(f"tc-{i}", "memory_search", {}) for i in range(1000)])
    cases: list[tuple[bytes, tuple[str, ...]]] = [
        (raw(_with(started, "type", 7)), ("'type'", "call.started")),
        (raw(_with(started, "version", "0")), ("'version'", "accepted values: 1")),
        (raw(_with(started, "call.caller_number", 14155550123)), ("call.caller_number",)),
        (raw(_with(ended, "summary", {})), ("summary",)),
        (raw(_with(ended, "call.id", "c" * 100_000)), ("call.id", "256")),
        (_nested(started, 5000), ("nested",)),
        (DEEP, ()),
        (_huge_int(started), ()),
        (_lone_surrogate(started, "call.caller_number"), ("surrogate",)),
        (raw(_with(started, "call.caller_number", "+1415\u00005550123")), ("NUL",)),
        (raw(batch), ("tool_calls", "32")),
    ]
    with stack.http() as http:
        tenant = custom.create_custom_tenant(http)
        assert tenant.post(http, ended).json()["duplicate"] is False
        for body, words in cases:
            _assert_4xx(tenant.post(http, body), *words)
            _assert_4xx(tenant.post(http, body, secrets=("wrong secret",)))
        # A header of thousands of characters is just invalid.
        huge = {custom.SIGNATURE_HEADER: "t=1,v1=" + "0" * 5000, **custom.JSON}
        _assert_4xx(tenant.post(http, started, headers=huge), "Backline-Signature")
        assert tenant.post(http, ended).json()["duplicate"] is True
        ok = tenant.post(http, started)
        assert ok.status_code == 200 and ok.json()["context"]["caller_known"] is False
    rows = _rejections(stack.engine, tenant.agent_id)
    assert len(rows) == 2 * len(cases) + 1
    for row in (r for r in rows if r.status_code == 401):
        assert row.payload is not None and len(row.payload) < 300
        assert "4155550123" not in row.payload
