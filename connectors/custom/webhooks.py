"""The ``custom`` platform: Backline's own JSON webhook contract, version ``"1"``.

One URL, ``POST /v1/webhooks/custom/{agent_id}``, receives every message as
``{"version": "1", "type": ..., "call": {"id", "caller_number", "direction", ...}, ...}``; the
contract is documented in ``docs/custom-platform.md``. Requests are signed with
``Backline-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + raw body)>``; the
signature is checked over the RAW bytes, in constant time, within a 300 s replay window, and
any ``v1`` value may match (a sender rotating its secret signs with both).

Parsing is strict where the other platforms' payloads force leniency: this contract is ours,
so a wrong type, an unknown ``type`` or ``version`` and an out-of-range value are refused with
a 4xx naming the field and what it accepts. Unknown extra fields are ignored, so a later
minor addition to the contract never breaks an older sender.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
import unicodedata
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final, NoReturn

from connectors.common import load_json, parse_time
from core.calls.events import (
    CallEnded,
    CallRef,
    CanonicalEvent,
    ContextRequest,
    KnowledgeRequest,
    Role,
    ToolCall,
    ToolCallBatch,
    TranscriptUpdate,
    Turn,
    canonical_end_reason,
    check_call_id,
)
from core.errors import InvalidJsonError, MalformedWebhookError, WebhookSignatureError

PLATFORM: Final = "custom"
VERSION: Final = "1"
VERSIONS: Final = (VERSION,)
SIGNATURE_HEADER: Final = "Backline-Signature"
CREDENTIAL_KIND: Final = "signing_secret"
REPLAY_WINDOW_S: Final = 300

CALL_STARTED: Final = "call.started"
TOOL_CALLS: Final = "tool.calls"
KNOWLEDGE_REQUEST: Final = "knowledge.request"
TRANSCRIPT_UPDATE: Final = "transcript.update"
CALL_ENDED: Final = "call.ended"
TYPES: Final = (CALL_STARTED, TOOL_CALLS, KNOWLEDGE_REQUEST, TRANSCRIPT_UPDATE, CALL_ENDED)

DIRECTIONS: Final = ("inbound", "outbound", "web")
ROLES: Final[tuple[Role, ...]] = ("caller", "agent")
# Bounds: far beyond any real call, small enough that nothing unbounded reaches storage.
MAX_ID_LENGTH = 256
MAX_NUMBER_LENGTH = 64
MAX_VARIABLES = 64
MAX_VARIABLE_NAME = 64
MAX_VARIABLE_VALUE = 4_000
MAX_TOOL_CALLS = 32
MAX_QUERY_LENGTH = 2_000
MAX_TURNS = 10_000
MAX_TEXT_LENGTH = 20_000
MAX_REASON_LENGTH = 200
MAX_SUMMARY_LENGTH = 20_000
# The header: "t=" + 10 digits + up to MAX_SIGNATURES ",v1=" + 64 hex.
MAX_SIGNATURES = 8
_MAX_HEADER_LENGTH = 1_024
_HEX64 = re.compile(r"[0-9a-f]{64}")
_TOOL_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_FIX_SECRET = (
    "store the agent's secret with PUT /v1/agents/{agent_id}/credentials/custom "
    '{"kind": "signing_secret", "secret": "<secret>"} and sign with that same secret'
)


# -- signatures -----------------------------------------------------------------------------


def sign(secret: str, raw: bytes, timestamp: int) -> str:
    """The hex ``v1`` value: HMAC-SHA256 with ``secret`` over ``"<timestamp>." + raw``."""
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + raw, hashlib.sha256).hexdigest()


def signature_header(raw: bytes, secrets: Sequence[str], timestamp: int | None = None) -> str:
    """A ``Backline-Signature`` value signing ``raw`` with each of ``secrets`` (for senders and
    tests; one ``v1`` per secret, which is how a sender rotates its secret)."""
    t = int(time.time()) if timestamp is None else timestamp
    return ",".join([f"t={t}", *(f"v1={sign(s, raw, t)}" for s in secrets)])


def parse_signature_header(value: str | None) -> tuple[int, list[str]]:
    """``(timestamp, [v1 hex, ...])`` from a header value, or WebhookSignatureError saying what
    is wrong with it. Unknown ``key=value`` parts are ignored (a later scheme may add them)."""
    if value is None or not value.strip():
        raise WebhookSignatureError(
            f"the {SIGNATURE_HEADER} header is missing; send "
            f"'{SIGNATURE_HEADER}: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, \"<t>.\" + body)>'"
        )
    if len(value) > _MAX_HEADER_LENGTH:
        raise WebhookSignatureError(
            f"the {SIGNATURE_HEADER} header is {len(value)} characters long; at most "
            f"{_MAX_HEADER_LENGTH} are read (one t= and at most {MAX_SIGNATURES} v1= values)"
        )
    timestamp: int | None = None
    signatures: list[str] = []
    for part in value.split(","):
        key, sep, item = part.strip().partition("=")
        if not sep:
            continue
        if key == "t":
            if not item.isascii() or not item.isdigit() or len(item) > 12:
                raise WebhookSignatureError(
                    f"the {SIGNATURE_HEADER} timestamp 't' must be whole unix seconds, "
                    f"got '{item[:32]}'"
                )
            timestamp = int(item)
        elif key == "v1":
            digest = item.strip().lower()
            if not _HEX64.fullmatch(digest):
                raise WebhookSignatureError(
                    f"a {SIGNATURE_HEADER} 'v1' value must be 64 hex characters (HMAC-SHA256), "
                    f"got {len(item)} characters"
                )
            signatures.append(digest)
    if timestamp is None or not signatures:
        missing = "'t'" if timestamp is None else "'v1'"
        raise WebhookSignatureError(
            f"the {SIGNATURE_HEADER} header has no {missing}; expected "
            "'t=<unix seconds>,v1=<hex>' (more v1 values may follow, one per secret)"
        )
    if len(signatures) > MAX_SIGNATURES:
        raise WebhookSignatureError(
            f"the {SIGNATURE_HEADER} header has {len(signatures)} v1 values; at most "
            f"{MAX_SIGNATURES} are checked"
        )
    return timestamp, signatures


def verify_request(
    raw: bytes,
    header: str | None,
    secrets: Sequence[str],
    *,
    agent_id: str,
    now: float | None = None,
) -> None:
    """Raise WebhookSignatureError unless one ``v1`` value is the HMAC of ``raw`` with one of
    the agent's secrets, and ``t`` is within REPLAY_WINDOW_S of this server's clock."""
    fix = _FIX_SECRET.replace("{agent_id}", agent_id)
    if not secrets:
        raise WebhookSignatureError(f"no custom signing secret is configured for this agent; {fix}")
    timestamp, signatures = parse_signature_header(header)
    clock = time.time() if now is None else now
    skew = clock - timestamp
    if skew > REPLAY_WINDOW_S:
        raise WebhookSignatureError(
            f"the {SIGNATURE_HEADER} timestamp is too old: {int(skew)} s before this server's "
            f"clock (allowed: {REPLAY_WINDOW_S} s). A replayed request, or a sender clock that "
            "needs NTP; sign each request when you send it"
        )
    if -skew > REPLAY_WINDOW_S:
        raise WebhookSignatureError(
            f"the {SIGNATURE_HEADER} timestamp is in the future: {int(-skew)} s after this "
            f"server's clock (allowed: {REPLAY_WINDOW_S} s). A sender clock that needs NTP"
        )
    matched = False
    for secret in secrets:
        expected = sign(secret, raw, timestamp).encode()
        for given in signatures:
            # Every pair is compared, so timing says nothing about which one matched.
            matched |= hmac.compare_digest(expected, given.encode())
    if not matched:
        raise WebhookSignatureError(
            f"no {SIGNATURE_HEADER} v1 value matches this body: it was altered in transit "
            "(sign the exact bytes you send, not a re-serialization), or signed with another "
            f"secret; {fix}"
        )


# -- field access -----------------------------------------------------------------------------


def _type_name(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number" if isinstance(value, int | float) else type(value).__name__
    )


def _printable(value: str, field: str, limit: int) -> str:
    if len(value) > limit:
        raise MalformedWebhookError(
            f"field '{field}' is {len(value)} characters long; at most {limit} are accepted"
        )
    if any(unicodedata.category(ch) == "Cc" for ch in value):
        raise MalformedWebhookError(
            f"field '{field}' contains control characters (newline, tab, NUL...)"
        )
    return value


def _str(obj: Mapping[str, Any], key: str, field: str, *, limit: int, required: bool) -> str | None:
    value = obj.get(key)
    if value is None:
        if required:
            raise MalformedWebhookError(f"required field '{field}' is missing")
        return None
    if not isinstance(value, str):
        raise MalformedWebhookError(f"field '{field}' must be a string, got {_type_name(value)}")
    if required and not value.strip():
        raise MalformedWebhookError(f"required field '{field}' is empty")
    if len(value) > limit:
        _too_long(field, value, limit)
    return value


def _too_long(field: str, value: str, limit: int) -> NoReturn:
    raise MalformedWebhookError(
        f"field '{field}' is {len(value)} characters long; at most {limit} are accepted"
    )


def _object(obj: Mapping[str, Any], key: str, field: str, *, required: bool) -> dict[str, Any]:
    value = obj.get(key)
    if value is None:
        if required:
            raise MalformedWebhookError(f"required field '{field}' is missing")
        return {}
    if not isinstance(value, dict):
        raise MalformedWebhookError(f"field '{field}' must be an object, got {_type_name(value)}")
    return value


def _array(obj: Mapping[str, Any], key: str, field: str, *, limit: int) -> list[Any]:
    value = obj.get(key)
    if value is None:
        raise MalformedWebhookError(f"required field '{field}' is missing")
    if not isinstance(value, list):
        raise MalformedWebhookError(f"field '{field}' must be an array, got {_type_name(value)}")
    if len(value) > limit:
        raise MalformedWebhookError(
            f"field '{field}' has {len(value)} items; at most {limit} are accepted"
        )
    return value


def _one_of(value: str | None, field: str, accepted: Sequence[str]) -> str | None:
    if value is not None and value not in accepted:
        raise MalformedWebhookError(
            f"field '{field}' is '{value[:64]}'; accepted values: {', '.join(accepted)}"
        )
    return value


def _time(obj: Mapping[str, Any], key: str, field: str) -> datetime | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise MalformedWebhookError(
            f"field '{field}' must be an ISO 8601 string or unix seconds, got {_type_name(value)}"
        )
    parsed = parse_time(value)
    if parsed is None:
        raise MalformedWebhookError(
            f"field '{field}' is not a time: send ISO 8601 (2026-03-02T17:04:10Z) or unix seconds"
        )
    return parsed


# -- the envelope -----------------------------------------------------------------------------


def message_type(body: Mapping[str, Any]) -> str:
    """The body's ``type`` once its ``version`` is one this server speaks."""
    version = body.get("version")
    if version is None:
        raise MalformedWebhookError(
            f"required field 'version' is missing; accepted values: {', '.join(VERSIONS)} "
            f'(send "version": "{VERSION}")'
        )
    if not isinstance(version, str):
        raise MalformedWebhookError(
            f"field 'version' must be a string, got {_type_name(version)}; accepted values: "
            f'{", ".join(VERSIONS)} (send "version": "{VERSION}")'
        )
    _one_of(version, "version", VERSIONS)
    kind = body.get("type")
    if kind is None:
        raise MalformedWebhookError(
            f"required field 'type' is missing; accepted values: {', '.join(TYPES)}"
        )
    if not isinstance(kind, str):
        raise MalformedWebhookError(
            f"field 'type' must be a string, got {_type_name(kind)}; accepted values: "
            f"{', '.join(TYPES)}"
        )
    _one_of(kind, "type", TYPES)
    return kind


