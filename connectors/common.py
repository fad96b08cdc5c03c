"""Helpers shared by the platform connectors: lenient JSON field access, time parsing and
"speaker: text" transcripts.

Platform payloads carry unknown extra fields (tolerated) and sometimes miss required ones
(named precisely in the error, e.g. ``message.call.id``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from core.calls.events import Role, Turn
from core.errors import InvalidJsonError, MalformedWebhookError

# Real platform payloads nest a handful of levels; a few dozen is far beyond any of them.
MAX_JSON_DEPTH = 64
MAX_JSON_INT = 2**63 - 1


def load_json(raw: bytes) -> Any:
    """``raw`` as JSON, or InvalidJsonError saying why (never an unexpected exception).

    Besides syntax: nesting deeper than MAX_JSON_DEPTH (the parser would recurse without bound),
    integers longer than Python's digit limit, and strings no database can store (a lone UTF-16
    surrogate such as ``"\\ud800"``, or a NUL character) are refused with the field's path.
    """
    try:
        body = json.loads(raw.decode("utf-8"), parse_constant=_no_constant)
    except UnicodeDecodeError as exc:
        raise InvalidJsonError(f"body is not valid UTF-8: {exc}") from exc
    except RecursionError as exc:
        raise InvalidJsonError(
            f"body is nested too deeply (more than {MAX_JSON_DEPTH} levels)"
        ) from exc
    except ValueError as exc:  # JSONDecodeError, and integers past the digit limit
        raise InvalidJsonError(f"body is not valid JSON: {exc}") from exc
    check_json_values(body)
    return body


def _no_constant(name: str) -> Any:
    # NaN and Infinity are not JSON (RFC 8259) and no JSON column accepts them.
    raise ValueError(f"{name} is not a JSON number")


def parse_json_body(raw: bytes) -> dict[str, Any]:
    body = load_json(raw)
    if not isinstance(body, dict):
        raise InvalidJsonError("body must be a JSON object")
    return body


def text_problem(text: str) -> str | None:
    if "\x00" in text:
        return "contains a NUL character"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "contains a lone UTF-16 surrogate (an unpaired \\ud800-\\udfff escape)"
    return None


def check_json_values(body: Any) -> None:
    """Walk a parsed document (iteratively) and refuse what storage cannot hold, by path."""
    stack: list[tuple[Any, str, int]] = [(body, "", 0)]
    while stack:
        value, path, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise InvalidJsonError(
                f"body is nested too deeply at '{path}' (more than {MAX_JSON_DEPTH} levels)"
            )
        if isinstance(value, str):
            problem = text_problem(value)
            if problem:
                raise MalformedWebhookError(f"field '{path or 'body'}' {problem}")
        elif isinstance(value, bool):
            continue
        elif isinstance(value, int) and not -MAX_JSON_INT <= value <= MAX_JSON_INT:
            raise MalformedWebhookError(
                f"field '{path or 'body'}' is an integer beyond 64 bits; no platform sends one"
            )
        elif isinstance(value, float) and not math.isfinite(value):
            raise MalformedWebhookError(f"field '{path or 'body'}' is a number out of range")
        elif isinstance(value, dict):
            for key, item in value.items():
                child = f"{path}.{key}" if path else str(key)
                problem = text_problem(key)
                if problem:
                    raise MalformedWebhookError(f"a key in '{path or 'body'}' {problem}")
                stack.append((item, child, depth + 1))
        elif isinstance(value, list):
            stack.extend((item, f"{path}[{i}]", depth + 1) for i, item in enumerate(value))


def optional_str(obj: Any, path: str) -> str | None:
    """A string at ``path`` (None when absent); any other type is named in the error."""
    value = optional(obj, path)
    if value is None or isinstance(value, str):
        return value
    raise MalformedWebhookError(f"field '{path}' must be a string, got {type(value).__name__}")


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


def turns_from_lines(transcript: Any, roles: Mapping[str, Role]) -> list[Turn]:
    """A ``"speaker: text"`` transcript, one utterance a line, as turns.

    ``roles`` maps each platform's lowercase speaker labels to a role; a line whose speaker is
    not in it, that has no colon, or that says nothing is skipped. Anything but a string is no
    transcript (no turns).
    """
    turns: list[Turn] = []
    if not isinstance(transcript, str):
        return turns
    for line in transcript.splitlines():
        speaker, sep, text = line.partition(":")
        role = roles.get(speaker.strip().lower())
        if sep and role and text.strip():
            turns.append(Turn(role=role, text=text.strip()))
    return turns


def single_line(text: str, limit: int = 4000) -> str:
    """VAPI speaks tool results that are single-line strings."""
    return " ".join(text.split())[:limit]
