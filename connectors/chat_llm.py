"""The agent's chat model through any OpenAI-compatible chat-completions endpoint.

Implements ``core.agent.llm.ChatModel`` with the official ``openai`` async client. It is the
only place that knows the SDK and its errors; it translates them into ``ChatModelError`` (a
retry may help) and ``ChatModelUnavailableError`` (it will not). The SDK's own retries are off:
the caller owns retries. The one exception is ``ModelSettings.fallback_model``: when the primary
model fails before producing anything, that model is tried once (its own ``timeout_s``), except
when the endpoint refused the credentials, which no model would change.

``timeout_s`` bounds one attempt: for ``complete`` the whole request, for ``stream`` the whole
stream (each chunk is awaited against the same deadline). It never logs message content, tool
arguments or the API key.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

import httpx
import openai
from openai.types.chat import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionMessageParam,
    ChatCompletionToolParam,
)

from connectors.llm import PLACEHOLDER_API_KEY
from core.agent.llm import (
    ChatDelta,
    ChatMessage,
    ChatModelError,
    ChatModelUnavailableError,
    ChatResult,
    ModelSettings,
    ToolCall,
    ToolSpec,
    Usage,
)


def to_openai_messages(messages: Sequence[ChatMessage]) -> list[ChatCompletionMessageParam]:
    out: list[ChatCompletionMessageParam] = []
    for m in messages:
        if m.role == "system":
            out.append({"role": "system", "content": m.content or ""})
        elif m.role == "user":
            out.append({"role": "user", "content": m.content or ""})
        elif m.role == "tool":
            out.append(
                {"role": "tool", "tool_call_id": m.tool_call_id or "", "content": m.content or ""}
            )
        elif m.tool_calls:
            out.append(
                {
                    "role": "assistant",
                    "content": m.content,
                    "tool_calls": [
                        {
                            "id": c.id,
                            "type": "function",
                            "function": {"name": c.name, "arguments": c.arguments},
                        }
                        for c in m.tool_calls
                    ],
                }
            )
        else:
            out.append({"role": "assistant", "content": m.content or ""})
    return out


def to_openai_tools(tools: Sequence[ToolSpec]) -> list[ChatCompletionToolParam]:
    return [
        {
            "type": "function",
            "function": {
                "name": t.name,
                "description": t.description,
                "parameters": t.parameters,
            },
        }
        for t in tools
    ]


class _Refused(ChatModelUnavailableError):
    """Credentials refused: the fallback model would be refused too."""


def _translate(exc: BaseException, model: str) -> ChatModelError | ChatModelUnavailableError:
    """The SDK's (or transport's) exception as one of the port's errors; never the content."""
    if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
        return _Refused(f"the LLM endpoint refused the credentials (HTTP {exc.status_code})")
    if isinstance(exc, openai.NotFoundError):
        return ChatModelUnavailableError(
            f"model {model!r} or the chat-completions route was not found (HTTP 404)"
        )
    if isinstance(exc, openai.BadRequestError | openai.UnprocessableEntityError):
        return ChatModelUnavailableError(
            f"the LLM endpoint rejected the request (HTTP {exc.status_code})"
        )
    if isinstance(exc, openai.APITimeoutError | TimeoutError):
        return ChatModelError(f"the LLM request to {model!r} timed out")
    if isinstance(exc, openai.APIConnectionError):
        return ChatModelError("could not reach the LLM endpoint")
    if isinstance(exc, openai.APIStatusError):
        return ChatModelError(f"the LLM endpoint answered HTTP {exc.status_code}")
    if isinstance(exc, ValueError):  # an answer or stream chunk that is not JSON
        return ChatModelError("the LLM answer was malformed")
    return ChatModelError(f"the LLM call failed: {type(exc).__name__}")


# What one attempt may raise that the port's errors cover. Anything else is a bug and propagates.
_CALL_ERRORS = (openai.OpenAIError, httpx.HTTPError, TimeoutError, ValueError)


def _usage(raw: Any) -> Usage | None:
    if raw is None:
        return None
    return Usage(
        prompt_tokens=int(raw.prompt_tokens or 0),
        completion_tokens=int(raw.completion_tokens or 0),
        total_tokens=int(raw.total_tokens or 0),
    )


@dataclass
class _PartialCall:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


class ToolCallAssembler:
    """Tool calls streamed as fragments keyed by index: the first fragment of a call carries its
    id and name, later ones pieces of its arguments."""

    def __init__(self) -> None:
        self._calls: dict[int, _PartialCall] = {}

    def add(self, index: int, id: str | None, name: str | None, arguments: str | None) -> None:
        call = self._calls.setdefault(index, _PartialCall())
        if id:
            call.id = id
        if name and not call.name:
            call.name = name
        if arguments:
            call.arguments.append(arguments)

    def calls(self) -> tuple[ToolCall, ...]:
        return tuple(
            ToolCall(id=c.id, name=c.name, arguments="".join(c.arguments) or "{}")
            for _, c in sorted(self._calls.items())
        )


