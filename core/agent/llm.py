"""What the agent runtime needs from a chat model, and the plain data crossing that boundary.

Only dataclasses, the ``ChatModel`` Protocol and the errors an implementation may raise live
here; the OpenAI-compatible implementation is ``connectors/chat_llm.py``. This module must never
import a vendor SDK or an HTTP client.

Two errors split failures by what a caller should do next: ``ChatModelError`` (a retry may help:
timeout, connection error, rate limit, server error, malformed stream) and
``ChatModelUnavailableError`` (it will not: credentials refused, model or route unknown, request
rejected). Implementations do not retry on their own; the caller owns retries.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Role = Literal["system", "user", "assistant", "tool"]


class ChatModelError(Exception):
    """One model call failed in a way a retry may fix."""


class ChatModelUnavailableError(Exception):
    """The model cannot answer and retrying the same request will not change that."""


@dataclass(frozen=True)
class ToolCall:
    """A tool the model asked to call. ``arguments`` is the JSON text exactly as the model wrote
    it (it may be invalid JSON: models make mistakes); ``parsed_arguments`` decodes it."""

    id: str
    name: str
    arguments: str = "{}"

    def parsed_arguments(self) -> dict[str, Any]:
        """The arguments as an object; ``ValueError`` if they are not a JSON object."""
        value = json.loads(self.arguments or "{}")
        if not isinstance(value, dict):
            raise ValueError("tool-call arguments are not a JSON object")
        return value


@dataclass(frozen=True)
class ChatMessage:
    """One message of a conversation. ``tool_calls`` only on assistant messages;
    ``tool_call_id`` (the call answered) only on tool results."""

    role: Role
    content: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None

    @classmethod
    def system(cls, content: str) -> ChatMessage:
        return cls("system", content)

    @classmethod
    def user(cls, content: str) -> ChatMessage:
        return cls("user", content)

    @classmethod
    def assistant(
        cls, content: str | None = None, tool_calls: Sequence[ToolCall] = ()
    ) -> ChatMessage:
        return cls("assistant", content, tuple(tool_calls))

    @classmethod
    def tool_result(cls, tool_call_id: str, content: str) -> ChatMessage:
        return cls("tool", content, tool_call_id=tool_call_id)


@dataclass(frozen=True)
class ToolSpec:
    """A function the model may call; ``parameters`` is a JSON Schema object."""

    name: str
    description: str
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})


@dataclass(frozen=True)
class ModelSettings:
    """How to call the model. ``timeout_s`` bounds one attempt (for a stream: the whole stream);
    ``fallback_model``, when set, is tried once after the primary model fails.
    ``response_format``, when set, is sent as the chat-completions ``response_format`` (e.g.
    ``{"type": "json_schema", "json_schema": {...}}`` for structured output)."""

    model: str
    temperature: float | None = None
    max_tokens: int | None = None
    timeout_s: float = 20.0
    fallback_model: str | None = None
    response_format: dict[str, Any] | None = None


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


@dataclass(frozen=True)
class ChatResult:
    """A finished answer. ``model`` is the model that answered (the fallback's name when the
    fallback answered). ``ttft_s`` is seconds from the call to the first content or tool-call
    token (for a non-streamed answer: to the whole answer); ``latency_s`` to the last one. Both
    count from the start of the call, so a failed primary attempt is included."""

    content: str
    tool_calls: tuple[ToolCall, ...]
    model: str
    finish_reason: str | None
    usage: Usage | None
    ttft_s: float | None
    latency_s: float


@dataclass(frozen=True)
class ChatDelta:
    """One piece of a streamed answer: a content fragment as it arrives, or, as the last item
    of every stream, ``result``: the whole answer with its tool calls assembled."""

    content: str = ""
    result: ChatResult | None = None


class ChatModel(Protocol):
    async def complete(
        self,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolSpec] = (),
        *,
        settings: ModelSettings,
    ) -> ChatResult:
        """One answer, whole; raise the errors above on failure."""
        ...

    def stream(
        self,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolSpec] = (),
        *,
        settings: ModelSettings,
    ) -> AsyncIterator[ChatDelta]:
        """Content fragments as they arrive, then one ``ChatDelta`` carrying the ``result``;
        raise the errors above on failure (a failure after the first fragment is never
        retried or sent to the fallback: the caller has already seen content)."""
        ...
