"""A local OpenAI-compatible chat model over real HTTP, whose answers follow from what it is sent.

``POST /v1/chat/completions`` answers in OpenAI's wire format, whole (``chat.completion``) or
streamed (server-sent ``chat.completion.chunk`` events, the usage chunk when
``stream_options.include_usage`` is set, then ``data: [DONE]``), with tool calls in both. What it
says is decided by the scripted agent model of ``fakes/llm_policy.py`` from the request alone; a
structured-output request (``response_format``) gets a JSON object that fits its schema, filled
by ``fakes/llm_structured.py`` from the prompt (plumbing for evaluation frameworks, not a judge).
The ``model`` asked for is echoed; usage counts words and punctuation as tokens.

Controls (``FakeLLMConfig``, changeable while it serves): ``ttft_s`` before the first token,
``token_delay_s`` between streamed chunks, ``report_usage`` (False: no usage), a ``failure``
mode (``server_error`` 500, ``unauthorized`` 401, ``not_found`` 404 (no such model),
``rate_limited`` 429, ``timeout``: hold the request ``hang_s`` and answer nothing,
``malformed_stream``: a chunk that is not JSON), limited to ``failure_models`` when that is
set, and the drift knobs ``verbosity`` and ``grounding_slip_rate`` (seeded by ``seed``). Every
request is recorded, with the rule that answered it.

Tests use ``fake_llm()``; users run it beside ``make run``::

    python -m fakes.llm --port 8011 --ttft-ms 300
"""

from __future__ import annotations

import argparse
import json
import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal, get_args

from connectors.openai_wire import (
    WireHandler,
    chunk_body,
    completion_body,
    error_body,
    serve_until_stopped,
    usage_body,
)
from fakes.llm_policy import Degradation, Reply, reply_to, text_of
from fakes.llm_structured import is_structured, structured_reply

Failure = Literal[
    "server_error", "unauthorized", "not_found", "rate_limited", "timeout", "malformed_stream"
]
FAILURES: tuple[str, ...] = get_args(Failure)
DEFAULT_MODEL = "fake-agent-model"
CREATED = 1_700_000_000


@dataclass
class FakeLLMConfig:
    ttft_s: float = 0.0
    token_delay_s: float = 0.0
    failure: Failure | None = None
    # Empty: the failure applies to every model; otherwise only to these (a fallback test fails
    # the primary model and lets the fallback answer).
    failure_models: frozenset[str] = frozenset()
    hang_s: float = 30.0
    verbosity: float = 1.0
    grounding_slip_rate: float = 0.0
    seed: int = 0
    # False: answer like an endpoint that reports no token usage (no ``usage`` in the
    # completion, no usage chunk in a stream).
    report_usage: bool = True


@dataclass
class RecordedRequest:
    path: str
    headers: dict[str, str]  # names lowercased
    body: dict[str, Any]
    rule: str | None = None  # the policy rule that answered; None when a failure answered


@dataclass
class FakeLLM:
    base_url: str
    config: FakeLLMConfig
    requests: list[RecordedRequest] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)


def count_tokens(text: str) -> int:
    return len(re.findall(r"\w+|[^\w\s]", text))


def _error(message: str, type_: str, code: str | None) -> dict[str, Any]:
    return error_body(message, type_, code)


def _usage(body: dict[str, Any], reply: Reply) -> dict[str, int]:
    prompt = sum(count_tokens(text_of(m.get("content"))) for m in body.get("messages") or ())
    completion = count_tokens(reply.content or "") + sum(
        count_tokens(c.name + c.arguments) for c in reply.tool_calls
    )
    return usage_body(prompt, completion)


def _truncate(reply: Reply, max_tokens: Any) -> tuple[Reply, str]:
    if reply.tool_calls:
        return reply, "tool_calls"
    if isinstance(max_tokens, int) and reply.content:
        pieces = re.findall(r"\S+\s*", reply.content)
        if len(pieces) > max_tokens:
            cut = "".join(pieces[:max_tokens]).rstrip()
            return Reply(content=cut, rule=reply.rule), "length"
    return reply, "stop"