class OpenAIChatModel:
    """``ChatModel`` over an OpenAI-compatible endpoint (OpenAI, vLLM, llama.cpp, Ollama...)."""

    def __init__(self, base_url: str | None, api_key: str | None) -> None:
        self._client = openai.AsyncOpenAI(
            base_url=base_url,
            api_key=api_key or PLACEHOLDER_API_KEY,
            max_retries=0,
        )

    async def aclose(self) -> None:
        await self._client.close()

    def _params(
        self,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolSpec],
        settings: ModelSettings,
        model: str,
    ) -> dict[str, Any]:
        params: dict[str, Any] = {"model": model, "messages": to_openai_messages(messages)}
        if tools:
            params["tools"] = to_openai_tools(tools)
        if settings.temperature is not None:
            params["temperature"] = settings.temperature
        if settings.max_tokens is not None:
            # ``max_tokens`` rather than ``max_completion_tokens``: every compatible server
            # (vLLM, llama.cpp, Ollama) accepts it.
            params["max_tokens"] = settings.max_tokens
        if settings.response_format is not None:
            params["response_format"] = settings.response_format
        return params

    @staticmethod
    def _models(settings: ModelSettings) -> list[str]:
        models = [settings.model]
        if settings.fallback_model and settings.fallback_model != settings.model:
            models.append(settings.fallback_model)
        return models

    async def complete(
        self,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolSpec] = (),
        *,
        settings: ModelSettings,
    ) -> ChatResult:
        started = time.monotonic()
        models = self._models(settings)
        for attempt, model in enumerate(models):
            try:
                async with asyncio.timeout(settings.timeout_s):
                    completion = await self._client.chat.completions.create(
                        **self._params(messages, tools, settings, model),
                        timeout=settings.timeout_s,
                    )
            except _CALL_ERRORS as exc:
                error = _translate(exc, model)
                if isinstance(error, _Refused) or attempt == len(models) - 1:
                    raise error from exc
                continue
            return self._result(completion, model, time.monotonic() - started)
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _result(completion: ChatCompletion, model: str, elapsed: float) -> ChatResult:
        if not completion.choices:
            raise ChatModelError("the LLM returned no choices")
        choice = completion.choices[0]
        calls = tuple(
            ToolCall(id=c.id, name=c.function.name, arguments=c.function.arguments or "{}")
            for c in choice.message.tool_calls or ()
            if c.type == "function"
        )
        return ChatResult(
            content=choice.message.content or "",
            tool_calls=calls,
            model=completion.model or model,
            finish_reason=choice.finish_reason,
            usage=_usage(completion.usage),
            ttft_s=elapsed,
            latency_s=elapsed,
        )

    async def stream(
        self,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolSpec] = (),
        *,
        settings: ModelSettings,
    ) -> AsyncIterator[ChatDelta]:
        started = time.monotonic()
        models = self._models(settings)
        for attempt, model in enumerate(models):
            emitted = False
            try:
                # ``aclosing``: a consumer that stops early closes the HTTP stream at once.
                async with aclosing(
                    self._stream_once(messages, tools, settings, model, started)
                ) as deltas:
                    async for delta in deltas:
                        emitted = True
                        yield delta
                return
            except _CALL_ERRORS as exc:
                error = _translate(exc, model)
                if emitted or isinstance(error, _Refused) or attempt == len(models) - 1:
                    raise error from exc

    async def _stream_once(
        self,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolSpec],
        settings: ModelSettings,
        model: str,
        started: float,
    ) -> AsyncGenerator[ChatDelta, None]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + settings.timeout_s
        async with asyncio.timeout_at(deadline):
            chunks = await self._client.chat.completions.create(
                **self._params(messages, tools, settings, model),
                stream=True,
                stream_options={"include_usage": True},
                timeout=settings.timeout_s,
            )
        try:
            content: list[str] = []
            assembler = ToolCallAssembler()
            finish_reason: str | None = None
            usage: Usage | None = None
            answered_by = model
            ttft: float | None = None
            iterator = chunks.__aiter__()
            while True:
                # The deadline is re-armed per chunk, never held across a ``yield``: a timeout
                # scope spanning a yield would cancel the consumer's code instead of the read.
                async with asyncio.timeout_at(deadline):
                    try:
                        chunk: ChatCompletionChunk = await iterator.__anext__()
                    except StopAsyncIteration:
                        break
                if chunk.model:
                    answered_by = chunk.model
                if chunk.usage is not None:
                    usage = _usage(chunk.usage)
                for choice in chunk.choices[:1]:
                    if choice.finish_reason:
                        finish_reason = choice.finish_reason
                    for call in choice.delta.tool_calls or ():
                        if ttft is None:
                            ttft = time.monotonic() - started
                        fn = call.function
                        assembler.add(
                            call.index,
                            call.id,
                            fn.name if fn else None,
                            fn.arguments if fn else None,
                        )
                    if choice.delta.content:
                        if ttft is None:
                            ttft = time.monotonic() - started
                        content.append(choice.delta.content)
                        yield ChatDelta(content=choice.delta.content)
        finally:
            await chunks.close()
        yield ChatDelta(
            result=ChatResult(
                content="".join(content),
                tool_calls=assembler.calls(),
                model=answered_by,
                finish_reason=finish_reason,
                usage=usage,
                ttft_s=ttft,
                latency_s=time.monotonic() - started,
            )
        )
