"""Helpers shared by the platform connectors: lenient JSON field access and time parsing.

Platform payloads carry unknown extra fields (tolerated) and sometimes miss required ones
(named precisely in the error, e.g. ``message.call.id``).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from core.errors import InvalidJsonError, MalformedWebhookError


def parse_json_body(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidJsonError(f"body is not valid UTF-8 JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise InvalidJsonError("body must be a JSON object")
    return body


def require(obj: Any, path: str) -> Any:
    """Value at a dotted path, or a MalformedWebhookError naming the missing field."""
    current = obj
    walked: list[str] = []
    for part in path.split("."):
        walked.append(part)
        if not isinstance(current, dict) or current.get(part) in (None, ""):
            raise MalformedWebhookError(f"required field '{'.'.join(walked)}' is missing")
        current = current[part]
    return current


def optional(obj: Any, path: str) -> Any:
    current = obj
    for part in path.split("."):
        if not isinstance(current, dict):
            return None
        current = current.get(part)
        if current is None:
            return None
    return current


def parse_time(value: Any) -> datetime | None:
    """ISO strings or epoch numbers (seconds or milliseconds) as aware UTC."""
    if value is None or value == "":
        return None
    try:
        if isinstance(value, int | float):
            seconds = value / 1000.0 if value > 1e11 else float(value)
            return datetime.fromtimestamp(seconds, UTC)
        text = str(value).strip()
        if text.replace(".", "", 1).isdigit():
            return parse_time(float(text))
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, OverflowError, OSError):
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def single_line(text: str, limit: int = 4000) -> str:
    """VAPI speaks tool results that are single-line strings."""
    return " ".join(text.split())[:limit]
