"""Retell webhook authentication and parsing into canonical events.

Retell posts to three kinds of URL, each signed with ``X-Retell-Signature``: the agent's event
webhook (``{"event", "call"}``), the phone number's inbound webhook (``{"event":
"call_inbound", "call_inbound"}``) and one URL per custom function (``{"name", "call", "args"}``,
or the bare args with ``args_at_root``). This module verifies the signature over the RAW body
bytes (re-serialized JSON breaks on non-ASCII transcripts) and turns payloads into canonical
events. It never answers a request, touches storage, or stores a raw phone number in an id.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Mapping, Sequence
from typing import Any

from connectors.common import optional, parse_time, require, turns_from_lines
from core.calls.events import (
    CallAnalyzed,
    CallEnded,
    CallRef,
    CallStarted,
    CanonicalEvent,
    ContextRequest,
    Informational,
    Role,
    ToolCall,
    ToolCallBatch,
    TranscriptUpdate,
    Turn,
    canonical_end_reason,
    check_call_id,
)
from core.errors import MalformedWebhookError, WebhookSignatureError

PLATFORM = "retell"
SIGNATURE_HEADER = "X-Retell-Signature"
SIGNATURE_WINDOW_MS = 5 * 60 * 1000
# The SDK's own pattern (retell/lib/webhook_auth.py): lowercase hex, exactly 64 characters;
# the millisecond timestamp is bounded so a header of thousands of digits is simply invalid.
_SIGNATURE = re.compile(r"v=(\d{1,16}),d=([0-9a-f]{64})")
_INBOUND_ID_BUCKET_MS = 10 * 60 * 1000
_ROLES: dict[str, Role] = {"agent": "agent", "user": "caller"}
_FIX_SIGNATURE = (
    "Retell signs with an API key that has the webhook badge; store that key with "
    "PUT /v1/agents/{agent_id}/credentials/retell "
    '{"kind": "api_key", "secret": "<key>"}'
)


# -- signatures -----------------------------------------------------------------------------


def sign(raw: bytes, api_key: str, timestamp_ms: int | None = None) -> str:
    """A valid ``X-Retell-Signature`` value (for tests and local tools)."""
    ts = int(time.time() * 1000) if timestamp_ms is None else timestamp_ms
    return f"v={ts},d={_digest(raw, api_key, ts)}"


def _digest(raw: bytes, api_key: str, timestamp_ms: int) -> str:
    # Retell's construction: HMAC-SHA256(key=api_key, msg=body + str(ms)), hex.
    return hmac.new(api_key.encode(), raw + str(timestamp_ms).encode(), hashlib.sha256).hexdigest()


def verify_signature(
    raw: bytes, header: str | None, api_key: str, now_ms: int | None = None
) -> None:
    """Raise WebhookSignatureError unless ``header`` signs ``raw`` with ``api_key`` recently."""
    if not header or not header.strip():
        raise WebhookSignatureError(f"the {SIGNATURE_HEADER} header is missing; {_FIX_SIGNATURE}")
    match = _SIGNATURE.fullmatch(header.strip())
    if match is None:
        raise WebhookSignatureError(
            f"the {SIGNATURE_HEADER} header is not 'v=<unix ms>,d=<64 lowercase hex>'; "
            "send Retell's header unchanged (a proxy may have rewritten it)"
        )
    stamp = int(match.group(1))
    now = int(time.time() * 1000) if now_ms is None else now_ms
    # The window stops replays of a captured request; it also catches a skewed server clock.
    skew_ms = abs(now - stamp)
    if skew_ms > SIGNATURE_WINDOW_MS:
        raise WebhookSignatureError(
            f"the {SIGNATURE_HEADER} timestamp is {skew_ms // 1000}s away from this server's "
            f"clock (allowed: {SIGNATURE_WINDOW_MS // 1000}s); a replayed request, or a server "
            "clock that needs NTP"
        )
    expected = _digest(raw, api_key, stamp)
    if not hmac.compare_digest(expected.encode(), match.group(2).encode()):
        raise WebhookSignatureError(
            f"the {SIGNATURE_HEADER} digest does not match this body; the body was altered "
            f"in transit or signed with a different API key. {_FIX_SIGNATURE}"
        )


def verify_request(
    raw: bytes,
    header: str | None,
    api_keys: Sequence[str],
    *,
    agent_id: str,
    now_ms: int | None = None,
) -> None:
    """Accept when any configured API key verifies (so a key can be rotated without downtime)."""
    if not api_keys:
        raise WebhookSignatureError(
            f"no Retell API key is configured for agent '{agent_id}'; set one with "
            f"PUT /v1/agents/{agent_id}/credentials/retell "
            '{"kind": "api_key", "secret": "<Retell API key with the webhook badge>"}'
        )
    error: WebhookSignatureError | None = None
    for key in api_keys:
        try:
            verify_signature(raw, header, key, now_ms)
        except WebhookSignatureError as exc:
            error = exc
        else:
            return
    assert error is not None
    raise WebhookSignatureError(error.detail.replace("{agent_id}", agent_id))


# -- the call object ------------------------------------------------------------------------


def _call_object(body: Mapping[str, Any]) -> dict[str, Any]:
    call = require(body, "call")
    if not isinstance(call, dict):
        raise MalformedWebhookError("field 'call' must be an object")
    return call


def call_ref(call: Mapping[str, Any], prefix: str = "call", strict: bool = True) -> CallRef | None:
    """The call and its caller: ``from_number`` when inbound, ``to_number`` when outbound.

    Strict (the default) names a missing required field; lenient answers None for a call it
    cannot identify and a ref without a caller when the numbers are missing.
    """
    call_id = call.get("call_id")
    if not isinstance(call_id, str | int) or call_id == "":
        if strict:
            raise MalformedWebhookError(f"required field '{prefix}.call_id' is missing")
        return None
    call_id = check_call_id(str(call_id), f"{prefix}.call_id")
    if call.get("call_type") == "web_call":
        # Web calls have no numbers; without one there is no caller to remember.
        return CallRef(platform=PLATFORM, call_id=str(call_id), direction="web")
    direction = call.get("direction")
    if direction not in ("inbound", "outbound"):
        if strict:
            raise MalformedWebhookError(
                f"required field '{prefix}.direction' is missing or not inbound/outbound"
            )
        return CallRef(platform=PLATFORM, call_id=str(call_id))
    field = "from_number" if direction == "inbound" else "to_number"
    number = call.get(field)
    if not isinstance(number, str) or not number.strip():
        if strict:
            raise MalformedWebhookError(f"required field '{prefix}.{field}' is missing")
        number = None
    return CallRef(
        platform=PLATFORM, call_id=str(call_id), caller_number=number, direction=direction
    )


def _strict_ref(call: Mapping[str, Any]) -> CallRef:
    ref = call_ref(call)
    assert ref is not None  # strict refs raise instead of answering None
    return ref


def _turns_from_object(items: Any) -> list[Turn]:
    turns: list[Turn] = []
    if not isinstance(items, list):
        return turns
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            continue
        role = _ROLES.get(str(item.get("role")))  # transfer_target is not our conversation
        text = item.get("content")
        if role is None or not isinstance(text, str) or not text.strip():
            continue
        words = item.get("words")
        first = words[0] if isinstance(words, list) and words else {}
        if not isinstance(first, dict):
            raise MalformedWebhookError(
                f"field 'call.transcript_object[{i}].words[0]' must be an object with 'start', "
                f"got {type(first).__name__}"
            )
        start = first.get("start")
        turns.append(
            Turn(
                role=role,
                text=text.strip(),
                seconds_from_start=float(start) if isinstance(start, int | float) else None,
            )
        )
    return turns


def _turns(call: Mapping[str, Any]) -> list[Turn]:
    return _turns_from_object(call.get("transcript_object")) or turns_from_lines(
        call.get("transcript"), _ROLES
    )


# -- event webhook --------------------------------------------------------------------------


def parse_call_ended(body: Mapping[str, Any]) -> CallEnded:
    """A ``call_ended`` body (as stored in the inbox) as the canonical end-of-call event."""
    call = _call_object(body)
    reason = call.get("disconnection_reason")
    ended_reason = str(reason) if reason else None
    latency = optional(call, "latency.e2e.p50")
    success = optional(call, "call_analysis.call_successful")
    summary = optional(call, "call_analysis.call_summary")
    return CallEnded(
        call=_strict_ref(call),
        started_at=parse_time(call.get("start_timestamp")),
        ended_at=parse_time(call.get("end_timestamp")),
        ended_reason=canonical_end_reason(ended_reason),
        platform_ended_reason=ended_reason,
        turns=_turns(call),
        platform_summary=summary if isinstance(summary, str) and summary else None,
        platform_success=success if isinstance(success, bool) else None,
        transferred=bool(ended_reason and "transfer" in ended_reason),
        turn_latency_ms=float(latency) if isinstance(latency, int | float) else None,
    )


def parse_call_analyzed(body: Mapping[str, Any]) -> CallAnalyzed:
    call = _call_object(body)
    analysis = require(body, "call.call_analysis")
    if not isinstance(analysis, dict):
        raise MalformedWebhookError("field 'call.call_analysis' must be an object")
    summary = analysis.get("call_summary")
    success = analysis.get("call_successful")
    sentiment = analysis.get("user_sentiment")
    custom = analysis.get("custom_analysis_data")
    return CallAnalyzed(
        call=_strict_ref(call),
        platform_summary=summary if isinstance(summary, str) and summary else None,
        platform_success=success if isinstance(success, bool) else None,
        sentiment=str(sentiment) if sentiment else None,
        data=dict(custom) if isinstance(custom, dict) else {},
    )


def _transcript_updated(body: Mapping[str, Any]) -> TranscriptUpdate | Informational:
    call = _call_object(body)
    ref = _strict_ref(call)
    # Retell resends the whole transcript each turn; the newest utterance is the update.
    turns = _turns_from_object(call.get("transcript_object"))
    if not turns:
        return Informational(call=ref, platform_type="transcript_updated")
    last = turns[-1]
    return TranscriptUpdate(call=ref, role=last.role, text=last.text, final=True)


def parse_event(body: Mapping[str, Any]) -> CanonicalEvent:
    """Any event-webhook body (``{"event", "call"}``) as a canonical event."""
    event = require(body, "event")
    if not isinstance(event, str):
        raise MalformedWebhookError(f"field 'event' must be a string, got {type(event).__name__}")
    if event == "call_inbound":
        raise MalformedWebhookError(
            "call_inbound belongs on the inbound URL: set the phone number's inbound_webhook_url "
            "to /v1/webhooks/retell/{agent_id}/inbound"
        )
    if event == "call_started":
        started = _call_object(body)
        return CallStarted(
            call=_strict_ref(started), started_at=parse_time(started.get("start_timestamp"))
        )
    if event == "call_ended":
        return parse_call_ended(body)
    if event == "call_analyzed":
        return parse_call_analyzed(body)
    if event == "transcript_updated":
        return _transcript_updated(body)
    # transfer_*, chat events and events Retell adds later: recorded, nothing derived.
    call = body.get("call")
    ref = call_ref(call, strict=False) if isinstance(call, dict) else None
    data: dict[str, Any] = {}
    if isinstance(call, dict):
        data = {
            k: call[k]
            for k in ("call_status", "disconnection_reason")
            if isinstance(call.get(k), str)
        }
    return Informational(call=ref, platform_type=event, data=data)


# -- inbound webhook ------------------------------------------------------------------------


def inbound_call_id(inbound: Mapping[str, Any], id_key: str, now_ms: int | None = None) -> str:
    """Retell's ``call_inbound.call_id`` when sent, else a stable synthetic id.

    The synthetic id is ``inbound-<hmac>`` keyed with the deployment secret over Retell's agent
    id, both numbers and the event time (or the 10-minute window it arrived in): retries of one
    ring share it, later calls do not, and no raw number ever lands in an id column.
    """
    real = inbound.get("call_id")
    if isinstance(real, str) and real:
        return check_call_id(real, "call_inbound.call_id")
    stamp = inbound.get("event_timestamp")
    if not isinstance(stamp, int):
        now = int(time.time() * 1000) if now_ms is None else now_ms
        stamp = f"w{now // _INBOUND_ID_BUCKET_MS}"
    material = "|".join(str(inbound.get(k) or "") for k in ("agent_id", "from_number", "to_number"))
    digest = hmac.new(
        id_key.encode(), f"retell-inbound|{material}|{stamp}".encode(), hashlib.sha256
    )
    return f"inbound-{digest.hexdigest()[:24]}"


def parse_inbound(
    body: Mapping[str, Any], *, id_key: str, now_ms: int | None = None
) -> ContextRequest:
    """The phone number's ``call_inbound`` hook as a context request for the caller."""
    event = body.get("event")
    if event is not None and event != "call_inbound":
        raise MalformedWebhookError(
            f"the inbound URL expects event 'call_inbound', got '{event}'; send call events "
            "to /v1/webhooks/retell/{agent_id}/events"
        )
    inbound = require(body, "call_inbound")
    if not isinstance(inbound, dict):
        raise MalformedWebhookError("field 'call_inbound' must be an object")
    number = require(body, "call_inbound.from_number")
    if not isinstance(number, str):
        raise MalformedWebhookError(
            f"field 'call_inbound.from_number' must be a string, got {type(number).__name__}"
        )
    # Some payloads put the event time at the top level; it disambiguates repeat callers.
    merged = dict(inbound)
    if "event_timestamp" not in merged and isinstance(body.get("event_timestamp"), int):
        merged["event_timestamp"] = body["event_timestamp"]
    return ContextRequest(
        call=CallRef(
            platform=PLATFORM,
            call_id=inbound_call_id(merged, id_key, now_ms),
            caller_number=number,
            direction="inbound",
        )
    )


