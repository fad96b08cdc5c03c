"""VAPI server-URL authentication and parsing into canonical events.

Credentials: bearer token (``Authorization: Bearer`` or a custom header), the legacy
``X-Vapi-Secret`` header, or HMAC over ``"{x-timestamp}.{raw body}"`` in ``x-signature``.
Comparisons are constant-time; the raw bytes are verified, never re-serialized JSON.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping, Sequence
from typing import Any

from connectors.common import (
    load_json,
    optional,
    optional_str,
    parse_time,
    require,
    turns_from_lines,
)
from core.calls.events import (
    CallEnded,
    CallRef,
    CallStarted,
    CanonicalEvent,
    ContextRequest,
    Informational,
    KnowledgeRequest,
    Role,
    ToolCall,
    ToolCallBatch,
    TranscriptUpdate,
    TransferRequest,
    Turn,
    canonical_end_reason,
    check_call_id,
)
from core.calls.ports import PlatformCredential
from core.errors import InvalidJsonError, MalformedWebhookError, WebhookSignatureError

HMAC_WINDOW_S = 300
# One tool-calls message runs its tools before answering; VAPI sends a few at a time.
MAX_TOOL_CALLS = 32
# Speaker labels of the ``artifact.transcript`` string.
_TRANSCRIPT_ROLES: dict[str, Role] = {
    "ai": "agent",
    "assistant": "agent",
    "bot": "agent",
    "user": "caller",
}


def verify_request(
    headers: Mapping[str, str],
    raw: bytes,
    credentials: Sequence[PlatformCredential],
    now: float | None = None,
) -> None:
    """Raise WebhookSignatureError unless one configured credential matches."""
    if not credentials:
        raise WebhookSignatureError(
            "no VAPI credential is configured for this agent; set one with "
            "PUT /v1/agents/{agent_id}/credentials/vapi"
        )
    lower = {k.lower(): v for k, v in headers.items()}
    for cred in credentials:
        if cred.kind == "bearer" and _bearer_matches(lower, cred):
            return
        if cred.kind == "hmac" and _hmac_matches(lower, raw, cred.secret, now):
            return
    raise WebhookSignatureError(
        "VAPI credential missing or invalid: send the agent's token as 'Authorization: Bearer', "
        "'X-Vapi-Secret', or sign with HMAC (x-signature over '{x-timestamp}.{body}')"
    )


def _bearer_matches(headers: Mapping[str, str], cred: PlatformCredential) -> bool:
    candidates = [headers.get("authorization", ""), headers.get("x-vapi-secret", "")]
    if cred.header_name:
        candidates.append(headers.get(cred.header_name.lower(), ""))
    for value in candidates:
        token = value[7:] if value.lower().startswith("bearer ") else value
        if token and hmac.compare_digest(token.strip().encode(), cred.secret.encode()):
            return True
    return False


def _hmac_matches(headers: Mapping[str, str], raw: bytes, secret: str, now: float | None) -> bool:
    signature = headers.get("x-signature", "")
    timestamp = headers.get("x-timestamp", "")
    if not signature or not timestamp:
        return False
    try:
        ts = float(timestamp)
    except ValueError:
        return False
    ts_seconds = ts / 1000.0 if ts > 1e11 else ts  # VAPI does not document the unit
    if abs((now if now is not None else time.time()) - ts_seconds) > HMAC_WINDOW_S:
        return False
    expected = sign_hmac(secret, raw, timestamp)
    given = signature.split("=", 1)[1] if signature.startswith("sha256=") else signature
    return hmac.compare_digest(expected, given.strip().lower())


def sign_hmac(secret: str, raw: bytes, timestamp: str) -> str:
    return hmac.new(secret.encode(), timestamp.encode() + b"." + raw, hashlib.sha256).hexdigest()


# -- parsing --------------------------------------------------------------------------------


def message_type(body: Mapping[str, Any]) -> str:
    kind = require(body, "message.type")
    if not isinstance(kind, str):
        raise MalformedWebhookError(
            f"field 'message.type' must be a string, got {type(kind).__name__}"
        )
    return kind


def _message_str(message: Mapping[str, Any], path: str) -> str | None:
    try:
        return optional_str(message, path)
    except MalformedWebhookError:
        value = optional(message, path)
        raise MalformedWebhookError(
            f"field 'message.{path}' must be a string, got {type(value).__name__}"
        ) from None


def call_ref(message: Mapping[str, Any], required: bool = True) -> CallRef | None:
    call_id = _message_str(message, "call.id")
    if not call_id:
        if required:
            raise MalformedWebhookError("required field 'message.call.id' is missing")
        return None
    number = _message_str(message, "customer.number") or _message_str(
        message, "call.customer.number"
    )
    call_type = _message_str(message, "call.type") or ""
    direction = {"inboundPhoneCall": "inbound", "outboundPhoneCall": "outbound"}.get(
        call_type, "web" if "web" in call_type.lower() else None
    )
    return CallRef(
        platform="vapi",
        call_id=check_call_id(str(call_id), "message.call.id"),
        caller_number=number,
        direction=direction,
    )


def call_variable_values(message: Mapping[str, Any]) -> dict[str, str]:
    """The ``variableValues`` the call itself was created with (``call.assistantOverrides``)."""
    values = optional(message, "call.assistantOverrides.variableValues")
    if not isinstance(values, Mapping):
        return {}
    return {str(k): str(v) for k, v in values.items() if v is not None}


def parse_arguments(item: Mapping[str, Any]) -> dict[str, Any]:
    """Arguments arrive as an object in live payloads and as a JSON string in the SDK types."""
    for path in ("function.arguments", "arguments", "parameters"):
        value = optional(item, path)
        if value is None:
            continue
        if isinstance(value, str):
            try:
                value = load_json(value.encode("utf-8")) if value.strip() else {}
            except InvalidJsonError as exc:
                raise MalformedWebhookError(
                    f"tool call '{item.get('id')}' has arguments that are not valid JSON: "
                    f"{exc.detail}"
                ) from exc
        if not isinstance(value, dict):
            raise MalformedWebhookError(f"tool call '{item.get('id')}' arguments must be an object")
        return value
    return {}


def _turns_from_messages(messages: Any) -> list[Turn]:
    turns: list[Turn] = []
    if not isinstance(messages, list):
        return turns
    for m in messages:
        if not isinstance(m, dict):
            continue
        role = {"bot": "agent", "assistant": "agent", "user": "caller"}.get(str(m.get("role")))
        text = m.get("message") if m.get("message") is not None else m.get("content")
        if role is None or not isinstance(text, str) or not text.strip():
            continue
        seconds = m.get("secondsFromStart")
        turns.append(
            Turn(
                role=role,
                text=text.strip(),
                seconds_from_start=float(seconds) if isinstance(seconds, int | float) else None,
            )
        )
    return turns


def knowledge_request_turns(message: Mapping[str, Any]) -> list[Turn]:
    """The conversation of a knowledge-base request: ``messagesOpenAIFormatted`` when it holds
    any turn, else ``messages`` (entries carrying ``message`` or ``content``)."""
    return _turns_from_messages(message.get("messagesOpenAIFormatted")) or _turns_from_messages(
        message.get("messages")
    )


def _success(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value >= 0.5 if value <= 1 else value >= 5
    if isinstance(value, str):
        v = value.strip().lower()
        if v in {"true", "pass", "passed", "success", "yes"}:
            return True
        if v in {"false", "fail", "failed", "no"}:
            return False
    return None


def parse_call_ended(body: Mapping[str, Any]) -> CallEnded:
    message = require(body, "message")
    ref = call_ref(message)
    assert ref is not None
    artifact = message.get("artifact") if isinstance(message.get("artifact"), dict) else {}
    turns = _turns_from_messages(artifact.get("messages")) or turns_from_lines(
        artifact.get("transcript"), _TRANSCRIPT_ROLES
    )
    ended_reason = _message_str(message, "endedReason") or _message_str(message, "call.endedReason")
    reason = ended_reason or None
    latency = optional(artifact, "performanceMetrics.turnLatencyAverage")
    return CallEnded(
        call=ref,
        started_at=parse_time(message.get("startedAt") or optional(message, "call.startedAt")),
        ended_at=parse_time(message.get("endedAt") or optional(message, "call.endedAt")),
        ended_reason=canonical_end_reason(reason),
        platform_ended_reason=reason,
        turns=turns,
        platform_summary=_message_str(message, "analysis.summary"),
        platform_success=_success(optional(message, "analysis.successEvaluation")),
        transferred=bool(reason and ("forward" in reason or "transfer" in reason))
        or message.get("destination") is not None,
        turn_latency_ms=float(latency) if isinstance(latency, int | float) else None,
    )


def parse_event(body: Mapping[str, Any]) -> CanonicalEvent:
    """Any VAPI server message as a canonical event."""
    kind = message_type(body)
    message = body["message"]
    if not isinstance(message, dict):
        raise MalformedWebhookError("field 'message' must be an object")
    if kind == "assistant-request":
        ref = call_ref(message)
        assert ref is not None
        return ContextRequest(call=ref, variables=call_variable_values(message))
    if kind == "tool-calls":
        items = message.get("toolCallList")
        if not isinstance(items, list) or not items:
            raise MalformedWebhookError("required field 'message.toolCallList' is missing or empty")
        if len(items) > MAX_TOOL_CALLS:
            raise MalformedWebhookError(
                f"field 'message.toolCallList' has {len(items)} tool calls; at most "
                f"{MAX_TOOL_CALLS} are answered in one message"
            )
        calls = []
        for i, item in enumerate(items):
            if not isinstance(item, dict) or not item.get("id"):
                raise MalformedWebhookError(
                    f"required field 'message.toolCallList[{i}].id' is missing"
                )
            name = optional(item, "function.name") or item.get("name")
            if not isinstance(name, str) or not name:
                raise MalformedWebhookError(
                    f"required field 'message.toolCallList[{i}].function.name' is missing"
                )
            calls.append(
                ToolCall(
                    call=call_ref(message, required=False),
                    tool_call_id=str(item["id"]),
                    name=str(name),
                    arguments=parse_arguments(item),
                )
            )
        return ToolCallBatch(call=call_ref(message, required=False), calls=calls)
    if kind == "end-of-call-report":
        return parse_call_ended(body)
    if kind == "status-update" and message.get("status") == "in-progress":
        ref = call_ref(message)
        assert ref is not None
        return CallStarted(call=ref, started_at=parse_time(optional(message, "call.startedAt")))
    if kind == "transcript" or kind.startswith("transcript["):
        ref = call_ref(message)
        assert ref is not None
        role = "agent" if message.get("role") == "assistant" else "caller"
        return TranscriptUpdate(
            call=ref,
            role=role,
            text=str(message.get("transcript") or ""),
            final=message.get("transcriptType", "final") == "final",
        )
    if kind == "knowledge-base-request":
        ref = call_ref(message)
        assert ref is not None
        return KnowledgeRequest(call=ref, turns=knowledge_request_turns(message))
    if kind == "transfer-destination-request":
        ref = call_ref(message)
        assert ref is not None
        return TransferRequest(call=ref)
    data = {
        k: v for k, v in message.items() if k in {"status", "endedReason", "role", "turn", "turnId"}
    }
    return Informational(call=call_ref(message, required=False), platform_type=kind, data=data)
