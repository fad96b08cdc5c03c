"""Temporal holds nothing personal: a real post-call run on the dev server leaves only
ciphertext in history, and what the ciphertext holds is ids and counts; the operator-only codec
endpoint decodes it for the Temporal UI and refuses everyone else."""

from __future__ import annotations

import asyncio
import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format
from google.protobuf.message import Message
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from temporalio import activity
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.client import Client, WorkflowHistory
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from api.routes.temporal_codec import session_cookie
from cli.worker import WORKFLOWS, worker_for
from connectors.embedder import MiniLMEmbedder
from core.memory.models import Memory
from orchestration.codec import ENCODING, codec_for, data_converter_for
from orchestration.post_call_types import (
    ACT_ANALYZE_RULES,
    AnalysisResult,
    CallInput,
)
from tests.conftest import (
    ADMIN_TOKEN,
    SECRET_KEY,
    ApiServer,
    Stack,
    build_activities,
    make_settings,
    post_call_result,
    temporal_address,
)
from tests.helpers import (
    ADMIN,
    DistinctiveCaller,
    create_tenant,
    end_of_call,
    raw,
)

pytestmark = [pytest.mark.postgres, pytest.mark.temporal]
LOCAL_ACTIVITY_BOOKKEEPING = {
    "seq",
    "attempt",
    "activity_id",
    "activity_type",
    "complete_time",
    "backoff",
    "original_schedule_time",
    "activation_index",
}


def payloads_in(message: Message) -> list[Payload]:
    """Every Payload anywhere inside a protobuf message (inputs, results, failures, memos)."""
    found: list[Payload] = []
    for field, value in message.ListFields():
        if field.message_type is None:
            continue
        if field.message_type.GetOptions().map_entry:
            items = list(value.values())
        elif field.is_repeated:
            items = list(value)
        else:
            items = [value]
        for item in items:
            if isinstance(item, Payload):
                found.append(item)
            elif isinstance(item, Message):
                found.extend(payloads_in(item))
    return found


async def run_post_call(stack: Stack, caller: DistinctiveCaller) -> tuple[Any, str]:
    with stack.http() as http:
        tenant = create_tenant(http)
        call_id = f"call-{uuid.uuid4().hex[:8]}"
        r = http.post(
            tenant.webhook,
            content=raw(end_of_call(call_id, caller.number, caller.turns)),
            headers=tenant.vapi_headers,
        )
        assert r.status_code == 200, r.text
        workflow_id: str = r.json()["workflow_id"]
    result = await post_call_result(stack.client, workflow_id)
    assert result.status == "processed" and result.memories >= 1 and result.facts_added >= 2
    return tenant, workflow_id


async def raw_history(env: WorkflowEnvironment, workflow_id: str) -> WorkflowHistory:
    """The history as anyone reaching the Temporal server (or its UI's API) reads it."""
    plain = await Client.connect(temporal_address(env), namespace="default")
    return await plain.get_workflow_handle(workflow_id).fetch_history()


async def test_post_call_history_holds_only_ciphertext_and_only_ids(
    stack: Stack, temporal_env: WorkflowEnvironment
) -> None:
    caller = DistinctiveCaller.new()
    _tenant, workflow_id = await run_post_call(stack, caller)
    history = await raw_history(temporal_env, workflow_id)

    blob = b"".join(e.SerializeToString() for e in history.events).lower()
    for marker in caller.markers(SECRET_KEY):
        assert marker not in blob, marker
    # Local activities leave a marker whose "data" detail is the SDK's own bookkeeping
    # (sequence, attempt, activity type, times), written in clear by design; all else is sealed.
    bookkeeping = [
        e.marker_recorded_event_attributes.details["data"].payloads[0]
        for e in history.events
        if e.HasField("marker_recorded_event_attributes")
    ]
    assert bookkeeping
    for p in bookkeeping:
        assert set(json.loads(p.data)) <= LOCAL_ACTIVITY_BOOKKEEPING, p.data
    sealed = [p for e in history.events for p in payloads_in(e) if p not in bookkeeping]
    assert len(sealed) >= 8  # start input, activity inputs and results, the workflow result
    assert [p for p in sealed if p.metadata["encoding"] != ENCODING] == []

    # Decrypted (as the worker sees them), the payloads are still only ids, counts and methods.
    opened = await codec_for(stack.settings).decode(sealed)
    text = b"".join(p.data for p in opened).lower()
    assert b'"call_pk"' in text and b"extractive+rules" in text
    for marker in caller.markers(SECRET_KEY):
        assert marker not in text, marker


