"""OpenAI chat-completions wire format, for servers that speak it over ``http.server``.

The bodies (``chat.completion``, ``chat.completion.chunk``, the ``{"error": {...}}`` shape) and
a request handler base that answers JSON, or a server-sent event stream in chunked transfer
encoding. Shared by the embedded local model (``connectors/local_llm.py``) and the scripted
fake (``fakes/llm.py``), so both answer exactly what the official ``openai`` client parses.
It must never decide what is said: callers pass the content in.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any


def error_body(
    message: str, type_: str, code: str | None, param: str | None = None
) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def completion_body(
    *,
    id_: str,
    created: int,
    model: str,
    content: str | None,
    finish: str,
    usage: dict[str, int],
    fingerprint: str,
    tool_calls: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return {
        "id": id_,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
        "usage": usage,
        "system_fingerprint": fingerprint,
    }


def chunk_body(
    *,
    id_: str,
    created: int,
    model: str,
    fingerprint: str,
    delta: dict[str, Any] | None,
    finish: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """One ``chat.completion.chunk``; ``delta=None`` is the usage chunk (no choices)."""
    choices = (
        []
        if delta is None
        else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
    )
    return {
        "id": id_,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "system_fingerprint": fingerprint,
        "choices": choices,
        **extra,
    }


def usage_body(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


class WireHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive: whole JSON answers, or an event stream ended by ``[DONE]``."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return  # request lines could carry nothing sensitive, but the bodies are never logged

    def send_json(self, status: int, body: Any) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def start_events(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def write_chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):X}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def send_event(self, payload: dict[str, Any] | str) -> None:
        data = payload if isinstance(payload, str) else json.dumps(payload)
        self.write_chunk(f"data: {data}\n\n".encode())

    def end_events(self) -> None:
        self.send_event("[DONE]")
        self.write_chunk(b"")  # the zero-length chunk ends the body


def serve_until_stopped(stop: Callable[[], None]) -> None:
    """Block a server's command line until Ctrl+C or SIGTERM, then call ``stop``."""
    # SIGTERM (a supervisor stopping it) ends it as cleanly as Ctrl+C.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        stop()
