"""The simulated caller of the eval runner (``SimulatedCaller``), over the ``ChatModel`` port.

The model plays the caller: its system prompt is the scenario's goal and the persona's
description, the conversation so far is replayed with the roles turned around (the agent's
turns are what the model hears, the caller's what it said), and it answers with the caller's
next line, one utterance per turn. When the goal is met it says :data:`STOP_TOKEN` and the
caller hangs up (``next_line`` returns None).
"""

from __future__ import annotations

from core.agent.llm import ChatMessage, ChatModel, ModelSettings
from core.calls.events import Turn

__all__ = ["CALLER_MARKER", "STOP_TOKEN", "ChatModelCaller"]

STOP_TOKEN = "[DONE]"
CALLER_MARKER = "You are playing the caller in a phone call to an AI agent."
"""The first line of the caller prompt (the local fake model recognises caller requests by it)."""


def caller_messages(goal: str, persona: str | None, transcript: list[Turn]) -> list[ChatMessage]:
    system = "\n".join(
        [
            CALLER_MARKER,
            f"Your goal: {goal}",
            f"Who you are: {persona}" if persona else "Who you are: an ordinary caller.",
            "Say only your next line, one short utterance, in the first person, as spoken.",
            "Give the details your goal needs when the agent asks for them.",
            f"When your goal is met, reply with exactly {STOP_TOKEN} and nothing else.",
        ]
    )
    messages = [ChatMessage.system(system)]
    for turn in transcript:
        if not turn.text:
            continue
        if turn.role == "caller":
            messages.append(ChatMessage.assistant(turn.text))
        else:
            messages.append(ChatMessage.user(turn.text))
    if len(messages) == 1 or messages[-1].role == "assistant":
        # The model speaks next: it needs a user message to answer (the call just connected).
        messages.append(ChatMessage.user("(the call connects)"))
    return messages


class ChatModelCaller:
    engine = "backline"

    def __init__(self, model: ChatModel, settings: ModelSettings) -> None:
        self._model = model
        self._settings = settings

    async def next_line(self, goal: str, persona: str | None, transcript: list[Turn]) -> str | None:
        result = await self._model.complete(
            caller_messages(goal, persona, transcript), settings=self._settings
        )
        line = result.content.strip()
        if STOP_TOKEN in line or not line:
            return None
        return line
