"""The agent runtime (text mode): Backline runs the conversation itself, as production would.

``AgentRuntime.open_call`` sends a ``ContextRequest`` through the answering service, exactly as a
platform's webhook does: the caller's memory is read, the prompt version is served (A/B, canary
or a named label) and the call is recorded with its ``prompt_version``. The returned
``Conversation`` then answers caller turns:

1. the caller's turn is recorded (``TranscriptUpdate``) and, when knowledge per turn is on, a
   retrieval for it runs through ``AnsweringService.retrieve`` (recorded on the call as a
   ``knowledge_retrieval`` event) and is shown to the model as a "Relevant knowledge" system
   message for this turn only. Freshness is respected: chunks past their staleness limit are
   withheld by the retriever and only named as outdated, never quoted as current;
2. the chat model answers with the agent's tools (``ToolCatalog``: built-ins, the agent's enabled
   gateway tools, the served version's declared tools, and any tools the platform offers);
3. tool calls for tools Backline owns run as a ``ToolCallBatch`` through the answering service
   (built-ins, the MCP gateway with its deadlines, the call's trace and audit), then the model
   answers again, up to ``RuntimeSettings.max_tool_rounds`` rounds; tool calls for tools the
   runtime does not own are handed back (``TurnResult.platform_tool_calls``);
4. an upstream failure (``ChatModelError`` / ``ChatModelUnavailableError``) ends the turn with the
   fallback sentence (``fallback_used``), never an exception;
5. the agent's turn is recorded (``TranscriptUpdate``) and the turn's trace kept.

Framework-free: everything outside core arrives through the ``ChatModel`` port, the
``ToolCatalog`` port and the answering service's ports.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from core.agent.llm import (
    ChatMessage,
    ChatModel,
    ChatModelError,
    ChatModelUnavailableError,
    ChatResult,
    ModelSettings,
    ToolCall,
    ToolSpec,
)
from core.calls import events as ev
from core.calls.answering import AnsweringService
from core.knowledge.schemas import KnowledgeAnswer
from core.knowledge.voice import PARTIAL_NOTE, caller_query, hit_text, outdated_instruction
from core.memory.schemas import CallerContext
from core.prompts.serving import ServedPrompt
from core.tenancy.agent_info import AgentInfo
from core.tools.builtins import BUILTIN_TOOLS, ToolOutcome

log = logging.getLogger("backline.agent")

DEFAULT_FALLBACK = (
    "I'm sorry, I'm having a little trouble on my side right now. Could you say that again in "
    "a moment?"
)
DEFAULT_SYSTEM_PROMPT = (
    "You are a helpful phone agent. Keep answers short and spoken-friendly; use your tools "
    "when they help, and never make up facts."
)
KNOWLEDGE_HEADING = "Relevant knowledge"
TOOL_FAILED = "Something went wrong on our side while running that tool."
# The call event that carries one agent turn's trace.
TURN_EVENT = "turn_trace"
# A platform's own ``{{name}}`` variable (VAPI ``{{customer.number}}``, Retell dynamic variables):
# in text mode the runtime is the platform, so it fills them from the call and the version.
PLATFORM_VARIABLE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_.]*)\s*\}\}")


# -- public data --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CallTarget:
    call_id: str
    platform: str = "eval"  # eval traffic is platform "eval"; live calls use the real platform
    caller_number: str | None = None
    label: str | None = None  # prompt label to serve; None = normal resolution (A/B, canary)
    version: int | None = None  # exact prompt version to serve (evals of a candidate); wins
    call_variables: Mapping[str, str] = field(default_factory=dict)


@dataclass
class ToolCallTrace:
    name: str
    arguments: dict[str, Any]
    result: Any | None
    error: str | None
    latency_ms: float
    source: str  # "builtin" | "gateway" | "platform"


@dataclass
class RetrievalTrace:
    query: str
    status: str
    chunk_ids: list[str]
    outdated: bool
    texts: list[str]


@dataclass
class TurnResult:
    text: str  # what the agent says
    tool_calls: list[ToolCallTrace]
    retrievals: list[RetrievalTrace]
    model: str
    usage: dict[str, int]
    ttft_ms: float | None
    upstream_ms: float
    backline_ms: float
    fallback_used: bool  # upstream failed -> a short fallback sentence
    # Tool calls for tools the runtime does not own (passed through to the platform), in the
    # OpenAI wire shape: {"id", "type": "function", "function": {"name", "arguments"}}.
    platform_tool_calls: list[dict[str, Any]]
    # Added: the served prompt version (None: the agent serves none) and the upstream error.
    prompt_version: str | None = None
    error: str | None = None
    # False when a model call of the turn came back without token usage (the endpoint does not
    # report it): ``usage`` then undercounts, and what the turn cost is unknown.
    usage_reported: bool = True


@dataclass
class TurnDelta:
    """Streaming: text pieces as they come, then one final delta carrying the ``result``."""

    text: str = ""
    result: TurnResult | None = None


@dataclass(frozen=True)
class RuntimeSettings:
    model: ModelSettings = field(default_factory=lambda: ModelSettings(model="gpt-4o-mini"))
    max_tool_rounds: int = 4
    knowledge_per_turn: bool = True
    knowledge_k: int = 3
    fallback_sentence: str = DEFAULT_FALLBACK
    # The system prompt of an agent that serves no prompt version.
    default_system_prompt: str = DEFAULT_SYSTEM_PROMPT


class ToolCatalog(Protocol):
    """The tools an agent's model is offered and Backline runs itself: the built-ins and the
    agent's enabled gateway tools; with ``served``, the version's declared tools too."""

    async def tools_for(
        self, agent: AgentInfo, served: ServedPrompt | None = None
    ) -> list[ToolSpec]: ...


# -- helpers ------------------------------------------------------------------------------------


def builtin_tool_specs() -> list[ToolSpec]:
    return [
        ToolSpec(name, str(spec["description"]), dict(spec["parameters"]))
        for name, spec in BUILTIN_TOOLS.items()
    ]


def version_tool_specs(served: ServedPrompt | None) -> list[ToolSpec]:
    """The tools a served version declares (built-ins fill their own schema, so are left out)."""
    if served is None:
        return []
    specs: list[ToolSpec] = []
    for tool in served.tools:
        name = str(tool.get("name") or "")
        if not name or name in BUILTIN_TOOLS:
            continue
        params = tool.get("parameters")
        specs.append(
            ToolSpec(
                name,
                str(tool.get("description") or name),
                dict(params) if isinstance(params, Mapping) else ToolSpec(name, "").parameters,
            )
        )
    return specs


def merge_tools(*groups: Sequence[ToolSpec]) -> list[ToolSpec]:
    """Tools by name, the first of a name winning."""
    seen: dict[str, ToolSpec] = {}
    for group in groups:
        for tool in group:
            seen.setdefault(tool.name, tool)
    return list(seen.values())


def model_settings(default: ModelSettings, served: ServedPrompt | None) -> ModelSettings:
    """The default settings with the served version's model, temperature and max tokens."""
    if served is None:
        return default
    spec = served.model
    changes: dict[str, Any] = {}
    name = spec.get("model")
    if isinstance(name, str) and name.strip():
        changes["model"] = name.strip()
    temperature = spec.get("temperature")
    if isinstance(temperature, int | float) and not isinstance(temperature, bool):
        changes["temperature"] = float(temperature)
    max_tokens = spec.get("max_tokens", spec.get("maxTokens"))
    if isinstance(max_tokens, int) and not isinstance(max_tokens, bool) and max_tokens > 0:
        changes["max_tokens"] = max_tokens
    return replace(default, **changes)