def call_ref(body: Mapping[str, Any]) -> CallRef:
    call = _object(body, "call", "call", required=True)
    call_id = _str(call, "id", "call.id", limit=MAX_ID_LENGTH, required=True)
    assert call_id is not None
    number = _str(
        call, "caller_number", "call.caller_number", limit=MAX_NUMBER_LENGTH, required=False
    )
    if number is not None:
        _printable(number, "call.caller_number", MAX_NUMBER_LENGTH)
    direction = _one_of(
        _str(call, "direction", "call.direction", limit=16, required=False),
        "call.direction",
        DIRECTIONS,
    )
    return CallRef(
        platform=PLATFORM,
        call_id=check_call_id(call_id, "call.id"),
        caller_number=number or None,
        direction=direction,
    )


def call_variables(body: Mapping[str, Any]) -> dict[str, str]:
    """``call.variables``: string values the call already carries (a prompt version's defaults
    never replace them)."""
    call = _object(body, "call", "call", required=True)
    variables = _object(call, "variables", "call.variables", required=False)
    if len(variables) > MAX_VARIABLES:
        raise MalformedWebhookError(
            f"field 'call.variables' has {len(variables)} entries; at most {MAX_VARIABLES} "
            "are accepted"
        )
    out: dict[str, str] = {}
    for name, value in variables.items():
        _printable(name, f"call.variables key '{name[:32]}'", MAX_VARIABLE_NAME)
        field = f"call.variables.{name}"
        if not isinstance(value, str):
            raise MalformedWebhookError(
                f"field '{field}' must be a string, got {_type_name(value)}"
            )
        if len(value) > MAX_VARIABLE_VALUE:
            _too_long(field, value, MAX_VARIABLE_VALUE)
        out[name] = value
    return out


