"""Backline as the platform's LLM: the official ``openai`` client against the running API's
OpenAI-compatible endpoint, with the fake LLM as the upstream model."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from sqlmodel import Session, select

from core.agent.runtime import DEFAULT_FALLBACK
from core.calls.models import Call, CallEvent
from fakes.llm import FakeLLM, FakeLLMConfig, fake_llm
from tests.conftest import FIXTURES, Stack, wait_for
from tests.helpers import ADMIN, Tenant, create_tenant

pytestmark = [pytest.mark.postgres, pytest.mark.temporal]

FACT = "Our office is open Monday to Friday, 8am to 6pm."


@pytest.fixture(scope="module")
def llm() -> Iterator[FakeLLM]:
    with fake_llm() as fake:
        yield fake


@pytest.fixture
def stack_settings(llm: FakeLLM) -> dict[str, Any]:
    llm.config = FakeLLMConfig()
    return {"llm_base_url": llm.base_url, "llm_model": "fake-default", "llm_timeout_s": 5.0}


def release(stack: Stack, http: httpx.Client, tenant: Tenant) -> None:
    r = http.post(
        f"/v1/agents/{tenant.agent_id}/prompts/versions",
        json={
            "template": f"You are Acme Home Services' phone agent. {FACT}",
            "model": {"provider": "openai", "model": "acme-model", "temperature": 0.2},
            "message": "first",
        },
        headers=ADMIN,
    )
    assert r.status_code == 201, r.text
    r = http.put(
        f"/v1/agents/{tenant.agent_id}/prompts/labels/production",
        json={"version": r.json()["version"], "reason": "release"},
        headers=ADMIN,
    )
    assert r.status_code == 200, r.text
    state = stack.api._app_state()
    wait_for(lambda: state.prompts.resolve(tenant.agent_id, "probe") is not None, timeout=10)


def client(stack: Stack, tenant: Tenant, path: str = "") -> openai.OpenAI:
    return openai.OpenAI(
        base_url=f"{stack.api.url}/v1/agents/{tenant.agent_id}{path}",
        api_key=tenant.vapi_token,
        max_retries=0,
    )


def call_body(call_id: str, number: str = "+14155550123") -> dict[str, Any]:
    body: dict[str, Any] = json.loads((FIXTURES / "vapi_custom_llm_request.json").read_text())
    body["call"]["id"] = call_id
    body["call"]["customer"]["number"] = number
    return {"call": body["call"]}


def events(stack: Stack, call_id: str) -> list[CallEvent]:
    with Session(stack.engine) as session:
        return list(
            session.exec(
                select(CallEvent)
                .where(CallEvent.platform_call_id == call_id)
                .order_by(CallEvent.id)  # type: ignore[arg-type]
            )
        )


async def test_a_whole_answer_follows_the_served_version(stack: Stack, llm: FakeLLM) -> None:
    with stack.http() as http:
        tenant = create_tenant(http)
        release(stack, http, tenant)
    call_id = f"vapi-{uuid.uuid4().hex[:10]}"
    messages: list[Any] = [
        {"role": "system", "content": "You are the assistant configured on VAPI."},
        {"role": "assistant", "content": "Thanks for calling Acme."},
        {"role": "user", "content": "When is your office open?"},
    ]
    with client(stack, tenant) as c:
        answer = c.chat.completions.create(
            model="gpt-4o", messages=messages, extra_body=call_body(call_id)
        )
    assert answer.choices[0].message.content == FACT
    assert answer.choices[0].finish_reason == "stop"
    assert answer.model == "acme-model"  # the version's model wins over the request's
    sent = llm.requests[-1].body
    assert sent["model"] == "acme-model"
    assert "configured on VAPI" not in json.dumps(sent["messages"])

    found = events(stack, call_id)
    assert found[0].type == "context_request" and found[0].data["prompt_version"] == "v1"
    opened = next(e for e in found if e.platform_type == "custom_llm_opened")
    assert (opened.data["requested_model"], opened.data["model"]) == ("gpt-4o", "acme-model")
    kinds = {e.type for e in found}
    assert {"knowledge_retrieval", "transcript_update"} <= kinds
    with Session(stack.engine) as session:
        call = session.exec(select(Call).where(Call.platform_call_id == call_id)).one()
    assert (call.platform, call.prompt_version) == ("vapi", "v1")

    # The same call again: not opened twice.
    with client(stack, tenant, "/vapi-llm") as c:
        c.chat.completions.create(
            model="gpt-4o",
            messages=[*messages, {"role": "assistant", "content": FACT}, messages[-1]],
            extra_body=call_body(call_id),
        )
    assert [e.type for e in events(stack, call_id)].count("context_request") == 1


async def test_a_streamed_answer_ends_with_done(stack: Stack) -> None:
    with stack.http() as http:
        tenant = create_tenant(http)
        release(stack, http, tenant)
    with client(stack, tenant) as c:
        chunks = list(
            c.chat.completions.create(
                model="gpt-4o",
                messages=[{"role": "user", "content": "When is your office open?"}],
                stream=True,
                stream_options={"include_usage": True},
            )
        )
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert text.strip() == FACT
    assert len([ch for ch in chunks if ch.choices and ch.choices[0].delta.content]) > 3
    finishes = [ch.choices[0].finish_reason for ch in chunks if ch.choices]
    assert finishes[-1] == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0
    with httpx.Client(base_url=stack.api.url, timeout=30) as http:
        r = http.post(
            f"/v1/agents/{tenant.agent_id}/chat/completions",
            json={"messages": [{"role": "user", "content": "Hi"}], "stream": True},
            headers=tenant.vapi_headers,
        )
    assert r.headers["content-type"].startswith("text/event-stream")
    assert r.text.rstrip().endswith("data: [DONE]")
    # Without call metadata: each request is a call of its own, served without memory.
    with Session(stack.engine) as session:
        contexts = list(
            session.exec(
                select(CallEvent).where(
                    CallEvent.agent_id == tenant.agent_id, CallEvent.type == "context_request"
                )
            )
        )
    assert len(contexts) == 2 and {e.platform for e in contexts} == {"custom_llm"}
    assert all(e.data["no_memory"] and e.data["prompt_version"] == "v1" for e in contexts)


async def test_backline_tools_run_server_side_and_platform_tools_pass_through(
    stack: Stack,
) -> None:
    with stack.http() as http:
        tenant = create_tenant(http)
        release(stack, http, tenant)
    transfer = {
        "type": "function",
        "function": {
            "name": "transfer_call",
            "description": "Transfer the caller to a human operator",
            "parameters": {"type": "object", "properties": {}},
        },
    }
    call_id = f"vapi-{uuid.uuid4().hex[:10]}"
    with client(stack, tenant) as c:
        own = c.chat.completions.create(
            model="gpt-4o",
            messages=[{"role": "user", "content": "Do you remember what I asked last time?"}],
            tools=[transfer],  # type: ignore[list-item]
            extra_body=call_body(call_id),
        )
        theirs = c.chat.completions.create(
            model="gpt-4o",
            messages=[{"role": "user", "content": "Please transfer me to a human operator."}],
            tools=[transfer],  # type: ignore[list-item]
            extra_body=call_body(call_id),
        )
    assert own.choices[0].finish_reason == "stop" and not own.choices[0].message.tool_calls
    assert own.choices[0].message.content
    tool_events = [e for e in events(stack, call_id) if e.type == "tool_calls"]
    assert [e.data["tools"] for e in tool_events] == [["memory_search"]]
    assert theirs.choices[0].finish_reason == "tool_calls"
    [passed] = theirs.choices[0].message.tool_calls or []
    assert passed.function.name == "transfer_call"  # type: ignore[union-attr]


async def test_an_upstream_failure_answers_the_fallback_sentence(
    stack: Stack, llm: FakeLLM
) -> None:
    with stack.http() as http:
        tenant = create_tenant(http)
        release(stack, http, tenant)
        r = http.post(
            f"/v1/agents/{tenant.agent_id}/chat/completions",
            json={"messages": [{"role": "user", "content": "Hi"}]},
        )
        assert r.status_code == 401, r.text
    llm.config = FakeLLMConfig(failure="server_error")
    try:
        with client(stack, tenant) as c:
            whole = c.chat.completions.create(
                model="gpt-4o", messages=[{"role": "user", "content": "When is your office open?"}]
            )
            streamed = list(
                c.chat.completions.create(
                    model="gpt-4o",
                    messages=[{"role": "user", "content": "When is your office open?"}],
                    stream=True,
                )
            )
    finally:
        llm.config = FakeLLMConfig()
    assert whole.choices[0].message.content == DEFAULT_FALLBACK
    text = "".join(ch.choices[0].delta.content or "" for ch in streamed if ch.choices)
    assert text == DEFAULT_FALLBACK


async def test_concurrent_first_requests_of_a_call_open_it_once(stack: Stack) -> None:
    with stack.http() as http:
        tenant = create_tenant(http)
        release(stack, http, tenant)
    call_id = f"vapi-{uuid.uuid4().hex[:10]}"
    async with openai.AsyncOpenAI(
        base_url=f"{stack.api.url}/v1/agents/{tenant.agent_id}",
        api_key=tenant.vapi_token,
        max_retries=0,
    ) as c:
        answers = await asyncio.gather(
            *(
                c.chat.completions.create(
                    model="gpt-4o",
                    messages=[{"role": "user", "content": "When is your office open?"}],
                    extra_body=call_body(call_id),
                )
                for _ in range(4)
            )
        )
    assert all(a.choices[0].message.content == FACT for a in answers)
    assert [e.type for e in events(stack, call_id)].count("context_request") == 1
