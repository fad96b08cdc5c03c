"""Backline tools as JSON-schema function definitions for a team's own voice stack.

Each definition is OpenAI's function-tool shape (what Pipecat, LiveKit Agents and most LLM SDKs
take as is) plus where to send the call: ``url`` is the agent's one custom webhook, to be POSTed
a signed ``tool.calls`` message, answered within ``timeout_seconds``.
"""

from __future__ import annotations

import copy
from typing import Any

from connectors.custom.webhooks import TOOL_CALLS, VERSION
from core.errors import InvalidInputError

# A live caller should not wait longer than this; the tool gateway answers inside it.
TOOL_TIMEOUT_S = 10
_EMPTY_PARAMETERS: dict[str, Any] = {"type": "object", "properties": {}}


def webhook_url(base_url: str, agent_id: str) -> str:
    return f"{base_url.rstrip('/')}/v1/webhooks/custom/{agent_id}"


def tool_definitions(
    tools: dict[str, dict[str, Any]], base_url: str, agent_id: str
) -> list[dict[str, Any]]:
    url = webhook_url(base_url, agent_id)
    definitions: list[dict[str, Any]] = []
    for name, spec in tools.items():
        parameters = copy.deepcopy(spec.get("parameters") or _EMPTY_PARAMETERS)
        if parameters.get("type") != "object":
            raise InvalidInputError(
                f"tool '{name}' parameters must be a JSON Schema object (type: object)"
            )
        definitions.append(
            {
                "type": "function",
                "function": {
                    "name": name,
                    "description": str(spec.get("description") or ""),
                    "parameters": parameters,
                },
                "url": url,
                "method": "POST",
                "message_type": TOOL_CALLS,
                "contract_version": VERSION,
                "timeout_seconds": TOOL_TIMEOUT_S,
            }
        )
    return definitions
