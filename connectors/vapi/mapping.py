"""Canonical replies -> VAPI response bodies.

Tool results must be single-line strings and the HTTP status is always 200 (VAPI ignores the
body of any other status).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from connectors.common import single_line


@dataclass(frozen=True)
class ToolResult:
    tool_call_id: str
    name: str
    result: str | None = None
    error: str | None = None


def assistant_request_reply(
    *, assistant_id: str | None, assistant: dict[str, Any] | None, variables: dict[str, str]
) -> dict[str, Any]:
    reply: dict[str, Any] = {}
    if assistant is not None:
        reply["assistant"] = assistant
    elif assistant_id:
        reply["assistantId"] = assistant_id
    reply["assistantOverrides"] = {"variableValues": variables}
    return reply


def tool_calls_reply(results: list[ToolResult]) -> dict[str, Any]:
    out = []
    for r in results:
        entry: dict[str, Any] = {"name": r.name, "toolCallId": r.tool_call_id}
        if r.error is not None:
            entry["error"] = single_line(r.error)
        else:
            entry["result"] = single_line(r.result or "")
        out.append(entry)
    return {"results": out}