def _completion(model: str, reply: Reply, finish: str, usage: dict[str, int]) -> dict[str, Any]:
    calls = [
        {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
        for c in reply.tool_calls
    ]
    return completion_body(
        id_="chatcmpl-fake",
        created=CREATED,
        model=model,
        content=reply.content,
        finish=finish,
        usage=usage,
        fingerprint="fp_fake",
        tool_calls=calls,
    )


def _chunk(
    model: str, delta: dict[str, Any] | None, finish: str | None = None, **extra: Any
) -> dict[str, Any]:
    return chunk_body(
        id_="chatcmpl-fake",
        created=CREATED,
        model=model,
        fingerprint="fp_fake",
        delta=delta,
        finish=finish,
        **extra,
    )


def _stream_events(reply: Reply, finish: str) -> Iterator[dict[str, Any]]:
    """The deltas of one answer: content a word at a time, each tool call as its id and name
    then its arguments in three fragments (so a client must assemble them by index)."""
    for piece in re.findall(r"\S+\s*", reply.content or ""):
        yield {"content": piece}
    for index, call in enumerate(reply.tool_calls):
        yield {
            "tool_calls": [
                {
                    "index": index,
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": ""},
                }
            ]
        }
        step = max(1, -(-len(call.arguments) // 3))
        for start in range(0, len(call.arguments), step):
            fragment = call.arguments[start : start + step]
            yield {"tool_calls": [{"index": index, "function": {"arguments": fragment}}]}


def _handler_for(state: FakeLLM) -> type[BaseHTTPRequestHandler]:
    class Handler(WireHandler):
        def _send(self, status: int, body: dict[str, Any] | bytes) -> None:
            self.send_json(status, body)

        def _wait(self, seconds: float) -> bool:
            """Sleep; False when the server is stopping (the handler should give up)."""
            return seconds <= 0 or not state.stopping.wait(seconds)

        def do_GET(self) -> None:
            if self.path.rstrip("/") in ("/v1/models", "/models"):
                model = {"id": DEFAULT_MODEL, "object": "model", "created": CREATED}
                self._send(200, {"object": "list", "data": [{**model, "owned_by": "backline"}]})
            else:
                self._send(404, _error(f"Invalid URL (GET {self.path})", "invalid_request", None))

        def do_POST(self) -> None:
            try:
                self._post()
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the client gave up (e.g. its timeout)

        def _post(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                body = {}
            body = body if isinstance(body, dict) else {}
            record = RecordedRequest(
                self.path, {k.lower(): v for k, v in self.headers.items()}, body
            )
            with state.lock:
                state.requests.append(record)
            if self.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
                self._send(404, _error(f"Invalid URL (POST {self.path})", "invalid_request", None))
                return
            config = state.config
            model = str(body.get("model") or DEFAULT_MODEL)
            failure = config.failure
            if failure and config.failure_models and model not in config.failure_models:
                failure = None
            stream = bool(body.get("stream"))
            if failure == "unauthorized":
                self._send(
                    401,
                    _error(
                        "Incorrect API key provided.", "invalid_request_error", "invalid_api_key"
                    ),
                )
                return
            if failure == "not_found":
                message = f"The model `{model}` does not exist or you do not have access to it."
                self._send(404, _error(message, "invalid_request_error", "model_not_found"))
                return
            if failure == "server_error":
                self._send(500, _error("The server had an error.", "server_error", None))
                return
            if failure == "rate_limited":
                self._send(429, _error("Rate limit reached.", "requests", "rate_limit_exceeded"))
                return
            if failure == "timeout":
                self._wait(config.hang_s)
                self.close_connection = True
                return

            degradation = Degradation(config.verbosity, config.grounding_slip_rate, config.seed)
            answer = structured_reply(body) if is_structured(body) else reply_to(body, degradation)
            reply, finish = _truncate(answer, body.get("max_tokens"))
            record.rule = reply.rule
            usage = _usage(body, reply)
            if not stream:
                pieces = len(re.findall(r"\S+", reply.content or "")) + len(reply.tool_calls)
                if not self._wait(config.ttft_s + config.token_delay_s * max(0, pieces - 1)):
                    return
                if failure == "malformed_stream":
                    self._send(200, b'{"id": "chatcmpl-fake", "choices": [')
                    return
                completion = _completion(model, reply, finish, usage)
                if not config.report_usage:
                    del completion["usage"]
                self._send(200, completion)
                return

            include_usage = config.report_usage and bool(
                (body.get("stream_options") or {}).get("include_usage")
            )
            extra: dict[str, Any] = {"usage": None} if include_usage else {}
            self.start_events()
            self.send_event(_chunk(model, {"role": "assistant", "content": ""}, **extra))
            if not self._wait(config.ttft_s):
                return
            for i, delta in enumerate(_stream_events(reply, finish)):
                if i and not self._wait(config.token_delay_s):
                    return
                self.send_event(_chunk(model, delta, **extra))
                if failure == "malformed_stream":
                    self.write_chunk(b'data: {"id": "chatcmpl-fake", "choices": [{"delta":\n\n')
                    self.write_chunk(b"")
                    self.close_connection = True
                    return
            self.send_event(_chunk(model, {}, finish, **extra))
            if include_usage:
                self.send_event(_chunk(model, None, usage=usage))
            self.end_events()

    return Handler


class FakeLLMServer:
    """The fake on ``host:port`` (0: an ephemeral port) in a background thread."""

    def __init__(
        self, config: FakeLLMConfig | None = None, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.state = FakeLLM("", config or FakeLLMConfig())
        self._server = ThreadingHTTPServer((host, port), _handler_for(self.state))
        self._server.daemon_threads = True
        bound_host, bound_port = self._server.server_address[:2]
        self.state.base_url = f"http://{bound_host!s}:{bound_port}/v1"
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.02},
            name="fake-llm",
            daemon=True,
        )

    def start(self) -> FakeLLM:
        self._thread.start()
        return self.state

    def stop(self) -> None:
        self.state.stopping.set()  # wakes handlers that are waiting
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@contextmanager
def fake_llm(config: FakeLLMConfig | None = None) -> Iterator[FakeLLM]:
    """Serve on 127.0.0.1 (an ephemeral port) for the duration of the ``with`` block."""
    server = FakeLLMServer(config)
    try:
        yield server.start()
    finally:
        server.stop()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m fakes.llm",
        description="A local OpenAI-compatible chat model (a deterministic scripted agent) for "
        "development and tests. Point an OpenAI client at http://HOST:PORT/v1.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default %(default)s)")
    parser.add_argument("--port", type=int, default=8011, help="port (default %(default)s)")
    parser.add_argument("--ttft-ms", type=float, default=0.0, help="delay before the first token")
    parser.add_argument(
        "--token-delay-ms", type=float, default=0.0, help="delay between streamed chunks"
    )
    parser.add_argument("--failure", choices=FAILURES, help="answer every request with a failure")
    parser.add_argument(
        "--failure-model",
        action="append",
        default=[],
        help="limit --failure to this model (repeatable)",
    )
    parser.add_argument(
        "--verbosity", type=float, default=1.0, help="multiply every answer's length by this"
    )
    parser.add_argument(
        "--slip-rate",
        type=float,
        default=0.0,
        help="probability that each number in an answer is altered (grounding slips)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the slips")
    args = parser.parse_args(argv)
    config = FakeLLMConfig(
        ttft_s=args.ttft_ms / 1000,
        token_delay_s=args.token_delay_ms / 1000,
        failure=args.failure,
        failure_models=frozenset(args.failure_model),
        verbosity=args.verbosity,
        grounding_slip_rate=args.slip_rate,
        seed=args.seed,
    )
    server = FakeLLMServer(config, host=args.host, port=args.port)
    state = server.start()
    print(f"fake LLM serving {state.base_url} (Ctrl+C to stop)", flush=True)
    serve_until_stopped(server.stop)


if __name__ == "__main__":
    main()
