"""The voice platforms Backline speaks, by name: one line per platform.

Adding a platform is one connector package implementing ``connectors.platform.VoicePlatform``
and one line here: the webhook router serves its ``hooks`` under ``/v1/webhooks/{name}/``.
"""

from __future__ import annotations

import re

from connectors.bland.platform import BLAND
from connectors.common import parse_json_body
from connectors.platform import VoicePlatform
from connectors.retell.platform import RETELL
from connectors.vapi.platform import VAPI
from core.calls.events import CallEnded
from core.errors import InvalidInputError

PLATFORMS: dict[str, VoicePlatform] = {
    VAPI.name: VAPI,
    RETELL.name: RETELL,
    BLAND.name: BLAND,
}


# The caller-number fields of every platform's payloads (a refused body is searched for any).
_CALLER_FIELDS = sorted({f for p in PLATFORMS.values() for f in p.caller_number_fields})
_NUMBER_IN_PAYLOAD = re.compile(
    rb'"(?:' + "|".join(map(re.escape, _CALLER_FIELDS)).encode() + rb')"\s*:\s*"([^"]{3,40})"'
)


def caller_number_in(raw: bytes) -> str | None:
    """The first caller number a raw payload carries in any platform's caller field (for the
    rejection record of an authenticated sender's body that did not parse)."""
    match = _NUMBER_IN_PAYLOAD.search(raw)
    return match.group(1).decode(errors="replace") if match else None


def get_platform(name: str) -> VoicePlatform:
    """The platform called ``name``, or InvalidInputError."""
    platform = PLATFORMS.get(name)
    if platform is None:
        raise InvalidInputError(f"no end-of-call parser for platform '{name}'")
    return platform


def parse_call_ended(platform: str, raw: bytes) -> CallEnded:
    """An inbox payload as its canonical end-of-call event (used by the ingest activity)."""
    body = parse_json_body(raw)
    return get_platform(platform).parse_call_ended(body)