# -- the messages -----------------------------------------------------------------------------


def _arguments(item: Mapping[str, Any], field: str) -> dict[str, Any]:
    """An object, or a string holding one (what OpenAI-style function calls carry)."""
    value = item.get("arguments")
    if value is None:
        return {}
    if isinstance(value, str):
        try:
            value = load_json(value.encode("utf-8")) if value.strip() else {}
        except InvalidJsonError as exc:
            raise MalformedWebhookError(
                f"field '{field}' is a string that is not a JSON object: {exc.detail}"
            ) from exc
    if not isinstance(value, dict):
        raise MalformedWebhookError(
            f"field '{field}' must be an object (or a JSON string of one), got {_type_name(value)}"
        )
    return value


def parse_tool_calls(body: Mapping[str, Any]) -> ToolCallBatch:
    ref = call_ref(body)
    items = _array(body, "tool_calls", "tool_calls", limit=MAX_TOOL_CALLS)
    if not items:
        raise MalformedWebhookError("field 'tool_calls' is empty; send at least one tool call")
    calls: list[ToolCall] = []
    seen: set[str] = set()
    for i, item in enumerate(items):
        field = f"tool_calls[{i}]"
        if not isinstance(item, dict):
            raise MalformedWebhookError(
                f"field '{field}' must be an object, got {_type_name(item)}"
            )
        tool_call_id = _str(item, "id", f"{field}.id", limit=MAX_ID_LENGTH, required=True)
        assert tool_call_id is not None
        _printable(tool_call_id, f"{field}.id", MAX_ID_LENGTH)
        if tool_call_id in seen:
            raise MalformedWebhookError(
                f"field '{field}.id' repeats '{tool_call_id[:64]}'; ids are unique in a batch "
                "(each result is answered under its id)"
            )
        seen.add(tool_call_id)
        name = _str(item, "name", f"{field}.name", limit=64, required=True)
        assert name is not None
        if not _TOOL_NAME.fullmatch(name):
            raise MalformedWebhookError(
                f"field '{field}.name' must be 1-64 letters, digits, '_', '-' or '.'"
            )
        calls.append(
            ToolCall(
                call=ref,
                tool_call_id=tool_call_id,
                name=name,
                arguments=_arguments(item, f"{field}.arguments"),
            )
        )
    return ToolCallBatch(call=ref, calls=calls)


