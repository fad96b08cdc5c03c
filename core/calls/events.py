"""The canonical event model: what every voice-platform connector parses its payloads into.

Platform shapes never reach ``core``; connectors translate wire payloads into these models and
core's replies back into the platform's shape. Fields are platform-neutral by construction, so
one conversation delivered through VAPI, Retell, Bland or the custom contract yields equal
events.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from core.errors import MalformedWebhookError

Platform = Literal["vapi", "retell", "bland", "custom"]
Role = Literal["agent", "caller"]

# The width of every call-id column (inbox, calls, events, memories); the PostCallWorkflow id
# built from it stays far below Temporal's 1,000-character limit.
MAX_CALL_ID_LENGTH = 256


def check_call_id(call_id: str, field: str = "call id") -> str:
    """``call_id`` when it can key a call, else a MalformedWebhookError naming ``field``.

    An id that could never be stored or start its workflow is refused at the edge, so nothing
    is answered ``accepted`` and then lost.
    """
    if len(call_id) > MAX_CALL_ID_LENGTH:
        raise MalformedWebhookError(
            f"field '{field}' is {len(call_id)} characters long; a call id has at most "
            f"{MAX_CALL_ID_LENGTH} characters: send the platform's own call id"
        )
    if any(unicodedata.category(ch) == "Cc" for ch in call_id):
        raise MalformedWebhookError(
            f"field '{field}' contains control characters (newline, tab, NUL...); "
            "a call id is printable text: send the platform's own call id"
        )
    return call_id


class Turn(BaseModel):
    """One utterance in a conversation, in order."""

    role: Role
    text: str
    seconds_from_start: float | None = None


class CallRef(BaseModel):
    """What identifies a call and its caller on any platform."""

    platform: Platform
    call_id: str
    caller_number: str | None = None
    direction: Literal["inbound", "outbound", "web"] | None = None

    @field_validator("call_id")
    @classmethod
    def _storable_call_id(cls, value: str) -> str:
        # MalformedWebhookError is not a ValueError: it leaves pydantic as itself, a 422.
        return check_call_id(value)


class CallStarted(BaseModel):
    kind: Literal["call_started"] = "call_started"
    call: CallRef
    started_at: datetime | None = None


class ContextRequest(BaseModel):
    """The platform asks, at call start, what the agent should know about this caller."""

    kind: Literal["context_request"] = "context_request"
    call: CallRef
    # Platform variable values this call already carries (VAPI's call-level variableValues,
    # the fields of a Bland dynamic-data body): a prompt version's defaults never replace them.
    variables: dict[str, str] = Field(default_factory=dict)


class ToolCall(BaseModel):
    kind: Literal["tool_call"] = "tool_call"
    call: CallRef | None
    tool_call_id: str
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)


class ToolCallBatch(BaseModel):
    kind: Literal["tool_calls"] = "tool_calls"
    call: CallRef | None
    calls: list[ToolCall]


class KnowledgeRequest(BaseModel):
    kind: Literal["knowledge_request"] = "knowledge_request"
    call: CallRef
    turns: list[Turn]


class TransferRequest(BaseModel):
    kind: Literal["transfer_request"] = "transfer_request"
    call: CallRef


class TranscriptUpdate(BaseModel):
    kind: Literal["transcript_update"] = "transcript_update"
    call: CallRef
    role: Role
    text: str
    final: bool = True


EndReason = Literal[
    "caller_hangup",
    "agent_hangup",
    "transferred",
    "voicemail",
    "no_answer",
    "silence_timeout",
    "max_duration",
    "error",
    "completed",
    "other",
]

_END_REASON_RULES: tuple[tuple[str, EndReason], ...] = (
    # Order matters: "pipeline-error ... customer-ended" is an error, not a hang-up.
    (r"error|fail|pipeline|exception|crash|invalid", "error"),
    (r"transfer|forward", "transferred"),
    (r"voicemail|machine", "voicemail"),
    (r"no.?answer|busy|not.?answered|unanswered|did.?not.?answer", "no_answer"),
    (r"silence|timeout|timed.?out|idle|inactiv", "silence_timeout"),
    (r"max.?duration|duration.?exceeded|exceeded", "max_duration"),
    (r"customer|user|caller|human|client", "caller_hangup"),
    (r"assistant|agent|bot|ai\b|system.?hangup|end.?call.?tool", "agent_hangup"),
    (r"complete|hangup|hung.?up|ended", "completed"),
)


def canonical_end_reason(raw: str | None) -> EndReason | None:
    """One vocabulary for why a call ended, whatever the platform called it."""
    if not raw or not raw.strip():
        return None
    text = raw.strip().lower().replace("_", "-")
    for pattern, reason in _END_REASON_RULES:
        if re.search(pattern, text):
            return reason
    return "other"


class CallEnded(BaseModel):
    """Everything Backline derives memory and scores from, after the call.

    ``platform_*`` fields are the platform's own words (its reason string, its summary, its
    success verdict); everything else is canonical and equal across platforms for the same
    conversation.
    """

    kind: Literal["call_ended"] = "call_ended"
    call: CallRef
    started_at: datetime | None = None
    ended_at: datetime | None = None
    ended_reason: EndReason | None = None
    platform_ended_reason: str | None = None
    turns: list[Turn] = Field(default_factory=list)
    platform_summary: str | None = None
    platform_success: bool | None = None
    transferred: bool = False
    turn_latency_ms: float | None = None


class CallAnalyzed(BaseModel):
    kind: Literal["call_analyzed"] = "call_analyzed"
    call: CallRef
    platform_summary: str | None = None
    platform_success: bool | None = None
    sentiment: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)


class Informational(BaseModel):
    """A platform-only event we record but derive nothing from (speech updates, hangs...)."""

    kind: Literal["informational"] = "informational"
    call: CallRef | None
    platform_type: str
    data: dict[str, Any] = Field(default_factory=dict)


CanonicalEvent = (
    CallStarted
    | ContextRequest
    | ToolCallBatch
    | KnowledgeRequest
    | TransferRequest
    | TranscriptUpdate
    | CallEnded
    | CallAnalyzed
    | Informational
)
