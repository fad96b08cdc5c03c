"""Canonical replies -> Bland response bodies.

Bland reads our replies with JSONPath: a dynamic_data entry's ``response_data`` and a tool's
``response`` map paths such as ``$.backline_memory_summary`` or ``$.answer`` into variables the
agent's prompt uses. So replies are flat JSON objects of strings under stable keys. This module
only shapes replies: it never decides what a caller is told.
"""

from __future__ import annotations

from core.tools.builtins import ToolOutcome


def dynamic_data_reply(variables: dict[str, str]) -> dict[str, str]:
    """``{"backline_memory_summary": ..., ...}``: one flat key per Backline variable."""
    return {str(k): str(v) for k, v in variables.items()}


def tool_reply(outcome: ToolOutcome) -> dict[str, str]:
    """``{"answer": ...}`` or ``{"error": ...}``; the route sends it with HTTP 200 so the agent
    hears a failure explained instead of a failed request."""
    if outcome.error is not None:
        return {"error": outcome.error}
    return {"answer": outcome.result or ""}