def _turn(item: Any, field: str) -> tuple[Role, str, Any]:
    if not isinstance(item, dict):
        raise MalformedWebhookError(f"field '{field}' must be an object, got {_type_name(item)}")
    role = _one_of(
        _str(item, "role", f"{field}.role", limit=16, required=True), f"{field}.role", ROLES
    )
    text = _str(item, "text", f"{field}.text", limit=MAX_TEXT_LENGTH, required=False)
    if "text" not in item:
        raise MalformedWebhookError(f"required field '{field}.text' is missing")
    return role, (text or "").strip(), item.get("at")  # type: ignore[return-value]


def _seconds_from_start(at: Any, field: str, started_at: datetime | None) -> float | None:
    """``at``: seconds from the call's start, or an ISO 8601 time (then ``call.started_at`` is
    the origin)."""
    if at is None:
        return None
    if isinstance(at, bool) or not isinstance(at, str | int | float):
        raise MalformedWebhookError(
            f"field '{field}' must be seconds from the call's start or an ISO 8601 time, got "
            f"{_type_name(at)}"
        )
    if isinstance(at, int | float):
        if at < 0:
            raise MalformedWebhookError(f"field '{field}' is negative; seconds from the start")
        return float(at)
    moment = parse_time(at)
    if moment is None:
        raise MalformedWebhookError(
            f"field '{field}' is not a time: send seconds from the call's start or ISO 8601"
        )
    if started_at is None:
        raise MalformedWebhookError(
            f"field '{field}' is a time of day, which needs 'call.started_at' as its origin; "
            "send call.started_at, or seconds from the start"
        )
    return max(0.0, (moment - started_at).total_seconds())


