"""Bland webhook authentication and parsing into canonical events.

Bland calls three kinds of URL. The post-call webhook receives the full call object, signed
with ``X-Webhook-Signature`` (hex HMAC-SHA256 of the body with the account's signing secret,
no timestamp); Bland's cookbook adds a delayed second POST, 30-60 s later, carrying
``corrected_transcript`` and ``citations``, possibly without the rest of the call. Dynamic-data
fetches and custom tools receive whatever body the agent developer templated, unsigned, so they
must carry ``Authorization: Bearer <tool token>``.

This module verifies credentials over the RAW body bytes, turns payloads into canonical events,
and merges a bare corrected-transcript delivery into the call object it corrects. It never
answers a request, touches storage, or guesses a caller.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

from connectors.common import load_json, parse_time, turns_from_lines
from core.calls.events import (
    CallEnded,
    CallRef,
    ContextRequest,
    ToolCall,
    ToolCallBatch,
    Turn,
    canonical_end_reason,
    check_call_id,
)
from core.errors import (
    ConflictError,
    InvalidJsonError,
    MalformedWebhookError,
    WebhookSignatureError,
)

PLATFORM = "bland"
SIGNATURE_HEADER = "X-Webhook-Signature"
# The delayed POST's own fields; everything else in a merged call object comes from Bland's
# first delivery.
CORRECTION_FIELDS = ("corrected_transcript", "citations")
# Fields only a call object has: a body with none of them cannot name its caller by itself.
_CALL_OBJECT_FIELDS = ("from", "to", "inbound", "variables")
# Speaker labels seen in ``transcripts[].user`` (assistant, user) and, for the corrected
# transcript whose labels Bland does not document, the usual synonyms. ``robot`` and
# ``agent-action`` (tool and action notes) are not part of the conversation.
_ROLES: dict[str, Literal["agent", "caller"]] = {
    "assistant": "agent",
    "agent": "agent",
    "ai": "agent",
    "bot": "agent",
    "user": "caller",
    "caller": "caller",
    "customer": "caller",
    "human": "caller",
}
_UNFILLED = re.compile(r"\{\{.*\}\}")
_FIX_SIGNING = (
    "copy the signing secret from Bland's Dev Portal (Account Settings -> Keys) and store it "
    "with PUT /v1/agents/{agent_id}/credentials/bland "
    '{"kind": "signing_secret", "secret": "<signing secret>"}'
)
_FIX_TOKEN = (
    "add the header 'Authorization: Bearer <tool token>' to the tool or dynamic_data config in "
    "Bland, with the token stored by PUT /v1/agents/{agent_id}/credentials/bland "
    '{"kind": "tool_token", "secret": "<tool token>"}'
)


# -- post-call signature ---------------------------------------------------------------------


def sign(raw: bytes, secret: str) -> str:
    """The ``X-Webhook-Signature`` Bland sends for ``raw`` (for tests and local tools)."""
    return hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()


def _compact(raw: bytes) -> bytes | None:
    """The body as JavaScript's ``JSON.stringify`` writes it, which Bland's Node sample signs."""
    try:
        body = load_json(raw)
    except InvalidJsonError:
        return None
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def verify_post_call(raw: bytes, header: str | None, secret: str) -> None:
    """Raise WebhookSignatureError unless ``header`` is the HMAC of ``raw`` with ``secret``.

    The exact bytes received are checked first: re-encoding JSON changes non-ASCII text and
    spacing. Only if they fail is the compact re-serialization tried, because Bland documents
    signing ``JSON.stringify(body)``; both compares are constant-time.
    """
    if not header or not header.strip():
        raise WebhookSignatureError(
            f"the {SIGNATURE_HEADER} header is missing; Bland sends it once a signing secret "
            f"exists on the account: {_FIX_SIGNING}"
        )
    given = header.strip().lower().removeprefix("sha256=").encode()
    if hmac.compare_digest(sign(raw, secret).encode(), given):
        return
    compact = _compact(raw)
    if (
        compact is not None
        and compact != raw
        and hmac.compare_digest(sign(compact, secret).encode(), given)
    ):
        return
    raise WebhookSignatureError(
        f"the {SIGNATURE_HEADER} digest does not match this body: it was altered in transit "
        f"(a proxy re-encoding JSON?) or signed with another secret; {_FIX_SIGNING}"
    )


def verify_post_call_request(
    raw: bytes, header: str | None, secrets: Sequence[str], *, agent_id: str
) -> None:
    """Accept when any configured signing secret verifies (so a secret can be rotated)."""
    if not secrets:
        raise WebhookSignatureError(
            f"no Bland signing secret is configured for agent '{agent_id}'; "
            + _FIX_SIGNING.replace("{agent_id}", agent_id)
        )
    error: WebhookSignatureError | None = None
    for secret in secrets:
        try:
            verify_post_call(raw, header, secret)
        except WebhookSignatureError as exc:
            error = exc
        else:
            return
    assert error is not None
    raise WebhookSignatureError(error.detail.replace("{agent_id}", agent_id))


# -- tool and dynamic-data token --------------------------------------------------------------


def verify_tool_token(authorization: str | None, token: str) -> None:
    """Raise WebhookSignatureError unless ``authorization`` is ``Bearer <token>``.

    Bland signs only post-call webhooks; tools and dynamic data are authenticated by the header
    the developer configured, compared in constant time.
    """
    if not authorization or not authorization.strip():
        raise WebhookSignatureError(f"the Authorization header is missing; {_FIX_TOKEN}")
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise WebhookSignatureError(
            f"the Authorization header must be 'Bearer <tool token>'; {_FIX_TOKEN}"
        )
    if not hmac.compare_digest(value.strip().encode(), token.encode()):
        raise WebhookSignatureError(
            f"the bearer token does not match this agent's Bland tool token; {_FIX_TOKEN}"
        )


def verify_tool_request(authorization: str | None, tokens: Sequence[str], *, agent_id: str) -> None:
    if not tokens:
        raise WebhookSignatureError(
            f"no Bland tool token is configured for agent '{agent_id}', so tools and dynamic "
            "data cannot be authenticated; choose a random token, store it with "
            f"PUT /v1/agents/{agent_id}/credentials/bland "
            '{"kind": "tool_token", "secret": "<token>"} and send it from Bland as '
            "'Authorization: Bearer <token>'"
        )
    error: WebhookSignatureError | None = None
    for token in tokens:
        try:
            verify_tool_token(authorization, token)
        except WebhookSignatureError as exc:
            error = exc
        else:
            return
    assert error is not None
    raise WebhookSignatureError(error.detail.replace("{agent_id}", agent_id))


# -- field helpers ----------------------------------------------------------------------------


def _filled(value: Any) -> str | None:
    """A templated string value, or None when empty or Bland left ``{{...}}`` unreplaced."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value).strip()
    if not text or _UNFILLED.search(text):
        return None
    return text


