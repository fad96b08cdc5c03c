"""The chat-model connector and the official OpenAI client against the local fake LLM, over real
HTTP; and the fake's scripted policy, whose answers must follow from what it is sent."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from typing import Literal

import openai
import pytest

from connectors.chat_llm import OpenAIChatModel
from core.agent.llm import (
    ChatDelta,
    ChatMessage,
    ChatModel,
    ChatModelError,
    ChatModelUnavailableError,
    ChatResult,
    ModelSettings,
    ToolCall,
    ToolSpec,
)
from fakes.llm import FakeLLM, fake_llm

MODEL = "agent-model-a"
SLACK_S = 0.5

FACTS = """You are the receptionist of Acme Dental.
We are open Monday to Friday from 8am to 5pm.
Parking is free behind the building.
A cleaning costs 90 dollars."""

BOOK = ToolSpec(
    name="book_appointment",
    description="Book an appointment for the caller at a date and time.",
    parameters={
        "type": "object",
        "properties": {
            "date": {"type": "string", "description": "day of the appointment"},
            "time": {"type": "string"},
            "party_size": {"type": "integer"},
            "name": {"type": "string"},
        },
        "required": ["date", "time", "name"],
    },
)
MEMORY = ToolSpec(
    name="memory_search",
    description="Search what the caller said in previous calls.",
    parameters={
        "type": "object",
        "properties": {"query": {"type": "string"}},
        "required": ["query"],
    },
)
KNOWLEDGE = ToolSpec(
    name="knowledge_search",
    description="Search the knowledge base to answer the caller's questions.",
    parameters={
        "type": "object",
        "properties": {"query": {"type": "string"}},
        "required": ["query"],
    },
)
BOOKING_ASK = "Hi, this is Dana Smith. I'd like to book an appointment for Tuesday at 3pm for 2."


@pytest.fixture
def fake() -> Iterator[FakeLLM]:
    with fake_llm() as server:
        yield server


def model_for(server: FakeLLM, api_key: str | None = "sk-test") -> OpenAIChatModel:
    return OpenAIChatModel(base_url=server.base_url, api_key=api_key)


def settings(**overrides: object) -> ModelSettings:
    values: dict[str, object] = {"model": MODEL, "timeout_s": 5.0, **overrides}
    return ModelSettings(**values)  # type: ignore[arg-type]


def convo(system: str, user: str) -> list[ChatMessage]:
    return [ChatMessage.system(system), ChatMessage.user(user)]


async def collect(
    model: ChatModel, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec] = (), **kw: object
) -> tuple[list[ChatDelta], ChatResult]:
    deltas = [d async for d in model.stream(messages, tools, settings=settings(**kw))]
    assert deltas[-1].result is not None
    assert all(d.result is None for d in deltas[:-1])
    return deltas[:-1], deltas[-1].result


# --- the official client against the fake ----------------------------------------------------


def test_official_client_non_streaming(fake: FakeLLM) -> None:
    client = openai.OpenAI(base_url=fake.base_url, api_key="sk-test", max_retries=0)
    completion = client.chat.completions.create(
        model=MODEL,
        messages=[
            {"role": "system", "content": FACTS},
            {"role": "user", "content": "Is parking free?"},
        ],
    )
    assert completion.model == MODEL
    assert completion.choices[0].message.content == "Parking is free behind the building."
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.completion_tokens > 0
    assert fake.requests[0].headers["authorization"] == "Bearer sk-test"


def test_official_client_streaming_with_usage(fake: FakeLLM) -> None:
    client = openai.OpenAI(base_url=fake.base_url, api_key="sk-test", max_retries=0)
    chunks = list(
        client.chat.completions.create(
            model=MODEL,
            messages=[
                {"role": "system", "content": FACTS},
                {"role": "user", "content": "Is parking free?"},
            ],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Parking is free behind the building."
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) == 6
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert {c.model for c in chunks} == {MODEL}


# --- the connector ---------------------------------------------------------------------------


async def test_complete_returns_content_usage_model_and_sends_settings(fake: FakeLLM) -> None:
    fake.config.ttft_s = 0.1
    result = await model_for(fake).complete(
        convo(FACTS, "When are you open?"),
        [BOOK],
        settings=settings(temperature=0.2, max_tokens=50),
    )
    assert result.content == "We are open Monday to Friday from 8am to 5pm."
    assert result.tool_calls == ()
    assert result.model == MODEL and result.finish_reason == "stop"
    assert result.usage is not None and result.usage.completion_tokens == 11
    assert result.usage.total_tokens == result.usage.prompt_tokens + 11
    assert result.ttft_s is not None and 0.1 <= result.ttft_s == result.latency_s
    body = fake.requests[0].body
    assert body["temperature"] == 0.2 and body["max_tokens"] == 50 and not body.get("stream")
    assert body["tools"][0]["function"]["name"] == "book_appointment"
    assert body["tools"][0]["function"]["parameters"] == BOOK.parameters


async def test_stream_assembles_content_with_usage_and_ttft(fake: FakeLLM) -> None:
    fake.config.ttft_s = 0.15
    fake.config.token_delay_s = 0.02
    deltas, result = await collect(model_for(fake), convo(FACTS, "When are you open?"))
    assert [d.content for d in deltas][:3] == ["We ", "are ", "open "]
    assert "".join(d.content for d in deltas) == result.content
    assert result.content == "We are open Monday to Friday from 8am to 5pm."
    assert result.usage is not None and result.usage.completion_tokens == 11
    assert result.ttft_s is not None and 0.15 <= result.ttft_s < 0.15 + SLACK_S
    # The rest of the answer arrives after the first token: 9 more words, 20 ms apart.
    assert result.latency_s >= result.ttft_s + 0.15
    assert result.finish_reason == "stop"
    body = fake.requests[0].body
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}


async def test_tool_call_non_streamed_and_streamed_agree(fake: FakeLLM) -> None:
    model = model_for(fake)
    messages = convo("You book visits.", BOOKING_ASK)
    whole = await model.complete(messages, [BOOK], settings=settings())
    deltas, streamed = await collect(model, messages, [BOOK])
    assert deltas == []  # nothing spoken: the model called a tool
    for result in (whole, streamed):
        assert result.finish_reason == "tool_calls" and result.content == ""
        (call,) = result.tool_calls
        assert call.name == "book_appointment" and call.id.startswith("call_")
        assert call.parsed_arguments() == {
            "date": "Tuesday",
            "time": "3pm",
            "party_size": 2,
            "name": "Dana Smith",
        }
    assert whole.tool_calls == streamed.tool_calls


async def test_fallback_model_answers_when_the_primary_fails(fake: FakeLLM) -> None:
    fake.config.failure = "server_error"
    fake.config.failure_models = frozenset({MODEL})
    model = model_for(fake)
    result = await model.complete(
        convo(FACTS, "Is parking free?"), settings=settings(fallback_model="backup-model")
    )
    assert result.model == "backup-model"
    assert result.content == "Parking is free behind the building."
    _, streamed = await collect(
        model, convo(FACTS, "Is parking free?"), fallback_model="backup-model"
    )
    assert streamed.model == "backup-model"
    assert [r.body["model"] for r in fake.requests] == [MODEL, "backup-model"] * 2


async def test_fallback_model_answers_when_the_primary_times_out(fake: FakeLLM) -> None:
    fake.config.failure = "timeout"
    fake.config.failure_models = frozenset({MODEL})
    started = time.monotonic()
    result = await model_for(fake).complete(
        convo(FACTS, "Is parking free?"),
        settings=settings(timeout_s=0.3, fallback_model="backup-model"),
    )
    assert result.model == "backup-model"
    assert time.monotonic() - started < 0.3 + SLACK_S


async def test_fallback_model_answers_when_the_primary_does_not_exist(fake: FakeLLM) -> None:
    fake.config.failure = "not_found"
    fake.config.failure_models = frozenset({MODEL})
    model = model_for(fake)
    result = await model.complete(
        convo(FACTS, "Is parking free?"), settings=settings(fallback_model="backup-model")
    )
    assert result.model == "backup-model"
    with pytest.raises(ChatModelUnavailableError, match="not found"):
        await model.complete(convo(FACTS, "Is parking free?"), settings=settings())


@pytest.mark.parametrize(("failure", "status"), [("server_error", 500), ("rate_limited", 429)])
async def test_without_fallback_a_server_error_is_retryable(
    fake: FakeLLM, failure: Literal["server_error", "rate_limited"], status: int
) -> None:
    fake.config.failure = failure
    with pytest.raises(ChatModelError, match=f"HTTP {status}"):
        await model_for(fake).complete(convo(FACTS, "Hi"), settings=settings())
    with pytest.raises(ChatModelError, match=f"HTTP {status}"):
        await collect(model_for(fake), convo(FACTS, "Hi"))
    assert len(fake.requests) == 2  # no retries of its own


@pytest.mark.parametrize("stream", [False, True])
async def test_timeout_raises_retryable_error_within_the_timeout(
    fake: FakeLLM, stream: bool
) -> None:
    fake.config.failure = "timeout"
    fake.config.hang_s = 10
    model = model_for(fake)
    started = time.monotonic()
    with pytest.raises(ChatModelError, match="timed out"):
        if stream:
            await collect(model, convo(FACTS, "Hi"), timeout_s=0.3)
        else:
            await model.complete(convo(FACTS, "Hi"), settings=settings(timeout_s=0.3))
    assert time.monotonic() - started < 0.3 + SLACK_S


async def test_timeout_bounds_the_whole_stream(fake: FakeLLM) -> None:
    fake.config.token_delay_s = 0.2  # ten words: about 2 s
    received: list[str] = []
    started = time.monotonic()
    with pytest.raises(ChatModelError, match="timed out"):
        async for delta in model_for(fake).stream(
            convo(FACTS, "When are you open?"),
            settings=settings(timeout_s=0.5, fallback_model="backup-model"),
        ):
            received.append(delta.content)
    assert time.monotonic() - started < 0.5 + SLACK_S
    assert received[:1] == ["We "]
    # Content was already out: the fallback is not tried.
    assert [r.body["model"] for r in fake.requests] == [MODEL]


@pytest.mark.parametrize("stream", [False, True])
async def test_refused_credentials_are_unavailable_and_skip_the_fallback(
    fake: FakeLLM, stream: bool
) -> None:
    fake.config.failure = "unauthorized"
    model = model_for(fake, api_key=None)
    with pytest.raises(ChatModelUnavailableError, match="HTTP 401"):
        if stream:
            await collect(model, convo(FACTS, "Hi"), fallback_model="backup-model")
        else:
            await model.complete(convo(FACTS, "Hi"), settings=settings(fallback_model="backup"))
    assert len(fake.requests) == 1
    assert fake.requests[0].headers["authorization"] == "Bearer backline-no-key"


async def test_malformed_stream_is_a_retryable_error(fake: FakeLLM) -> None:
    fake.config.failure = "malformed_stream"
    with pytest.raises(ChatModelError, match="malformed"):
        await collect(model_for(fake), convo(FACTS, "When are you open?"))
    with pytest.raises(ChatModelError):
        await model_for(fake).complete(convo(FACTS, "When are you open?"), settings=settings())


async def test_max_tokens_cuts_the_answer(fake: FakeLLM) -> None:
    result = await model_for(fake).complete(
        convo(FACTS, "When are you open?"), settings=settings(max_tokens=3)
    )
    assert result.content == "We are open"
    assert result.finish_reason == "length"


# --- the scripted policy: answers follow from the request -----------------------------------


@pytest.mark.parametrize("price", ["90", "140"])
async def test_answers_from_the_system_prompts_fact(fake: FakeLLM, price: str) -> None:
    prompt = FACTS.replace("90 dollars", f"{price} dollars")
    result = await model_for(fake).complete(
        convo(prompt, "How much does a cleaning cost?"), settings=settings()
    )
    assert result.content == f"A cleaning costs {price} dollars."
    assert fake.requests[0].rule == "fact"


async def test_without_the_fact_the_answer_is_generic(fake: FakeLLM) -> None:
    prompt = FACTS.replace("A cleaning costs 90 dollars.", "")
    result = await model_for(fake).complete(
        convo(prompt, "How much does a cleaning cost?"), settings=settings()
    )
    assert "dollars" not in result.content
    assert fake.requests[0].rule == "generic"


async def test_calls_the_booking_tool_when_offered_and_asked(fake: FakeLLM) -> None:
    model = model_for(fake)
    asked = await model.complete(convo(FACTS, BOOKING_ASK), [MEMORY, BOOK], settings=settings())
    assert [c.name for c in asked.tool_calls] == ["book_appointment"]
    not_offered = await model.complete(convo(FACTS, BOOKING_ASK), [MEMORY], settings=settings())
    assert not_offered.tool_calls == ()
    not_asked = await model.complete(
        convo(FACTS, "Is parking free?"), [MEMORY, BOOK], settings=settings()
    )
    assert not_asked.tool_calls == ()


@pytest.mark.parametrize(
    "instruction", ["Never call book_appointment.", "Do not book appointments.", "Never use tools."]
)
async def test_does_not_book_when_the_prompt_forbids_it(fake: FakeLLM, instruction: str) -> None:
    result = await model_for(fake).complete(
        convo(f"{FACTS}\n{instruction}", BOOKING_ASK), [BOOK], settings=settings()
    )
    assert result.tool_calls == ()
    assert result.content


async def test_memory_and_knowledge_tools_follow_the_caller(fake: FakeLLM) -> None:
    model = model_for(fake)
    tools = [BOOK, MEMORY, KNOWLEDGE]
    remember = await model.complete(
        convo("You help callers.", "Do you remember what I told you last time?"),
        tools,
        settings=settings(),
    )
    assert [c.name for c in remember.tool_calls] == ["memory_search"]
    question = "Do you take walk-in patients?"
    ask = await model.complete(convo("You help callers.", question), tools, settings=settings())
    (call,) = ask.tool_calls
    assert call.name == "knowledge_search"
    assert call.parsed_arguments() == {"query": question}
    # The tool's name alone is enough to know it answers questions.
    bare = ToolSpec("knowledge_search", "Search the base.", KNOWLEDGE.parameters)
    ask = await model.complete(convo("You help callers.", question), [bare], settings=settings())
    assert [c.name for c in ask.tool_calls] == ["knowledge_search"]


async def test_identifiers_are_taken_from_the_utterance(fake: FakeLLM) -> None:
    order = ToolSpec(
        "get_order_status",
        "Look up the status of an order by its id.",
        {
            "type": "object",
            "properties": {"order_id": {"type": "string"}},
            "required": ["order_id"],
        },
    )
    result = await model_for(fake).complete(
        convo("You help callers.", "Where is my order A-1042?"), [order], settings=settings()
    )
    (call,) = result.tool_calls
    assert call.parsed_arguments() == {"order_id": "A-1042"}


async def test_answers_from_a_tool_result(fake: FakeLLM) -> None:
    call = ToolCall(id="call_1", name="book_appointment", arguments='{"date": "Tuesday"}')
    messages = [
        *convo("You book visits.", BOOKING_ASK),
        ChatMessage.assistant(None, [call]),
        ChatMessage.tool_result(
            "call_1", json.dumps({"date": "Tuesday", "time": "3pm", "confirmation": "AB12"})
        ),
    ]
    result = await model_for(fake).complete(messages, [BOOK], settings=settings())
    assert result.content == (
        "Your booking is confirmed: date: Tuesday, time: 3pm, confirmation: AB12."
    )
    assert result.tool_calls == ()
    sent = fake.requests[0].body["messages"]
    assert sent[2]["tool_calls"][0]["id"] == "call_1" and sent[3]["tool_call_id"] == "call_1"


async def test_answers_from_a_knowledge_result_and_its_error(fake: FakeLLM) -> None:
    call = ToolCall(id="call_k", name="knowledge_search", arguments='{"query": "walk-ins"}')
    found = {"results": [{"text": "We welcome walk-in patients before noon. Bring your card."}]}
    messages = [
        *convo("You help callers.", "Do you take walk-in patients?"),
        ChatMessage.assistant(None, [call]),
        ChatMessage.tool_result("call_k", json.dumps(found)),
    ]
    model = model_for(fake)
    result = await model.complete(messages, [KNOWLEDGE], settings=settings())
    assert result.content == "We welcome walk-in patients before noon."
    messages[-1] = ChatMessage.tool_result("call_k", json.dumps({"error": "index offline"}))
    failed = await model.complete(messages, [KNOWLEDGE], settings=settings())
    assert failed.content == "I'm sorry, I couldn't complete that: index offline."


async def test_greeting_instruction_is_obeyed_on_the_first_turn_only(fake: FakeLLM) -> None:
    prompt = f'{FACTS}\nAlways greet with "Thanks for calling Acme Dental, this is Ava."'
    model = model_for(fake)
    first = await model.complete(convo(prompt, "Is parking free?"), settings=settings())
    assert first.content == (
        "Thanks for calling Acme Dental, this is Ava. Parking is free behind the building."
    )
    later = await model.complete(
        [
            *convo(prompt, "Hi"),
            ChatMessage.assistant("Hello!"),
            ChatMessage.user("Is parking free?"),
        ],
        settings=settings(),
    )
    assert later.content == "Parking is free behind the building."


async def test_verbosity_and_grounding_slips_are_seeded_and_repeatable(fake: FakeLLM) -> None:
    question = convo(FACTS, "When are you open?")
    model = model_for(fake)
    plain = (await model.complete(question, settings=settings())).content
    fake.config.verbosity = 1.3
    longer = (await model.complete(question, settings=settings())).content
    assert longer.startswith(plain.rstrip("."))
    assert len(longer.split()) == round(len(plain.split()) * 1.3)
    fake.config.verbosity = 1.0
    fake.config.grounding_slip_rate = 1.0
    slipped = (await model.complete(question, settings=settings())).content
    assert slipped != plain and "8am" not in slipped and "5pm" not in slipped
    assert (await model.complete(question, settings=settings())).content == slipped
    fake.config.grounding_slip_rate = 0.0
    assert (await model.complete(question, settings=settings())).content == plain


def test_command_line_help() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "fakes.llm", "--help"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    assert "--port" in out and "--ttft-ms" in out and "--failure" in out


async def test_a_consumer_that_stops_early_does_not_wait_for_the_rest(fake: FakeLLM) -> None:
    fake.config.token_delay_s = 0.3  # ten words: about 3 s
    stream = model_for(fake).stream(convo(FACTS, "When are you open?"), settings=settings())
    first = await anext(stream)
    assert first.content == "We "
    started = time.monotonic()
    await stream.aclose()  # type: ignore[attr-defined]
    assert time.monotonic() - started < 0.2