def memory_block(context: CallerContext) -> str:
    """What the platforms get as ``backline_`` variables, as a prompt section."""
    if not context.known:
        return ""
    lines = [f"What we remember about this caller ({context.call_count} earlier calls):"]
    if context.summary:
        lines.append(context.summary)
    if context.facts:
        facts = "; ".join(f"{k.replace('_', ' ')}: {v}" for k, v in context.facts.items())
        lines.append(f"Known facts: {facts}.")
    return "\n".join(lines)


def system_prompt(
    served: ServedPrompt | None,
    context: CallerContext,
    call_variables: Mapping[str, str],
    default: str,
) -> str:
    """The served version's rendered prompt (platform variables filled from the call, then the
    version's defaults), with the caller's memory appended unless the prompt already carries
    it (a template using ``{{backline_memory_summary}}``)."""
    text = served.system_prompt if served is not None else default
    values = {**(served.defaults if served is not None else {}), **call_variables}
    text = PLATFORM_VARIABLE.sub(lambda m: values.get(m.group(1), m.group(0)), text)
    block = memory_block(context)
    if block and not (context.summary and context.summary in text):
        text = f"{text}\n\n{block}"
    return text


def knowledge_message(answer: KnowledgeAnswer) -> str | None:
    """The per-turn knowledge for the model; None when nothing matched. Withheld (outdated)
    chunks are never shown: only that information exists and is out of date."""
    if answer.status == "empty":
        return None
    if answer.status == "outdated":
        return f"{KNOWLEDGE_HEADING}: {outdated_instruction(answer)}"
    lines = [f"{KNOWLEDGE_HEADING} (current, from the knowledge base):"]
    lines.extend(f"- {' '.join(hit_text(h).split())}" for h in answer.hits)
    if answer.status == "partial" or answer.withheld:
        lines.append(PARTIAL_NOTE)
    return "\n".join(lines)