async def test_codec_endpoint_decodes_for_the_operator_only(
    stack: Stack, temporal_env: WorkflowEnvironment
) -> None:
    caller = DistinctiveCaller.new()
    tenant, workflow_id = await run_post_call(stack, caller)
    history = await raw_history(temporal_env, workflow_id)
    started = history.events[0].workflow_execution_started_event_attributes.input
    body = json_format.MessageToJson(started)
    with stack.http() as http:
        org_admin = http.post(
            f"/v1/orgs/{tenant.org_id}/keys", json={"name": "v", "scopes": ["admin"]}, headers=ADMIN
        ).json()["token"]
        url = "/v1/temporal/codec/decode"
        headers = {"content-type": "application/json", "x-namespace": "default"}
        r = http.post(url, content=body, headers=headers)
        assert r.status_code == 401 and r.json()["error"] == "AuthenticationError"
        as_org_admin = {**headers, "Authorization": f"Bearer {org_admin}"}
        r = http.post(url, content=body, headers=as_org_admin)
        assert r.status_code == 403 and r.json()["error"] == "PermissionDeniedError"
        assert caller.name not in r.text

        r = http.post(url, content=body, headers={**headers, **ADMIN})
        assert r.status_code == 200, r.text
        [decoded] = json_format.Parse(r.text, Payloads()).payloads
        assert decoded.metadata["encoding"] == b"json/plain"
        assert b'"inbox_id"' in decoded.data and b'"vapi"' in decoded.data

        # Encode is the inverse, for the CLI and UI round trips.
        r = http.post(
            "/v1/temporal/codec/encode",
            content=json_format.MessageToJson(Payloads(payloads=[decoded])),
            headers={**headers, **ADMIN},
        )
        assert r.status_code == 200
        [again] = json_format.Parse(r.text, Payloads()).payloads
        assert again.metadata["encoding"] == ENCODING and again.data != decoded.data

        r = http.post(url, content=b"{not json", headers={**headers, **ADMIN})
        assert r.status_code == 422 and r.json()["error"] == "InvalidInputError"

        # The Temporal UI's origin may call it from the browser; another origin gets no CORS.
        ui = f"http://127.0.0.1:{stack.settings.temporal_ui_port}"
        pre = {"Origin": ui, "Access-Control-Request-Method": "POST"}
        r = http.options(url, headers=pre)
        assert r.status_code == 204 and r.headers["access-control-allow-origin"] == ui
        assert "authorization" in r.headers["access-control-allow-headers"].lower()
        r = http.options(url, headers={**pre, "Origin": "http://evil.example"})
        assert "access-control-allow-origin" not in r.headers


async def test_the_ui_decodes_with_the_operator_browser_session_and_nothing_else(
    stack: Stack, temporal_env: WorkflowEnvironment
) -> None:
    """The Temporal UI cannot send a bearer: the operator signs the browser in, and the UI's
    requests (credentials included) carry the session cookie."""
    caller = DistinctiveCaller.new()
    _tenant, workflow_id = await run_post_call(stack, caller)
    history = await raw_history(temporal_env, workflow_id)
    body = json_format.MessageToJson(
        history.events[0].workflow_execution_started_event_attributes.input
    )
    url = "/v1/temporal/codec/decode"
    headers = {"content-type": "application/json", "x-namespace": "default"}
    with stack.http() as browser:
        assert browser.get("/v1/temporal/codec/login").status_code == 200
        r = browser.post("/v1/temporal/codec/login", data={"token": "not-the-operator-token"})
        assert r.status_code == 401 and "backline_codec_session" not in browser.cookies
        assert browser.post(url, content=body, headers=headers).status_code == 401

        r = browser.post("/v1/temporal/codec/login", data={"token": ADMIN_TOKEN})
        assert r.status_code == 200
        cookie = r.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
        r = browser.post(url, content=body, headers=headers)
        assert r.status_code == 200, r.text
        [decoded] = json_format.Parse(r.text, Payloads()).payloads
        assert b'"inbox_id"' in decoded.data

    # A forged or expired session is refused like no credential at all.
    with stack.http() as other:
        for value in ("9999999999.forged", session_cookie(stack.settings, now=0)):
            other.cookies.set("backline_codec_session", value)
            assert other.post(url, content=body, headers=headers).status_code == 401


async def test_a_history_recorded_before_ids_only_payloads_still_completes_and_replays(
    pg_url: str,
    pg_engine: Engine,
    temporal_env: WorkflowEnvironment,
    embedder: MiniLMEmbedder,
    tmp_path: Path,
) -> None:
    """Workflows in flight at upgrade carry the analysis text in their history: the memory
    write still uses it, and the current workflow code replays such a history."""

    @activity.defn(name=ACT_ANALYZE_RULES)
    def analysis_as_it_was_sent(data: CallInput) -> AnalysisResult:
        return AnalysisResult(
            summary="Legacy summary: the caller asked about a flux capacitor.",
            facts=[["contact_preference", "phone"], ["name", "Marty"]],
            method="extractive+rules",
        )

    settings = make_settings(pg_url, tmp_path, temporal_address=temporal_address(temporal_env))
    api = await asyncio.to_thread(lambda: ApiServer(settings, embedder).start())
    real = build_activities(settings, pg_engine, embedder, analyzer=None)
    try:
        with ThreadPoolExecutor(max_workers=4) as executor:
            worker = worker_for(
                temporal_env.client,
                settings.task_queue,
                [real],
                executor,
                stand_ins=[analysis_as_it_was_sent],
            )
            async with worker:
                stack = Stack(settings, pg_engine, api, temporal_env.client)
                tenant, workflow_id = await run_post_call(stack, DistinctiveCaller.new())
    finally:
        await asyncio.to_thread(api.stop)

    with Session(pg_engine) as session:
        call_id = workflow_id.removeprefix(f"post-call-{tenant.agent_id}-vapi-")
        summary = session.exec(select(Memory).where(Memory.source_call_id == call_id)).one()
        assert summary.text.startswith("Legacy summary: the caller asked about a flux capacitor")

    history = await temporal_env.client.get_workflow_handle(workflow_id).fetch_history()
    await Replayer(
        workflows=list(WORKFLOWS), data_converter=data_converter_for(settings)
    ).replay_workflow(history)