def parse_knowledge_request(body: Mapping[str, Any]) -> KnowledgeRequest:
    """``query`` (the caller's question) or ``turns`` (the recent conversation, from which the
    last caller turn is the question)."""
    ref = call_ref(body)
    query = _str(body, "query", "query", limit=MAX_QUERY_LENGTH, required=False)
    if query is not None:
        if not query.strip():
            raise MalformedWebhookError("field 'query' is empty; send the caller's question")
        return KnowledgeRequest(call=ref, turns=[Turn(role="caller", text=query.strip())])
    if body.get("turns") is None:
        raise MalformedWebhookError(
            "required field 'query' is missing; send 'query' (the caller's question) or "
            "'turns' (the recent conversation)"
        )
    turns: list[Turn] = []
    for i, item in enumerate(_array(body, "turns", "turns", limit=MAX_TURNS)):
        role, text, _at = _turn(item, f"turns[{i}]")
        if text:
            turns.append(Turn(role=role, text=text))
    return KnowledgeRequest(call=ref, turns=turns)


def parse_transcript_update(body: Mapping[str, Any]) -> TranscriptUpdate:
    ref = call_ref(body)
    turn = _object(body, "turn", "turn", required=True)
    role, text, _at = _turn(turn, "turn")
    final = turn.get("final", True)
    if not isinstance(final, bool):
        raise MalformedWebhookError(
            f"field 'turn.final' must be a boolean, got {_type_name(final)}"
        )
    return TranscriptUpdate(call=ref, role=role, text=text, final=final)


def parse_call_ended(body: Mapping[str, Any]) -> CallEnded:
    """A ``call.ended`` body (as sent, or as stored in the inbox) as its canonical event."""
    kind = message_type(body)
    if kind != CALL_ENDED:
        raise MalformedWebhookError(f"field 'type' is '{kind}'; expected '{CALL_ENDED}' here")
    ref = call_ref(body)
    call = _object(body, "call", "call", required=True)
    started_at = _time(call, "started_at", "call.started_at")
    ended_at = _time(call, "ended_at", "call.ended_at")
    turns: list[Turn] = []
    for i, item in enumerate(_array(body, "transcript", "transcript", limit=MAX_TURNS)):
        field = f"transcript[{i}]"
        role, text, at = _turn(item, field)
        seconds = _seconds_from_start(at, f"{field}.at", started_at)
        if text:
            turns.append(Turn(role=role, text=text, seconds_from_start=seconds))
    reason = _str(body, "end_reason", "end_reason", limit=MAX_REASON_LENGTH, required=False)
    reason = reason.strip() if reason and reason.strip() else None
    summary = _str(body, "summary", "summary", limit=MAX_SUMMARY_LENGTH, required=False)
    success = body.get("success")
    if success is not None and not isinstance(success, bool):
        raise MalformedWebhookError(f"field 'success' must be a boolean, got {_type_name(success)}")
    canonical = canonical_end_reason(reason)
    return CallEnded(
        call=ref,
        started_at=started_at,
        ended_at=ended_at,
        ended_reason=canonical,
        platform_ended_reason=reason,
        turns=turns,
        platform_summary=summary.strip() if summary and summary.strip() else None,
        platform_success=success,
        transferred=canonical == "transferred",
    )


def parse_event(body: Mapping[str, Any]) -> CanonicalEvent:
    """Any message of the contract as its canonical event."""
    kind = message_type(body)
    if kind == CALL_STARTED:
        return ContextRequest(call=call_ref(body), variables=call_variables(body))
    if kind == TOOL_CALLS:
        return parse_tool_calls(body)
    if kind == KNOWLEDGE_REQUEST:
        return parse_knowledge_request(body)
    if kind == TRANSCRIPT_UPDATE:
        return parse_transcript_update(body)
    return parse_call_ended(body)
