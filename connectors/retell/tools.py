"""Backline tools -> Retell custom-function definitions (``GeneralToolCustomTool``).

Each tool points at its own URL under ``/v1/webhooks/retell/{agent_id}/functions/{name}``,
with the nested ``{name, call, args}`` body (``args_at_root`` off) so caller-scoped tools see
the call and its caller. This module only describes tools; it never calls Retell's API.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from core.errors import InvalidInputError

# Retell: "a-z, A-Z, 0-9, underscores and dashes, with a maximum length of 64".
_TOOL_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
# Retell's default is 2 minutes of silence on a hung request; a live caller should not wait
# that long for a tool the hot path budgets at well under a second.
TOOL_TIMEOUT_MS = 10_000
_EMPTY_PARAMETERS: dict[str, Any] = {"type": "object", "properties": {}}


def function_url(base_url: str, agent_id: str, name: str) -> str:
    return f"{base_url.rstrip('/')}/v1/webhooks/retell/{agent_id}/functions/{name}"


def tool_definitions(
    tools: dict[str, dict[str, Any]], base_url: str, agent_id: str
) -> list[dict[str, Any]]:
    """One ``type: "custom"`` definition per tool, for the Retell LLM's ``general_tools``."""
    definitions: list[dict[str, Any]] = []
    for name, spec in tools.items():
        if not _TOOL_NAME.fullmatch(name):
            raise InvalidInputError(
                f"tool name '{name}' is not valid on Retell: use 1-64 letters, digits, '_' or '-'"
            )
        parameters = copy.deepcopy(spec.get("parameters") or _EMPTY_PARAMETERS)
        if parameters.get("type") != "object" or not isinstance(parameters.get("properties"), dict):
            raise InvalidInputError(
                f"tool '{name}' parameters must be a JSON Schema object with 'properties'"
            )
        definitions.append(
            {
                "type": "custom",
                "name": name,
                "description": str(spec.get("description") or ""),
                "url": function_url(base_url, agent_id, name),
                "method": "POST",
                "parameters": parameters,
                # Nested body: the call object carries the caller; at root it would be lost.
                "args_at_root": False,
                # Built-ins answer from an indexed read, well under Retell's 1 s filler advice.
                "speak_during_execution": False,
                "speak_after_execution": True,
                "timeout_ms": TOOL_TIMEOUT_MS,
            }
        )
    return definitions
