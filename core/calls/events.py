"""The canonical event model: what every voice-platform connector parses its payloads into.

Platform shapes never reach ``core``; connectors translate wire payloads into these models and
core's replies back into the platform's shape. Fields are platform-neutral by construction, so
one conversation delivered through VAPI, Retell or Bland yields equal events.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

Platform = Literal["vapi", "retell", "bland"]
Role = Literal["agent", "caller"]


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


class CallStarted(BaseModel):
    kind: Literal["call_started"] = "call_started"
    call: CallRef
    started_at: datetime | None = None


class ContextRequest(BaseModel):
    """The platform asks, at call start, what the agent should know about this caller."""

    kind: Literal["context_request"] = "context_request"
    call: CallRef


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


class CallEnded(BaseModel):
    """Everything Backline derives memory and scores from, after the call."""

    kind: Literal["call_ended"] = "call_ended"
    call: CallRef
    started_at: datetime | None = None
    ended_at: datetime | None = None
    ended_reason: str | None = None
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