def require_call_id(body: Mapping[str, Any], hint: str = "") -> str:
    """``call_id``, or a MalformedWebhookError naming it (``hint`` says how to template it)."""
    call_id = _filled(body.get("call_id"))
    if call_id is None:
        raise MalformedWebhookError(f"required field 'call_id' is missing{hint}")
    return check_call_id(call_id, "call_id")


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


# -- transcripts ------------------------------------------------------------------------------


def _offset(item: Mapping[str, Any], started_at: datetime | None) -> float | None:
    start = item.get("start")
    if isinstance(start, int | float) and not isinstance(start, bool):
        return float(start)
    said_at = parse_time(item.get("created_at"))
    if said_at is None or started_at is None:
        return None
    seconds = (said_at - started_at).total_seconds()
    return seconds if seconds >= 0 else None


def _turns_from_entries(items: Any, started_at: datetime | None) -> list[Turn]:
    """``transcripts[]`` entries (``user``, ``text``) or corrected segments (``speaker``)."""
    turns: list[Turn] = []
    if not isinstance(items, list):
        return turns
    for item in items:
        if not isinstance(item, Mapping):
            continue
        speaker = item.get("user", item.get("speaker", item.get("role")))
        role = _ROLES.get(str(speaker).strip().lower())
        text = item.get("text", item.get("content"))
        if role is None or not isinstance(text, str) or not text.strip():
            continue
        turns.append(
            Turn(role=role, text=text.strip(), seconds_from_start=_offset(item, started_at))
        )
    return turns