# -- custom functions -----------------------------------------------------------------------


def _is_nested(body: Mapping[str, Any]) -> bool:
    # Retell's default body is {"name", "call", "args"}; with args_at_root it is the args alone.
    return "args" in body and ("call" in body or "name" in body)


def parse_function_call(body: Mapping[str, Any], tool_name: str) -> ToolCallBatch:
    """A custom-function request as a one-call batch; the tool is the one named in the URL.

    The URL is ours (see ``tools.tool_definitions``), so it is authoritative over ``name``.
    In the ``args_at_root`` form there is no call object: ``call`` is None and caller-scoped
    tools answer an error instead of guessing whose memory to read.
    """
    if _is_nested(body):
        args = body.get("args")
        if args is None:
            args = {}
        if not isinstance(args, dict):
            raise MalformedWebhookError("field 'args' must be an object")
        call = require(body, "call")
        if not isinstance(call, dict):
            raise MalformedWebhookError("field 'call' must be an object")
        ref = call_ref(call)
    else:
        args, ref = dict(body), None
    tool_call_id = f"{tool_name}@{ref.call_id}" if ref else tool_name
    return ToolCallBatch(
        call=ref,
        calls=[ToolCall(call=ref, tool_call_id=tool_call_id, name=tool_name, arguments=args)],
    )
