"""Which connector parses which platform's end-of-call payloads (used by activities)."""

from __future__ import annotations

from connectors.bland import webhooks as bland
from connectors.common import parse_json_body
from connectors.retell import webhooks as retell
from connectors.vapi import webhooks as vapi
from core.calls.events import CallEnded
from core.errors import InvalidInputError


def parse_call_ended(platform: str, raw: bytes) -> CallEnded:
    body = parse_json_body(raw)
    if platform == "vapi":
        return vapi.parse_call_ended(body)
    if platform == "retell":
        return retell.parse_call_ended(body)
    if platform == "bland":
        return bland.parse_post_call(body)
    raise InvalidInputError(f"no end-of-call parser for platform '{platform}'")
