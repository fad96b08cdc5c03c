"""The voice platforms Backline speaks, by name: one line per platform.

Adding a platform is one connector package implementing ``connectors.platform.VoicePlatform``
and one line here (plus its webhook route).
"""

from __future__ import annotations

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