def _corrected_turns(corrected: Any, started_at: datetime | None) -> list[Turn]:
    # Bland documents the corrected transcript only as "an object with speaker labels and
    # confidence scores"; its cookbook reads ``segments`` and says it may be a plain string.
    if isinstance(corrected, str):
        return turns_from_lines(corrected, _ROLES)
    if isinstance(corrected, list):
        return _turns_from_entries(corrected, started_at)
    if isinstance(corrected, Mapping):
        for key in ("segments", "transcripts", "utterances", "transcript"):
            value = corrected.get(key)
            turns = (
                turns_from_lines(value, _ROLES)
                if isinstance(value, str)
                else _turns_from_entries(value, started_at)
            )
            if turns:
                return turns
    return []


def _turns(body: Mapping[str, Any], started_at: datetime | None) -> list[Turn]:
    # The corrected transcript wins when it yields a conversation; one we cannot read must not
    # wipe out the transcript Bland sent first.
    return (
        _corrected_turns(body.get("corrected_transcript"), started_at)
        or _turns_from_entries(body.get("transcripts"), started_at)
        # Bland's concatenated transcript: "assistant: Hi. \n user: Where is my order?"
        or turns_from_lines(body.get("concatenated_transcript"), _ROLES)
    )


# -- post-call --------------------------------------------------------------------------------


def is_correction_only(body: Mapping[str, Any]) -> bool:
    """The delayed POST in its bare form: a corrected transcript without the call object."""
    return "corrected_transcript" in body and not any(k in body for k in _CALL_OBJECT_FIELDS)


def _caller(
    body: Mapping[str, Any],
) -> tuple[str | None, Literal["inbound", "outbound"] | None]:
    """``from`` on inbound calls, ``to`` on outbound; ``variables.phone_number`` (always the
    other party) when those are missing. No number (a web call) means no caller."""
    other = _filled(_mapping(body.get("variables")).get("phone_number"))
    inbound = body.get("inbound")
    if not isinstance(inbound, bool):
        return other, None
    number = _filled(body.get("from" if inbound else "to"))
    return number or other, "inbound" if inbound else "outbound"


def _ended_reason(body: Mapping[str, Any]) -> str | None:
    # Most specific first, in the vocabulary the scorecard reads (error, voicemail, *-ended-call).
    error = _filled(body.get("error_message"))
    if error:
        return f"error: {error}"
    if str(body.get("answered_by") or "").lower() == "voicemail":
        return "voicemail"
    ended_by = _filled(body.get("call_ended_by"))
    if ended_by:
        return f"{ended_by.lower()}-ended-call"
    status = _filled(body.get("status"))
    return status.lower() if status else None


def parse_post_call(body: Mapping[str, Any]) -> CallEnded:
    """A Bland call object (as posted, or as merged with its correction) as ``CallEnded``."""
    call_id = require_call_id(body)
    if is_correction_only(body):
        raise MalformedWebhookError(
            f"this is Bland's delayed corrected-transcript POST for call '{call_id}' without the "
            "call object (fields 'from', 'to', 'inbound', 'variables' are missing); merge it "
            "into the call's earlier post-call payload first (merge_correction)"
        )
    number, direction = _caller(body)
    started_at = parse_time(body.get("started_at")) or parse_time(body.get("created_at"))
    summary = body.get("summary")
    return CallEnded(
        call=CallRef(platform=PLATFORM, call_id=call_id, caller_number=number, direction=direction),
        started_at=started_at,
        ended_at=parse_time(body.get("end_at")),
        ended_reason=canonical_end_reason(_ended_reason(body)),
        platform_ended_reason=_ended_reason(body),
        turns=_turns(body, started_at),
        platform_summary=summary.strip() if isinstance(summary, str) and summary.strip() else None,
        transferred=_filled(body.get("transferred_to")) is not None,
    )


