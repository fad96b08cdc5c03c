"""Turning MCP tool answers and gateway failures into what a voice agent can say.

Results become one compact string (connectors make it single-line where a platform needs it);
failures become short, voice-friendly sentences the agent can read to the caller. Nothing here
logs a result: it may hold the caller's details.
"""

from __future__ import annotations

import json
from typing import Any

from jsonschema import Draft202012Validator  # type: ignore[import-untyped]
from jsonschema.exceptions import best_match  # type: ignore[import-untyped]

from core.tools.builtins import ToolOutcome
from core.tools.ports import RawToolResult

# Retell caps a custom function's answer at 15,000 characters; no spoken answer needs more.
MAX_RESULT_CHARS = 15_000


def _compact(text: str) -> str:
    stripped = text.strip()
    if stripped[:1] in "{[":
        try:
            return json.dumps(json.loads(stripped), separators=(",", ":"), ensure_ascii=False)
        except ValueError:
            return stripped
    return stripped


def result_text(raw: RawToolResult) -> str:
    """The answer as one string: the text blocks (JSON re-encoded compactly), else the
    structured content, plus a note for content a voice agent cannot use."""
    parts = [_compact(t) for t in raw.texts if t.strip()]
    if not parts and raw.structured is not None:
        parts.append(json.dumps(raw.structured, separators=(",", ":"), ensure_ascii=False))
    if raw.other_content:
        parts.append(f"[{', '.join(sorted(set(raw.other_content)))} content omitted]")
    text = " ".join(parts) if parts else "(the tool returned no content)"
    return text[:MAX_RESULT_CHARS]


def to_outcome(raw: RawToolResult) -> ToolOutcome:
    text = result_text(raw)
    return ToolOutcome(error=text) if raw.is_error else ToolOutcome(result=text)


def fallback_message(display_name: str, configured: str | None) -> str:
    """What the caller hears when the tool's server is down, too slow or unreadable."""
    if configured:
        return configured
    return (
        f"I can't reach {display_name} right now. I'm sorry about that; please try again in a "
        "few minutes, or I can take a note so someone follows up."
    )


RATE_LIMITED = (
    "We're handling a lot of requests right now, so I couldn't do that just yet. Please give "
    "me a moment and ask again."
)
IN_PROGRESS = (
    "That request is still being processed. I'll avoid doing it twice; please check back in a "
    "moment for the confirmation."
)


def unavailable_tool(name: str) -> str:
    return (
        f"The tool '{name}' is enabled but its server no longer offers it; tell the caller it "
        "is unavailable right now."
    )


def compile_validator(schema: dict[str, Any]) -> Any:
    """A validator for a tool's input schema (JSON Schema 2020-12, as MCP specifies); an
    unusable schema validates nothing rather than blocking every call."""
    try:
        Draft202012Validator.check_schema(schema)
    except Exception:
        return None
    return Draft202012Validator(schema)


def argument_error(name: str, validator: Any, arguments: dict[str, Any]) -> str | None:
    """A per-call explanation when ``arguments`` do not fit the tool's schema, else None."""
    if validator is None:
        return None
    error = best_match(validator.iter_errors(arguments))
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path)
    at = f" (at '{where}')" if where else ""
    return (
        f"The arguments for {name} don't fit its schema: {error.message}{at}. Ask the caller "
        "for the missing or corrected detail, then call the tool again."
    )
