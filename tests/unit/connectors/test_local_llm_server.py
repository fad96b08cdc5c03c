"""The embedded local-model server (connectors/local_llm.py) speaks OpenAI's chat-completions
wire format: the official ``openai`` client reads its whole and streamed answers, its usage and
finish reasons, and its 4xx refusals. The real server code runs over real HTTP; only the model
is replaced, by ``EchoGenerator``, a deterministic in-test generator whose tokens are the words
of the caller's last message (so every expected text follows from the request)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx
import openai
import pytest
from typer.testing import CliRunner

from cli.main import app
from connectors.local_llm import (
    LocalLLMServer,
    LocalModelUnavailableError,
    Message,
    missing_runtime_modules,
    resolve_model_path,
)


class EchoGenerator:
    """Answers "You said: <last user message>", one word per token; a prompt costs one token
    per word of every message. ``delay_s`` between tokens; ``started`` is set while generating."""

    model_id = "echo-test"

    def __init__(self, delay_s: float = 0.0, context_tokens: int = 512) -> None:
        self.delay_s = delay_s
        self.context_tokens = context_tokens
        self.started = threading.Event()
        self.active = 0
        self.most_active = 0
        self.seen: list[list[Message]] = []
        self._lock = threading.Lock()

    def count_tokens(self, messages: Sequence[Message]) -> int:
        return sum(len(m["content"].split()) for m in messages)

    def generate(
        self, messages: Sequence[Message], *, max_tokens: int, temperature: float
    ) -> Iterator[str]:
        self.seen.append(list(messages))
        last = next(m["content"] for m in reversed(messages) if m["role"] == "user")
        words = ["You", "said:", *last.split()]
        with self._lock:
            self.active += 1
            self.most_active = max(self.most_active, self.active)
        self.started.set()
        try:
            for i, word in enumerate(words[:max_tokens]):
                if self.delay_s:
                    time.sleep(self.delay_s)
                yield word if i == 0 else f" {word}"
        finally:
            with self._lock:
                self.active -= 1


@pytest.fixture
def echo() -> EchoGenerator:
    return EchoGenerator()


@pytest.fixture
def server(echo: EchoGenerator) -> Iterator[LocalLLMServer]:
    running = LocalLLMServer(echo, max_tokens=32).start()
    yield running
    running.stop()


@pytest.fixture
def client(server: LocalLLMServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key="unused", max_retries=0, timeout=10)


def ask(text: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": "Be brief."}, {"role": "user", "content": text}]


def test_a_whole_answer_reads_with_the_openai_client(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model="gpt-4o-mini", messages=ask("what time do you open")
    )
    assert reply.object == "chat.completion"
    assert reply.model == "echo-test"  # the served model, whatever name was asked for
    choice = reply.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content == "You said: what time do you open"
    assert choice.message.tool_calls is None
    assert choice.finish_reason == "stop"
    assert reply.usage is not None
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (7, 7)
    assert reply.usage.total_tokens == 14


def test_max_tokens_cuts_the_answer_with_finish_reason_length(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model="m", messages=ask("one two three four"), max_tokens=3
    )
    assert reply.choices[0].message.content == "You said: one"
    assert reply.choices[0].finish_reason == "length"
    assert reply.usage is not None and reply.usage.completion_tokens == 3


def test_the_servers_cap_bounds_a_larger_max_tokens(client: openai.OpenAI) -> None:
    words = " ".join(f"w{i}" for i in range(60))
    reply = client.chat.completions.create(model="m", messages=ask(words), max_tokens=1000)
    assert reply.choices[0].finish_reason == "length"
    assert reply.usage is not None and reply.usage.completion_tokens == 32


def test_a_streamed_answer_assembles_to_the_whole_one(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="m",
        messages=ask("is the plumber coming on Tuesday"),
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "You said: is the plumber coming on Tuesday"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "stop" and set(finishes[:-1]) == {None}
    content_chunks = [c for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(content_chunks) == 8  # one event per token, as generated
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 8


def test_a_stop_sequence_ends_the_answer_before_it(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model="m", messages=ask("alpha beta gamma delta"), stop=["gamma"]
    )
    assert reply.choices[0].message.content == "You said: alpha beta "
    assert reply.choices[0].finish_reason == "stop"
    stream = client.chat.completions.create(
        model="m", messages=ask("alpha beta gamma delta"), stop="gam", stream=True
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "You said: alpha beta "


def test_tools_are_accepted_and_the_answer_is_text(client: openai.OpenAI) -> None:
    tool = {
        "type": "function",
        "function": {
            "name": "book_slot",
            "description": "Book a slot",
            "parameters": {"type": "object", "properties": {"day": {"type": "string"}}},
        },
    }
    reply = client.chat.completions.create(
        model="m", messages=ask("book Tuesday"), tools=[tool], tool_choice="auto"
    )
    assert reply.choices[0].message.content == "You said: book Tuesday"
    assert reply.choices[0].message.tool_calls is None


def test_tool_turns_in_the_history_reach_the_model_as_text(
    client: openai.OpenAI, echo: EchoGenerator
) -> None:
    client.chat.completions.create(
        model="m",
        messages=[
            {"role": "user", "content": "book Tuesday"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "book_slot", "arguments": '{"day": "Tuesday"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": '{"booked": true}'},
            {"role": "user", "content": [{"type": "text", "text": "thanks"}]},
        ],
    )
    assert echo.seen[-1] == [
        {"role": "user", "content": "book Tuesday"},
        {"role": "assistant", "content": "(called book_slot)"},
        {"role": "user", "content": '(tool result) {"booked": true}'},
        {"role": "user", "content": "thanks"},
    ]


def test_models_lists_the_served_model(client: openai.OpenAI) -> None:
    assert [m.id for m in client.models.list()] == ["echo-test"]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "m"}, "messages"),
        ({"model": "m", "messages": []}, "messages"),
        ({"model": "m", "messages": [{"role": "robot", "content": "hi"}]}, "messages"),
        ({"model": "m", "messages": [{"role": "user", "content": 5}]}, "messages"),
        (
            {
                "model": "m",
                "messages": [
                    {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}
                ],
            },
            "messages",
        ),
        ({"model": "m", "messages": ask("hi"), "max_tokens": 0}, "max_tokens"),
        ({"model": "m", "messages": ask("hi"), "max_tokens": "ten"}, "max_tokens"),
        ({"model": "m", "messages": ask("hi"), "temperature": 3}, "temperature"),
        ({"model": "m", "messages": ask("hi"), "stream": "yes"}, "stream"),
        ({"model": "m", "messages": ask("hi"), "n": 2}, "n"),
        ({"model": "m", "messages": ask("hi"), "stop": [1, 2]}, "stop"),
        (
            {
                "model": "m",
                "messages": ask("hi"),
                "response_format": {"type": "json_schema", "json_schema": {"name": "x"}},
            },
            "response_format",
        ),
        ({"model": "m", "messages": ask("hi"), "tool_choice": "required"}, "tool_choice"),
    ],
)
def test_bad_requests_are_refused_with_400_naming_the_field(
    client: openai.OpenAI, echo: EchoGenerator, body: dict[str, object], param: str
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.post("/chat/completions", body=body, cast_to=object)
    assert caught.value.status_code == 400
    error = caught.value.body
    assert isinstance(error, dict) and error["param"] == param and error["message"]
    assert echo.seen == []  # nothing reached the model


def test_a_conversation_longer_than_the_context_is_refused(server: LocalLLMServer) -> None:
    long = " ".join(["word"] * 600)  # over the echo model's 512-token context
    answer = httpx.post(
        f"{server.base_url}/chat/completions", json={"model": "m", "messages": ask(long)}
    )
    assert answer.status_code == 400
    assert "context" in answer.json()["error"]["message"]


def test_malformed_json_unknown_paths_and_huge_bodies_get_4xx(server: LocalLLMServer) -> None:
    base = server.base_url
    bad_json = httpx.post(
        f"{base}/chat/completions",
        content=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert bad_json.status_code == 400
    assert bad_json.json()["error"]["type"] == "invalid_request_error"
    assert httpx.post(f"{base}/completions", json={}).status_code == 404
    assert httpx.get(f"{base}/nothing").status_code == 404
    huge = httpx.post(f"{base}/chat/completions", content=b"x" * 1_100_000)
    assert huge.status_code == 413


def test_generations_run_one_at_a_time_and_the_server_stays_responsive() -> None:
    slow = EchoGenerator(delay_s=0.05)
    running = LocalLLMServer(slow, max_tokens=32).start()
    try:
        client = openai.OpenAI(base_url=running.base_url, api_key="x", max_retries=0, timeout=10)
        answers: list[str | None] = []

        def one(i: int) -> None:
            reply = client.chat.completions.create(model="m", messages=ask(f"caller {i} here"))
            answers.append(reply.choices[0].message.content)

        threads = [threading.Thread(target=one, args=(i,)) for i in range(3)]
        for thread in threads:
            thread.start()
        assert slow.started.wait(5)
        began = time.perf_counter()
        listed = httpx.get(f"{running.base_url}/models", timeout=5)
        assert listed.status_code == 200
        assert time.perf_counter() - began < 0.25  # not queued behind ~0.25 s generations
        for thread in threads:
            thread.join(10)
        assert sorted(answers) == [f"You said: caller {i} here" for i in range(3)]
        assert slow.most_active == 1
    finally:
        running.stop()


def test_a_client_that_leaves_mid_stream_frees_the_model() -> None:
    slow = EchoGenerator(delay_s=0.05)
    running = LocalLLMServer(slow, max_tokens=32).start()
    try:
        body = {"model": "m", "messages": ask(" ".join(["w"] * 25)), "stream": True}
        with httpx.stream("POST", f"{running.base_url}/chat/completions", json=body) as answer:
            for line in answer.iter_lines():
                if line.startswith("data: ") and '"content": "You"' in line:
                    break
        client = openai.OpenAI(base_url=running.base_url, api_key="x", max_retries=0, timeout=10)
        began = time.perf_counter()
        reply = client.chat.completions.create(model="m", messages=ask("next"))
        assert reply.choices[0].message.content == "You said: next"
        assert time.perf_counter() - began < 1.2  # not after the whole abandoned answer
    finally:
        running.stop()


def test_unknown_models_and_missing_files_say_what_to_give() -> None:
    with pytest.raises(LocalModelUnavailableError, match="smollm2"):
        resolve_model_path("llama-70b")
    with pytest.raises(LocalModelUnavailableError, match="no such model file"):
        resolve_model_path("/nonexistent/model.gguf")


def test_serve_without_the_optional_packages_says_how_to_install(tmp_path: Path) -> None:
    if not missing_runtime_modules():
        pytest.skip("the optional packages are installed here")
    model = tmp_path / "tiny.gguf"
    model.write_bytes(b"GGUF")
    result = CliRunner().invoke(app, ["llm", "serve", "--model", str(model)])
    assert result.exit_code == 1
    assert "pip install 'backline[llm]'" in result.output


def test_llm_models_lists_both_known_models_as_json() -> None:
    result = CliRunner().invoke(app, ["llm", "models", "--json"])
    assert result.exit_code == 0
    rows = json.loads(result.output)
    assert [r["model"] for r in rows] == ["smollm2", "gemma3-270m"]
    assert all(r["install"].startswith("pip install") for r in rows)
