"""The post-call LLM path against a local fake of the OpenAI wire format: used when it answers,
and a clean fall back to the non-LLM path (visible in history) when it fails."""

from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlmodel import Session, select
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory

from connectors.llm import OpenAICompatibleAnalyzer
from core.calls.service import CallsService
from core.memory.models import Fact, Memory
from orchestration.codec import codec_for
from orchestration.post_call_types import (
    ACT_ANALYZE_LLM,
    ACT_ANALYZE_RULES,
    PostCallInput,
    PostCallResult,
)
from orchestration.starters import start_post_call
from tests.conftest import Stack, build_activities, make_worker
from tests.e2e.test_temporal_privacy import payloads_in
from tests.fakes.openai_server import fake_openai_server
from tests.helpers import DANA_CALL_1, create_tenant, end_of_call, raw

pytestmark = [pytest.mark.postgres, pytest.mark.temporal]
DANA = "+14155550123"
LLM_ANSWER = json.dumps(
    {
        "summary": "Dana reported a leaking water heater; plumber booked for Thursday.",
        "facts": [
            {"key": "name", "value": "Dana"},
            {"key": "contact_preference", "value": "email"},
        ],
    }
)


async def _run_post_call(
    stack: Stack, embedder, analyzer
) -> tuple[PostCallResult, list[str], str, WorkflowHistory]:  # type: ignore[no-untyped-def]
    with stack.http() as http:
        tenant = create_tenant(http)
    call_id = f"call-{uuid.uuid4().hex[:8]}"
    with Session(stack.engine) as s:
        receipt = CallsService(s, stack.settings.secret_key.get_secret_value()).receive_call_ended(
            org_id=tenant.org_id,
            agent_id=tenant.agent_id,
            platform="vapi",
            call_id=call_id,
            raw=raw(end_of_call(call_id, DANA, DANA_CALL_1)),
            caller_number=DANA,
        )
        s.commit()
    queue = f"{stack.settings.task_queue}-llm"
    settings = stack.settings.model_copy(update={"task_queue": queue})
    activities = build_activities(settings, stack.engine, embedder, analyzer)
    with ThreadPoolExecutor(max_workers=4) as executor:
        async with make_worker(stack.client, settings, activities, executor):
            await start_post_call(
                stack.client,
                workflow_id=receipt.workflow_id,
                data=PostCallInput(inbox_id=receipt.inbox_id, platform="vapi", call_id=call_id),
                task_queue=queue,
            )
            handle = stack.client.get_workflow_handle(
                receipt.workflow_id, result_type=PostCallResult
            )
            result = await handle.result()
            history = await handle.fetch_history()
    scheduled = [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]
    # Local activities are recorded as markers whose data names the activity type.
    for e in history.events:
        if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED:
            for payload in e.marker_recorded_event_attributes.details["data"].payloads:
                data = json.loads(payload.data)
                scheduled.append(str(data.get("activity_type") or data.get("activityType") or ""))
    return result, scheduled, call_id, history


async def test_llm_summary_and_facts_are_used_when_the_llm_answers(stack: Stack, embedder) -> None:  # type: ignore[no-untyped-def]
    with fake_openai_server(mode="ok", content=LLM_ANSWER) as fake:
        analyzer = OpenAICompatibleAnalyzer(fake.base_url, "local-model", None, timeout_s=5)
        result, scheduled, call_id, _ = await _run_post_call(stack, embedder, analyzer)
        assert fake.requests and fake.requests[0].body["model"] == "local-model"
    assert result.analysis_method == "llm"
    assert ACT_ANALYZE_RULES not in scheduled
    with Session(stack.engine) as s:
        memory = s.exec(select(Memory).where(Memory.source_call_id == call_id)).one()
        facts = {f.key: f.value for f in s.exec(select(Fact).where(Fact.source_call_id == call_id))}
    assert memory.text.startswith("Dana reported a leaking water heater")
    assert memory.method == "llm"
    assert facts == {"name": "Dana", "contact_preference": "email"}


@pytest.mark.parametrize("mode", ["invalid_json", "slow", "unauthorized"])
async def test_llm_failure_falls_back_to_the_non_llm_path(
    stack: Stack, embedder, mode: str
) -> None:  # type: ignore[no-untyped-def]
    with fake_openai_server(mode=mode, slow_s=3.0) as fake:  # type: ignore[arg-type]
        analyzer = OpenAICompatibleAnalyzer(fake.base_url, "local-model", None, timeout_s=0.5)
        result, scheduled, call_id, _ = await _run_post_call(stack, embedder, analyzer)
    assert result.status == "processed"
    assert result.analysis_method == "extractive+rules"
    assert scheduled.count(ACT_ANALYZE_LLM) == 1 and ACT_ANALYZE_RULES in scheduled
    with Session(stack.engine) as s:
        memory = s.exec(select(Memory).where(Memory.source_call_id == call_id)).one()
    assert "water heater" in memory.text.lower()
    assert memory.method == "extractive+rules"


async def test_what_the_llm_answered_stays_out_of_history_when_it_fails(
    stack: Stack, embedder
) -> None:  # type: ignore[no-untyped-def]
    """The schema error quotes the LLM's output; the failure in history names the reason only
    (decrypted, as an operator would read it)."""
    with fake_openai_server(mode="invalid_json") as fake:
        analyzer = OpenAICompatibleAnalyzer(fake.base_url, "local-model", None, timeout_s=5)
        result, _, _, history = await _run_post_call(stack, embedder, analyzer)
    assert result.analysis_method == "extractive+rules"
    failures = [
        e.activity_task_failed_event_attributes.failure
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED
    ]
    assert failures, "the LLM activity should have failed in history"
    opened = await codec_for(stack.settings).decode(
        [p for e in history.events for p in payloads_in(e)]
    )
    readable = b"".join(p.data for p in opened) + b"".join(f.SerializeToString() for f in failures)
    assert b"does not match the analysis schema" in readable
    # pydantic quotes the output's head and tail ("Sure! Here is the summar...{not json").
    assert b"sure! here is the summar" not in readable.lower()
    assert b"{not json" not in readable