def merge_correction(
    earlier: Sequence[Mapping[str, Any]], correction: Mapping[str, Any]
) -> dict[str, Any]:
    """The call object Bland posted first, with the delayed POST's fields laid over it.

    ``earlier`` is what was received before for this call and agent, oldest first. The base is
    the newest full call object that is not itself a merge, so every re-delivery of one
    correction yields an equal document (and the inbox sees a duplicate, not a new revision).
    Raises ConflictError when the call object has not arrived yet.
    """
    call_id = require_call_id(correction)
    candidates = [
        b for b in earlier if _filled(b.get("call_id")) == call_id and not is_correction_only(b)
    ]
    originals = [b for b in candidates if "corrected_transcript" not in b]
    bases = originals or candidates
    if not bases:
        raise ConflictError(
            f"Bland's corrected transcript for call '{call_id}' arrived before the call object "
            "it corrects; the call object must be delivered first (Bland's "
            "POST /v1/postcall/webhooks/resend re-sends it), then re-send this correction"
        )
    merged = {k: v for k, v in bases[-1].items() if k not in CORRECTION_FIELDS}
    merged.update({k: v for k, v in correction.items() if k != "call_id"})
    return merged


def encode_payload(body: Mapping[str, Any]) -> bytes:
    """Deterministic bytes for a document we built (equal documents hash equal in the inbox)."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


# -- dynamic data and tools -------------------------------------------------------------------


_CALLER_KEYS = ("caller", "phone_number", "from")


def parse_dynamic_data(body: Mapping[str, Any]) -> ContextRequest:
    """A dynamic-data fetch as a context request for the caller.

    The body is the developer's template; ``caller`` (documented), ``phone_number`` or
    ``from`` name the caller, in that order (``from`` is our own number on outbound calls).
    """
    number = next((n for n in (_filled(body.get(k)) for k in _CALLER_KEYS) if n), None)
    if number is None:
        raise MalformedWebhookError(
            "required field 'caller' is missing (also accepted: 'phone_number', 'from'); "
            'template it in the dynamic_data body as "caller": "{{phone_number}}"'
        )
    call_id = require_call_id(
        body, hint='; template it in the dynamic_data body as "call_id": "{{call_id}}"'
    )
    # Every other filled field is a value the call carries ("account_tier": "{{account_tier}}"
    # templated from the call's request_data): a prompt version's default never replaces it.
    own = {str(k): v for k, v in ((k, _filled(body.get(k))) for k in body) if v is not None}
    return ContextRequest(
        call=CallRef(platform=PLATFORM, call_id=call_id, caller_number=number), variables=own
    )


def tool_call_id(call_id: str, tool_name: str, arguments: Mapping[str, Any]) -> str:
    """Stable per call, tool and arguments: a retried request is recognizably the same call."""
    canonical = json.dumps(
        arguments, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    )
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]
    return f"{call_id}:{tool_name}:{digest}"


def parse_tool_call(body: Mapping[str, Any], tool_name: str) -> ToolCallBatch:
    """A custom-tool request (``{"call_id", "caller", <args>...}``) as a one-call batch.

    The tool is the one named in our URL. Every field but ``call_id`` and ``caller`` is an
    argument; empty or unreplaced ``{{input.x}}`` values are dropped so the tool's defaults
    apply. Without a caller, caller-scoped tools answer an error rather than guess.
    """
    call_id = require_call_id(
        body, hint='; template it in the tool body as "call_id": "{{call_id}}"'
    )
    arguments = {
        k: v
        for k, v in body.items()
        if k not in ("call_id", "caller")
        and not (isinstance(v, str) and (not v.strip() or _UNFILLED.search(v)))
    }
    ref = CallRef(platform=PLATFORM, call_id=call_id, caller_number=_filled(body.get("caller")))
    return ToolCallBatch(
        call=ref,
        calls=[
            ToolCall(
                call=ref,
                tool_call_id=tool_call_id(call_id, tool_name, arguments),
                name=tool_name,
                arguments=arguments,
            )
        ],
    )
