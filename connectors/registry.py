"""The voice platforms Backline speaks, by name: one line per platform.

Adding a platform is one connector package implementing ``connectors.platform.VoicePlatform``
(its name, credential kinds and settings rules live on that object) and one line here (plus its
webhook route). Core names no platform: the API hands it what it needs from here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from connectors.bland.platform import BLAND
from connectors.common import parse_json_body
from connectors.custom.platform import CUSTOM
from connectors.platform import VoicePlatform
from connectors.retell.platform import RETELL
from connectors.vapi.platform import VAPI
from core.calls.events import CallEnded
from core.errors import InvalidInputError

PLATFORMS: dict[str, VoicePlatform] = {
    VAPI.name: VAPI,
    RETELL.name: RETELL,
    BLAND.name: BLAND,
    CUSTOM.name: CUSTOM,
}

# Platform name -> the credential kinds it accepts (core's tenancy service checks against this).
CREDENTIAL_KINDS: dict[str, tuple[str, ...]] = {n: p.credential_kinds for n, p in PLATFORMS.items()}
# A path or body field naming a platform matches exactly one of the registered names.
PLATFORM_PATTERN = "^(" + "|".join(re.escape(n) for n in sorted(PLATFORMS)) + ")$"


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


def validate_platform_settings(doc: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """An agent's ``platform_settings`` checked by each platform's connector: InvalidInputError
    (422) naming an unknown platform or the first bad key of a platform's document."""
    out: dict[str, dict[str, Any]] = {}
    for name, settings in doc.items():
        platform = PLATFORMS.get(name)
        if platform is None:
            raise InvalidInputError(
                f"platform_settings.{name}: unknown platform '{name}'; "
                f"use one of {sorted(PLATFORMS)}"
            )
        if not isinstance(settings, Mapping):
            raise InvalidInputError(f"platform_settings.{name}: must be an object")
        out[name] = platform.validate_settings(settings)
    return out


def parse_call_ended(platform: str, raw: bytes) -> CallEnded:
    """An inbox payload as its canonical end-of-call event (used by the ingest activity)."""
    body = parse_json_body(raw)
    return get_platform(platform).parse_call_ended(body)
