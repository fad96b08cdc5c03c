"""A local stand-in for an OpenAI-compatible chat-completions server, over real HTTP.

It speaks the vendor's wire format (``POST /v1/chat/completions`` answering a
``chat.completion`` body, errors in OpenAI's ``{"error": {...}}`` shape) so the real SDK runs
end to end against it. It must never reach the network beyond 127.0.0.1 and never
pretend to understand the request: it answers with the content the test configured.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

Mode = Literal["ok", "invalid_json", "slow", "unauthorized", "not_found", "server_error"]

INVALID_JSON_CONTENT = "Sure! Here is the summary: the caller asked about an order {not json"


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]  # names lowercased
    body: dict[str, Any]


@dataclass
class FakeOpenAIServer:
    base_url: str
    mode: Mode
    content: str
    slow_s: float
    requests: list[RecordedRequest] = field(default_factory=list)
    # Set when the server stops, so a "slow" handler still waiting wakes up and exits.
    stopping: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _error_body(message: str, type_: str, code: str | None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}


def _completion_body(model: str, content: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake-0001",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 42, "completion_tokens": 17, "total_tokens": 59},
        "system_fingerprint": "fp_fake",
    }


def _handler_for(state: FakeOpenAIServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return  # keep pytest output clean

        def _send(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("x-request-id", f"req_fake_{len(state.requests)}")
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            try:
                body = json.loads(raw or b"{}")
            except json.JSONDecodeError:
                body = {}
            # HTTP header names are case-insensitive; store them lowercased so tests can look
            # them up without caring how the client spelled them.
            headers = {k.lower(): v for k, v in self.headers.items()}
            with state.lock:
                state.requests.append(RecordedRequest("POST", self.path, headers, body))
            if self.path.rstrip("/") != "/v1/chat/completions":
                self._send(
                    404,
                    _error_body(f"Invalid URL (POST {self.path})", "invalid_request_error", None),
                )
                return
            model = str(body.get("model", ""))
            if state.mode == "unauthorized":
                self._send(
                    401,
                    _error_body(
                        "Incorrect API key provided: sk-****. You can find your API key at "
                        "https://platform.openai.com/account/api-keys.",
                        "invalid_request_error",
                        "invalid_api_key",
                    ),
                )
            elif state.mode == "not_found":
                self._send(
                    404,
                    _error_body(
                        f"The model `{model}` does not exist or you do not have access to it.",
                        "invalid_request_error",
                        "model_not_found",
                    ),
                )
            elif state.mode == "server_error":
                self._send(
                    500,
                    _error_body(
                        "The server had an error processing your request.", "server_error", None
                    ),
                )
            elif state.mode == "slow":
                state.stopping.wait(state.slow_s)
                if not state.stopping.is_set():
                    self._send(200, _completion_body(model, state.content))
            elif state.mode == "invalid_json":
                self._send(200, _completion_body(model, INVALID_JSON_CONTENT))
            else:
                self._send(200, _completion_body(model, state.content))

    return Handler


@contextmanager
def fake_openai_server(
    mode: Mode = "ok", content: str = "{}", slow_s: float = 5.0
) -> Iterator[FakeOpenAIServer]:
    """Serve on 127.0.0.1 (ephemeral port) for the duration of the ``with`` block.

    ``content`` is the assistant message returned in "ok" (and, late, in "slow") mode;
    ``slow_s`` is how long "slow" mode holds a request before answering.
    """
    state = FakeOpenAIServer(base_url="", mode=mode, content=content, slow_s=slow_s)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(state))
    server.daemon_threads = True
    host, port = server.server_address[:2]
    state.base_url = f"http://{host!s}:{port}/v1"
    # A short poll interval keeps shutdown (and so every test using the fake) fast.
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.02}, name="fake-openai", daemon=True
    )
    thread.start()
    try:
        yield state
    finally:
        state.stopping.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