def retrieval_trace(answer: KnowledgeAnswer) -> RetrievalTrace:
    return RetrievalTrace(
        query=answer.query,
        status=answer.status,
        chunk_ids=[h.chunk_id for h in answer.hits],
        outdated=answer.status in ("outdated", "partial") or bool(answer.withheld),
        texts=[h.text for h in answer.hits],
    )


def wire_tool_call(call: ToolCall) -> dict[str, Any]:
    return {
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": call.arguments},
    }


def _decoded(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def _tool_message(outcome: ToolOutcome) -> str:
    if outcome.result is not None:
        return outcome.result
    return json.dumps({"error": outcome.error or "the tool gave no answer"})


def _ms(seconds: float) -> float:
    return round(seconds * 1000.0, 3)


# -- the runtime --------------------------------------------------------------------------------


class AgentRuntime:
    """Opens conversations for agents over the answering service and a chat model."""

    def __init__(
        self,
        *,
        answering: AnsweringService,
        model: ChatModel,
        tools: ToolCatalog,
        settings: RuntimeSettings,
    ) -> None:
        self.answering = answering
        self.model = model
        self.tools = tools
        self.settings = settings

    async def open_call(self, agent: AgentInfo, target: CallTarget) -> Conversation:
        """Start a call the way a platform's context request does (memory, served version,
        the call recorded with its prompt version) and return its conversation."""
        ref = ev.CallRef(
            platform=target.platform, call_id=target.call_id, caller_number=target.caller_number
        )
        request = ev.ContextRequest(call=ref, variables=dict(target.call_variables))
        answer = await self.answering.answer(
            agent, request, label=target.label, version=target.version
        )
        served = answer.prompt
        context = answer.context or CallerContext()
        owned = await self.tools.tools_for(agent)
        offered = merge_tools(owned, await self.tools.tools_for(agent, served))
        return Conversation(
            runtime=self,
            agent=agent,
            target=target,
            served=served,
            context=context,
            ref=ref,
            system=system_prompt(
                served, context, target.call_variables, self.settings.default_system_prompt
            ),
            tools=offered,
            owned={t.name for t in owned},
        )


@dataclass
class _TurnState:
    started: float
    tool_calls: list[ToolCallTrace] = field(default_factory=list)
    retrievals: list[RetrievalTrace] = field(default_factory=list)
    usage: dict[str, int] = field(
        default_factory=lambda: {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    )
    upstream_s: float = 0.0
    ttft_s: float | None = None
    model: str = ""
    error: str | None = None
    pending: list[asyncio.Future[None]] = field(default_factory=list)  # writes to await
    unreported: int = 0  # model calls answered without token usage

    def add(self, result: ChatResult, elapsed: float) -> None:
        self.upstream_s += elapsed
        self.model = result.model
        if result.usage is not None:
            self.usage["prompt_tokens"] += result.usage.prompt_tokens
            self.usage["completion_tokens"] += result.usage.completion_tokens
            self.usage["total_tokens"] += result.usage.total_tokens
        else:
            self.unreported += 1


class Conversation:
    """One call's conversation; see the module docstring for what a turn does."""

    def __init__(
        self,
        *,
        runtime: AgentRuntime,
        agent: AgentInfo,
        target: CallTarget,
        served: ServedPrompt | None,
        context: CallerContext,
        ref: ev.CallRef,
        system: str,
        tools: list[ToolSpec],
        owned: set[str],
    ) -> None:
        self.agent = agent
        self.target = target
        self.served = served
        self.context = context
        self.opening: str | None = served.first_message if served is not None else None
        self.trace: list[TurnResult] = []
        self._background: set[asyncio.Future[None]] = set()
        self.system = system
        self.tools = tools
        self.owned = owned
        self.settings = model_settings(runtime.settings.model, served)
        self._runtime = runtime
        self._answering = runtime.answering
        self._ref = ref
        self._turns: list[ev.Turn] = []
        self._messages: list[ChatMessage] = [ChatMessage.system(system)]
        self._opened = False
        self._lock = asyncio.Lock()

    # -- public ---------------------------------------------------------------------------------

    def transcript(self) -> list[ev.Turn]:
        return list(self._turns)

    async def respond(
        self,
        caller_text: str | None,
        *,
        history: Sequence[ChatMessage] | None = None,
        platform_tools: Sequence[ToolSpec] = (),
    ) -> TurnResult:
        """One agent turn, whole. ``history``: the conversation so far as the platform holds
        it (its system message is replaced by the served one); without it the conversation's
        own. ``platform_tools``: tools the platform runs itself (their calls pass through)."""
        result: TurnResult | None = None
        async for delta in self._turn(caller_text, history, platform_tools, stream=False):
            result = delta.result or result
        assert result is not None
        return result

    def respond_stream(
        self,
        caller_text: str | None,
        *,
        history: Sequence[ChatMessage] | None = None,
        platform_tools: Sequence[ToolSpec] = (),
    ) -> AsyncIterator[TurnDelta]:
        """One agent turn as text pieces, then a final delta carrying the ``TurnResult``."""
        return self._turn(caller_text, history, platform_tools, stream=True)

    # -- one turn -------------------------------------------------------------------------------

    async def _turn(
        self,
        caller_text: str | None,
        history: Sequence[ChatMessage] | None,
        platform_tools: Sequence[ToolSpec],
        *,
        stream: bool,
    ) -> AsyncIterator[TurnDelta]:
        async with self._lock:  # one turn at a time per call
            state = _TurnState(started=time.monotonic())
            own = history is None
            if own and not self._opened:
                self._opened = True
                if self.opening:
                    self._messages.append(ChatMessage.assistant(self.opening))
                    await self._say("agent", self.opening)
                    if caller_text is None:
                        state.ttft_s = time.monotonic() - state.started
                        yield TurnDelta(text=self.opening)
                        yield TurnDelta(result=self._finish(state, self.opening, [], False))
                        return

            if own:
                if caller_text is not None:
                    self._messages.append(ChatMessage.user(caller_text))
                messages = list(self._messages)
                utterance = caller_text
            else:
                assert history is not None
                messages = [ChatMessage.system(self.system)]
                messages.extend(m for m in history if m.role != "system")
                if caller_text is not None:
                    messages.append(ChatMessage.user(caller_text))
                utterance = caller_text
                if utterance is None and messages[-1].role == "user":
                    utterance = messages[-1].content
                self._opened = True

            knowledge = await self._before_model(utterance, state)
            turn_messages = list(messages)
            if knowledge is not None:
                # For this turn only, just before the caller's words.
                at = len(turn_messages)
                if turn_messages[-1].role == "user":
                    at -= 1
                turn_messages.insert(at, ChatMessage.system(knowledge))

            tools = merge_tools(self.tools, platform_tools)
            text_parts: list[str] = []
            passed: list[dict[str, Any]] = []
            passed_calls: list[ToolCall] = []
            fallback = False
            added: list[ChatMessage] = []  # the turn's assistant and tool messages
            rounds = 0
            while True:
                offer = tools if rounds < self._runtime.settings.max_tool_rounds else []
                result: ChatResult | None = None
                round_started = time.monotonic()
                try:
                    if stream:
                        async for delta in self._runtime.model.stream(
                            turn_messages, offer, settings=self.settings
                        ):
                            if delta.content:
                                if state.ttft_s is None:
                                    state.ttft_s = time.monotonic() - state.started
                                text_parts.append(delta.content)
                                yield TurnDelta(text=delta.content)
                            if delta.result is not None:
                                result = delta.result
                        if result is None:
                            raise ChatModelError("the stream ended without a result")
                    else:
                        result = await self._runtime.model.complete(
                            turn_messages, offer, settings=self.settings
                        )
                        if result.content:
                            text_parts.append(result.content)
                except (ChatModelError, ChatModelUnavailableError) as exc:
                    state.upstream_s += time.monotonic() - round_started
                    state.error = str(exc)
                    log.warning("agent %s: upstream model failed: %s", self.agent.id, exc)
                    fallback = True
                    break
                state.add(result, time.monotonic() - round_started)
                if not result.tool_calls:
                    break
                rounds += 1
                mine = [c for c in result.tool_calls if c.name in self.owned]
                theirs = [c for c in result.tool_calls if c.name not in self.owned]
                passed_calls += theirs
                for call in theirs:
                    passed.append(wire_tool_call(call))
                    state.tool_calls.append(
                        ToolCallTrace(
                            call.name, _args_or_empty(call), None, None, 0.0, source="platform"
                        )
                    )
                outcomes = await self._run_tools(mine, state) if mine else []
                if theirs:
                    break  # the platform runs its tools and comes back with their results
                assistant = ChatMessage.assistant(result.content or None, result.tool_calls)
                replies = [
                    ChatMessage.tool_result(call.id, _tool_message(outcome))
                    for call, outcome in zip(mine, outcomes, strict=True)
                ]
                turn_messages += [assistant, *replies]
                added += [assistant, *replies]
                if result.content:
                    text_parts.append(" ")

            text = "".join(text_parts).strip()
            if fallback and not text:
                text = self._runtime.settings.fallback_sentence
                if stream:
                    yield TurnDelta(text=text)
            if state.ttft_s is None and text:
                state.ttft_s = time.monotonic() - state.started
            if own:
                self._messages += added
                if text or passed_calls:
                    self._messages.append(ChatMessage.assistant(text or None, passed_calls))
            if text:
                await self._say("agent", text)
            await asyncio.gather(*state.pending)
            yield TurnDelta(result=self._finish(state, text, passed, fallback))

    async def _before_model(self, utterance: str | None, state: _TurnState) -> str | None:
        """Retrieve knowledge for the caller's turn; its transcript update is written meanwhile,
        off the path to the first token (the turn awaits it before it ends)."""
        if not utterance or not utterance.strip():
            return None
        self._turns.append(ev.Turn(role="caller", text=utterance))
        settings = self._runtime.settings
        query = caller_query(self._turns) if settings.knowledge_per_turn else ""
        state.pending.append(asyncio.ensure_future(self._record("caller", utterance)))
        answer = await self._retrieve(query)
        if answer is None:
            return None
        state.retrievals.append(retrieval_trace(answer))
        return knowledge_message(answer)

    async def _retrieve(self, query: str) -> KnowledgeAnswer | None:
        if not query:
            return None
        try:
            return await self._answering.retrieve(
                self.agent, self._ref, query, k=self._runtime.settings.knowledge_k
            )
        except Exception:
            # Knowledge is an aid: a failing index must not cost the caller their answer.
            log.exception("agent %s: knowledge retrieval failed", self.agent.id)
            return None

    async def _run_tools(self, calls: list[ToolCall], state: _TurnState) -> list[ToolOutcome]:
        """Backline's own tools, as one ``ToolCallBatch`` through the answering service."""
        outcomes: dict[int, ToolOutcome] = {}
        batch: list[tuple[int, ev.ToolCall]] = []
        arguments: dict[int, dict[str, Any]] = {}
        for i, call in enumerate(calls):
            try:
                arguments[i] = call.parsed_arguments()
            except ValueError:
                arguments[i] = {}
                outcomes[i] = ToolOutcome(error="the tool-call arguments were not a JSON object")
                continue
            batch.append(
                (
                    i,
                    ev.ToolCall(
                        call=self._ref,
                        tool_call_id=call.id or f"tc-{uuid.uuid4().hex[:12]}",
                        name=call.name,
                        arguments=arguments[i],
                    ),
                )
            )
        started = time.monotonic()
        if batch:
            try:
                answer = await self._answering.answer(
                    self.agent,
                    ev.ToolCallBatch(call=self._ref, calls=[tc for _, tc in batch]),
                )
                for (i, _), (_, outcome) in zip(batch, answer.tool_results, strict=True):
                    outcomes[i] = outcome
            except Exception:
                log.exception("agent %s: tool batch failed", self.agent.id)
                for i, _ in batch:
                    outcomes[i] = ToolOutcome(error=TOOL_FAILED)
        elapsed = _ms(time.monotonic() - started)
        for i, call in enumerate(calls):
            outcome = outcomes[i]
            state.tool_calls.append(
                ToolCallTrace(
                    name=call.name,
                    arguments=arguments[i],
                    result=_decoded(outcome.result),
                    error=outcome.error,
                    latency_ms=elapsed,
                    source="builtin" if call.name in BUILTIN_TOOLS else "gateway",
                )
            )
        return [outcomes[i] for i in range(len(calls))]

    async def _say(self, role: ev.Role, text: str) -> None:
        if role == "agent":
            self._turns.append(ev.Turn(role=role, text=text))
        await self._record(role, text)

    async def _record(self, role: ev.Role, text: str) -> None:
        try:
            await self._answering.answer(
                self.agent, ev.TranscriptUpdate(call=self._ref, role=role, text=text)
            )
        except Exception:
            log.exception("agent %s: could not record a transcript update", self.agent.id)

    def _finish(
        self, state: _TurnState, text: str, passed: list[dict[str, Any]], fallback: bool
    ) -> TurnResult:
        total = time.monotonic() - state.started
        result = TurnResult(
            text=text,
            tool_calls=state.tool_calls,
            retrievals=state.retrievals,
            model=state.model or self.settings.model,
            usage=state.usage,
            ttft_ms=_ms(state.ttft_s) if state.ttft_s is not None else None,
            upstream_ms=_ms(state.upstream_s),
            backline_ms=_ms(max(0.0, total - state.upstream_s)),
            fallback_used=fallback,
            platform_tool_calls=passed,
            prompt_version=self.served.ref if self.served is not None else None,
            error=state.error,
            usage_reported=state.unreported == 0,
        )
        self.trace.append(result)
        # The turn's trace joins the call's events without holding up the reply.
        task = asyncio.ensure_future(self._record_turn(result))
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return result

    async def _record_turn(self, result: TurnResult) -> None:
        """One ``turn_trace`` event per turn: the version, the model, time to first token,
        upstream and Backline's own time, tokens, tool calls and retrievals (ids and status
        only: the words are in the call's transcript updates, redacted as they are stored)."""
        data = {
            "prompt_version": result.prompt_version,
            "model": result.model,
            "ttft_ms": result.ttft_ms,
            "upstream_ms": result.upstream_ms,
            "backline_ms": result.backline_ms,
            "usage": dict(result.usage),
            "fallback_used": result.fallback_used,
            "error": result.error,
            "tools": [
                {"name": t.name, "source": t.source, "ok": t.error is None, "ms": t.latency_ms}
                for t in result.tool_calls
            ],
            "retrievals": [
                {"status": r.status, "chunk_ids": list(r.chunk_ids), "outdated": r.outdated}
                for r in result.retrievals
            ],
            "platform_tools": [c.get("name") for c in result.platform_tool_calls],
        }
        try:
            await self._answering.answer(
                self.agent,
                ev.Informational(call=self._ref, platform_type=TURN_EVENT, data=data),
            )
        except Exception:
            log.exception("agent %s: could not record a turn's trace", self.agent.id)


def _args_or_empty(call: ToolCall) -> dict[str, Any]:
    try:
        return call.parsed_arguments()
    except ValueError:
        return {}
