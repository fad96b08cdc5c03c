"""A scripted agent runtime for Retell's custom LLM WebSocket tests: answers chosen by the
caller's words, a held answer for barge-in, and a record of every call opened and turn asked."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from connectors.retell.llm_ws import CallTarget
from core.agent.llm import ChatMessage
from core.calls.ports import PlatformCredential
from core.tenancy.agent_info import AgentInfo

SEQUENCE = Path(__file__).parent / "fixtures" / "retell_llm_ws" / "call_sequence.json"
TOKEN = "retell-llm-token-0123456789"
OPENING = "Hi Dana, how can I help?"
ANSWERS = {
    "Where is my last order?": ["Your order 1042 ", "was delivered ", "on February 27."],
    "Actually, never mind": ["No problem. ", "Anything else?"],
    "Goodbye": ["Goodbye!"],
    None: ["Are you still there?"],  # a reminder: the caller said nothing
}
HELD = "Tell me about my account"  # its first piece is sent, then it waits until cancelled
HANG_UP = "Goodbye"


def sequence() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(SEQUENCE.read_text())
    return doc


def agent(agent_id: str = "agent-1", tokens: Sequence[str] = (TOKEN,)) -> AgentInfo:
    creds = [PlatformCredential(kind="api_key", secret="retell-api-key-xyz")]
    creds += [PlatformCredential(kind="llm_token", secret=t) for t in tokens]
    return AgentInfo(
        id=agent_id,
        org_id="org-1",
        name="Support",
        platform_settings={},
        credentials={"retell": creds},
    )


@dataclass(frozen=True)
class Result:
    end_call: bool = False


@dataclass(frozen=True)
class Delta:
    text: str = ""
    result: Result | None = None


@dataclass
class ScriptedConversation:
    opening: str | None
    turns: list[tuple[str | None, list[ChatMessage]]] = field(default_factory=list)
    cancelled: list[str | None] = field(default_factory=list)
    held: asyncio.Event = field(default_factory=asyncio.Event)  # set once the held piece is out

    async def respond_stream(
        self, caller_text: str | None, *, history: Sequence[ChatMessage] | None = None
    ) -> AsyncIterator[Delta]:
        self.turns.append((caller_text, list(history or ())))
        try:
            if caller_text == HELD:
                yield Delta("Your account ")
                self.held.set()
                await asyncio.Event().wait()  # never set: only a barge-in ends this answer
            for piece in ANSWERS.get(caller_text, ["I see."]):
                await asyncio.sleep(0)
                yield Delta(piece)
            yield Delta("", Result(end_call=caller_text == HANG_UP))
        except asyncio.CancelledError:
            self.cancelled.append(caller_text)
            raise


@dataclass
class ScriptedResponder:
    opening: str | None = OPENING
    fail: bool = False
    opened: list[tuple[str, CallTarget]] = field(default_factory=list)
    conversations: list[ScriptedConversation] = field(default_factory=list)

    async def open_call(self, agent: AgentInfo, target: CallTarget) -> ScriptedConversation:
        await asyncio.sleep(0)
        if self.fail:
            raise RuntimeError("no prompt is published for this agent")
        self.opened.append((agent.id, target))
        conversation = ScriptedConversation(self.opening)
        self.conversations.append(conversation)
        return conversation
