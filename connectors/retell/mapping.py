"""Canonical replies -> Retell response bodies.

Inbound replies nest everything under ``call_inbound``; dynamic variable values must be strings
(Retell types them ``Dict[str, str]`` and substitutes them into the prompt). A custom function's
whole 2xx body becomes the tool result the LLM reads, capped at 15,000 characters. This module
only shapes replies: it never decides what a caller is told.
"""

from __future__ import annotations

import json
from typing import Any

from core.tools.builtins import ToolOutcome

FUNCTION_RESULT_LIMIT = 15_000
_TRUNCATED = " [truncated]"


def inbound_reply(
    variables: dict[str, str],
    override_agent_id: str | None = None,
    metadata: dict[str, str] | None = None,
) -> dict[str, Any]:
    """``{"call_inbound": {"dynamic_variables", "metadata", "override_agent_id"?}}``."""
    reply: dict[str, Any] = {
        "dynamic_variables": {str(k): str(v) for k, v in variables.items()},
        "metadata": dict(metadata or {}),
    }
    if override_agent_id:
        reply["override_agent_id"] = override_agent_id
    return {"call_inbound": reply}


def _body_length(reply: dict[str, str]) -> int:
    # Measured as the route serializes it (Starlette: compact, ensure_ascii=False).
    return len(json.dumps(reply, ensure_ascii=False, separators=(",", ":")))


def _fit(key: str, text: str) -> dict[str, str]:
    if _body_length({key: text}) <= FUNCTION_RESULT_LIMIT:
        return {key: text}
    # The cap is on the whole body Retell reads, and JSON escaping makes some characters
    # longer than one, so find the longest prefix that fits; the marker tells the LLM it is
    # reading a part.
    low, high = 0, len(text)
    while low < high:
        mid = (low + high + 1) // 2
        if _body_length({key: text[:mid] + _TRUNCATED}) <= FUNCTION_RESULT_LIMIT:
            low = mid
        else:
            high = mid - 1
    return {key: text[:low] + _TRUNCATED}


def function_reply(outcome: ToolOutcome) -> dict[str, str]:
    """``{"result": ...}`` or ``{"error": ...}`` (at most 15,000 characters as JSON); the route
    always sends it with HTTP 200 so the LLM hears errors instead of a failed request."""
    if outcome.error is not None:
        return _fit("error", outcome.error)
    return _fit("result", outcome.result or "")
