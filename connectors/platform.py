"""The port every voice platform's connector implements: one ``VoicePlatform`` object per
platform, listed in ``connectors.registry``.

The object wraps what its package already has (``webhooks.py`` verifies and parses,
``mapping.py`` shapes replies, ``tools.py`` exports tool definitions); the routes and the edge
reach a platform through it, never through a platform's name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from core.calls.events import CallEnded, CanonicalEvent, ToolCall, ToolCallBatch
from core.calls.ports import PlatformCredential
from core.memory.schemas import CallerContext
from core.prompts.serving import ServedPrompt
from core.tools.builtins import ToolOutcome

ToolSpecs = dict[str, dict[str, Any]]


@dataclass(frozen=True)
class ContextReply:
    """What the answer to a context request carries to the platform."""

    agent_id: str
    call_id: str
    variables: dict[str, str]  # backline_* and the served version's variables
    prompt: ServedPrompt | None = None
    # BACKLINE_PUBLIC_URL, for tool definitions sent with the reply
    public_url: str = ""
    # The platform's own agent for the call, when the agent names one (VAPI's assistant).
    assistant_id: str | None = None
    assistant: dict[str, Any] | None = None
    # The caller's memory as data, for a platform whose reply carries it as such (custom).
    context: CallerContext | None = None


class VoicePlatform(Protocol):
    """One voice platform, as the edge needs it."""

    name: str
    # How long the platform waits for a tool answer (the timeout its exported tools set).
    tool_deadline_s: float
    # The JSON fields of its payloads that carry the caller's number.
    caller_number_fields: tuple[str, ...]

    def verify(
        self,
        headers: Mapping[str, str],
        raw: bytes,
        credentials: Sequence[PlatformCredential],
        *,
        agent_id: str,
        hook: str = "",
    ) -> None:
        """Raise WebhookSignatureError unless one of the agent's credentials authenticates
        ``raw``; ``hook`` names which of the platform's webhook URLs was called."""
        ...

    def parse(
        self, body: Mapping[str, Any], *, hook: str = "", tool_name: str = "", id_key: str = ""
    ) -> CanonicalEvent:
        """The request as a canonical event (``tool_name`` from a per-tool URL, ``id_key`` for
        ids derived from a caller's number)."""
        ...

    def parse_call_ended(self, body: Mapping[str, Any]) -> CallEnded:
        """An end-of-call payload (as stored in the inbox) as its canonical event."""
        ...

    def context_reply(self, answer: ContextReply) -> dict[str, Any]: ...

    def tool_reply(
        self, batch: ToolCallBatch, results: Sequence[tuple[ToolCall, ToolOutcome]]
    ) -> dict[str, Any]: ...

    def export_tools(self, tools: ToolSpecs, base_url: str, agent_id: str) -> list[dict[str, Any]]:
        """Backline's tools as the platform's tool definitions, pointing at this agent."""
        ...


def single_outcome(
    batch: ToolCallBatch, results: Sequence[tuple[ToolCall, ToolOutcome]]
) -> ToolOutcome:
    """The outcome of a one-tool URL (Retell, Bland): one call, one answer."""
    if results:
        return results[0][1]
    return ToolOutcome(error=f"tool '{batch.calls[0].name}' produced no answer")


def secrets(credentials: Sequence[PlatformCredential], kind: str) -> list[str]:
    return [c.secret for c in credentials if c.kind == kind]


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A header by name, whatever its case in ``headers``."""
    value = headers.get(name)
    if value is None:
        value = next((v for k, v in headers.items() if k.lower() == name.lower()), None)
    return value
