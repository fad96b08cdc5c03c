"""Canonical replies -> VAPI response bodies.

Tool results must be single-line strings and the HTTP status is always 200 (VAPI ignores the
body of any other status).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from connectors.common import single_line
from core.prompts.serving import ServedPrompt


@dataclass(frozen=True)
class ToolResult:
    tool_call_id: str
    name: str
    result: str | None = None
    error: str | None = None


def _model_with_prompt(
    base: dict[str, Any], prompt: ServedPrompt, tools: list[dict[str, Any]] | None
) -> dict[str, Any]:
    """The assistant's model with the version's settings and its rendered system prompt first;
    the platform's other messages and settings stay."""
    model = {**copy.deepcopy(base), **copy.deepcopy(dict(prompt.model))}
    others = [m for m in model.get("messages") or [] if m.get("role") != "system"]
    model["messages"] = [{"role": "system", "content": prompt.system_prompt}, *others]
    if tools:
        model["tools"] = tools
    return model


def assistant_request_reply(
    *,
    assistant_id: str | None,
    assistant: dict[str, Any] | None,
    variables: dict[str, str],
    prompt: ServedPrompt | None = None,
    tools: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """``assistant`` (inline) or ``assistantId``, plus ``assistantOverrides``.

    With a served prompt version the rendered system prompt travels inline: in the inline
    assistant's ``model.messages``, or for an assistant id in ``assistantOverrides.model`` when
    the version names its model (VAPI needs provider and model there). It is always in
    ``variableValues`` as ``backline_system_prompt`` too, for assistants whose prompt is that
    variable.
    """
    reply: dict[str, Any] = {}
    overrides: dict[str, Any] = {"variableValues": variables}
    if assistant is not None:
        if prompt is not None:
            assistant = copy.deepcopy(assistant)
            assistant["model"] = _model_with_prompt(assistant.get("model") or {}, prompt, tools)
            if prompt.first_message:
                assistant["firstMessage"] = prompt.first_message
        reply["assistant"] = assistant
    elif assistant_id:
        reply["assistantId"] = assistant_id
        if prompt is not None and prompt.model.get("provider") and prompt.model.get("model"):
            overrides["model"] = _model_with_prompt({}, prompt, tools)
        if prompt is not None and prompt.first_message:
            overrides["firstMessage"] = prompt.first_message
    reply["assistantOverrides"] = overrides
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
