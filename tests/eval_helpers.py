"""A scripted stand-in for the agent runtime, for eval runner tests: each caller line maps to
a reply (text, tool calls, retrievals); unknown lines get a default reply. Also a chat model
that always gives one answer (``Answers``) and a good and a bad transcript for judge tests."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.agent.llm import ChatMessage, ChatResult, ModelSettings, ToolSpec
from core.calls.events import Turn
from core.tenancy.agent_info import AgentInfo

AGENT = AgentInfo(id="agent-1", org_id="org-1", name="demo", platform_settings={}, credentials={})

RUBRIC = "The agent confirms the booking for four people under the name Dana."
GOOD = [
    Turn(role="agent", text="Thanks for calling, how can I help?"),
    Turn(role="caller", text="A table for four please, name Dana."),
    Turn(role="agent", text="Your booking for four people is confirmed under the name Dana."),
]
BAD = [
    Turn(role="agent", text="Thanks for calling, how can I help?"),
    Turn(role="caller", text="A table for four please, name Dana."),
    Turn(role="agent", text="Sorry, I can't help with that today."),
]


class Answers:
    """A chat model that answers every request with ``text``."""

    def __init__(self, text: str) -> None:
        self.text = text

    async def complete(
        self,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolSpec] = (),
        *,
        settings: ModelSettings,
    ) -> ChatResult:
        return ChatResult(self.text, (), settings.model, "stop", None, None, 0.01)

    def stream(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError


@dataclass
class Tool:
    name: str
    arguments: dict[str, Any]
    result: Any = None
    error: str | None = None
    latency_ms: float | None = 12.0
    source: str | None = "sandbox"


@dataclass
class Retrieval:
    query: str
    texts: list[str]
    status: str = "ok"
    chunk_ids: list[str] = field(default_factory=list)
    outdated: Any = None


@dataclass
class Reply:
    text: str
    tool_calls: list[Tool] = field(default_factory=list)
    retrievals: list[Retrieval] = field(default_factory=list)
    model: str | None = "scripted"
    usage: Any = None
    ttft_ms: float | None = 50.0
    upstream_ms: float | None = 200.0
    backline_ms: float | None = 8.0
    fallback_used: bool = False


class ScriptedConversation:
    def __init__(self, runtime: ScriptedRuntime) -> None:
        self.runtime = runtime
        self.served = None
        self.opening: str | None = runtime.opening
        self._turns: list[Turn] = [Turn(role="agent", text=self.opening)] if self.opening else []

    async def respond(self, caller_text: str | None, *, history: Any = None) -> Reply:
        rt = self.runtime
        rt.active += 1
        rt.peak = max(rt.peak, rt.active)
        try:
            if rt.delay:
                await asyncio.sleep(rt.delay)
            if caller_text is not None:
                self._turns.append(Turn(role="caller", text=caller_text))
            reply = rt.default
            for key, value in rt.script.items():
                if caller_text is not None and key.casefold() in caller_text.casefold():
                    reply = value
                    break
            if isinstance(reply, Exception):
                raise reply
            self._turns.append(Turn(role="agent", text=reply.text))
            rt.said.append(caller_text)
            return reply
        finally:
            rt.active -= 1

    def transcript(self) -> list[Turn]:
        return list(self._turns)


class ScriptedRuntime:
    def __init__(
        self,
        script: dict[str, Reply | Exception] | None = None,
        *,
        default: Reply | None = None,
        opening: str | None = "Thanks for calling, how can I help?",
        delay: float = 0.0,
    ) -> None:
        self.script = script or {}
        self.default = default or Reply("Sure.")
        self.opening = opening
        self.delay = delay
        self.active = 0
        self.peak = 0
        self.said: list[str | None] = []
        self.targets: list[Any] = []

    async def open_call(self, agent: AgentInfo, target: Any) -> ScriptedConversation:
        self.targets.append(target)
        return ScriptedConversation(self)


class RecordingSeeder:
    def __init__(self) -> None:
        self.seeded: list[tuple[str | None, list[list[Turn]]]] = []

    async def seed_prior_calls(
        self, agent: AgentInfo, number: str | None, conversations: list[list[Turn]]
    ) -> None:
        self.seeded.append((number, conversations))


def booking_runtime() -> ScriptedRuntime:
    """Replies that pass every deterministic check of the booking fixture's first scenario."""
    return ScriptedRuntime(
        {
            "four": Reply(
                "Great, for four tomorrow at seven thirty. What name should I put it under?",
                retrievals=[Retrieval("parking", ["Parking: 12 spaces on Elm Street."])],
            ),
            "name": Reply(
                "You're booked, Dana Whitfield. I've confirmed it.",
                tool_calls=[
                    Tool(
                        "create_booking",
                        {"party_size": 4, "time": "19:30", "name": "Dana Whitfield"},
                        {"ok": True, "id": "B-77"},
                    )
                ],
            ),
            "parking": Reply(
                "There are 12 spaces on Elm Street.",
                retrievals=[Retrieval("parking", ["Parking: 12 spaces on Elm Street."])],
            ),
        }
    )


def write_suite(root: Path, scenarios: dict[str, str], suite: str = "name: s\n") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "suite.yaml").write_text(suite)
    for name, text in scenarios.items():
        (root / name).write_text(text)
    return root
