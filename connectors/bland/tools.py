"""Backline tools -> Bland custom tool definitions (legacy ``POST /v1/tools`` / inline ``tools[]``).

Bland sends exactly the body we template, so each definition templates the ids the route needs
(``{{call_id}}`` and the other party's ``{{phone_number}}`` as ``caller``) beside one
``{{input.<param>}}`` per parameter, and carries the tool token as a bearer header (Bland does
not sign tool requests). Replies are mapped back with JSONPath. This module only describes
tools; it never calls Bland's API and never embeds a real token.
"""

from __future__ import annotations

import copy
from typing import Any

from core.errors import InvalidInputError

# Bland refuses these names for custom tools (they are its own built-in actions).
RESERVED_NAMES = frozenset({"input", "speak", "transfer", "wait", "finish"})
# Fields the route reads as ids; a parameter of the same name would be swallowed.
ID_FIELDS = ("call_id", "caller")
FILLER_SPEECH = "One moment while I check."
_EMPTY_PARAMETERS: dict[str, Any] = {"type": "object", "properties": {}}


def tool_url(base_url: str, agent_id: str, name: str) -> str:
    return f"{base_url.rstrip('/')}/v1/webhooks/bland/{agent_id}/tools/{name}"


def _example_value(name: str, schema: dict[str, Any]) -> Any:
    """A plausible argument for Bland's ``input_schema.example`` (guides its extraction)."""
    examples = schema.get("examples")
    if isinstance(examples, list) and examples:
        return examples[0]
    if "default" in schema:
        return schema["default"]
    kind = schema.get("type")
    if kind == "integer":
        return schema.get("minimum", 1)
    if kind == "number":
        return schema.get("minimum", 1.0)
    if kind == "boolean":
        return True
    if kind == "array":
        return []
    if kind == "object":
        return {}
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return enum[0]
    return f"example {name.replace('_', ' ')}"


def tool_definitions(
    tools: dict[str, dict[str, Any]],
    base_url: str,
    agent_id: str,
    tool_token_placeholder: str = "<BLAND_TOOL_TOKEN>",
) -> list[dict[str, Any]]:
    """One Bland custom tool per Backline tool, posting to its own URL under this agent.

    The token stays a placeholder: exports are shown and copied, and the agent's real token is
    only ever set by the operator, in Bland.
    """
    definitions: list[dict[str, Any]] = []
    for name, spec in tools.items():
        if name.lower() in RESERVED_NAMES:
            raise InvalidInputError(
                f"tool name '{name}' is reserved by Bland; rename the tool "
                f"(reserved: {', '.join(sorted(RESERVED_NAMES))})"
            )
        parameters = copy.deepcopy(spec.get("parameters") or _EMPTY_PARAMETERS)
        properties = parameters.get("properties")
        if parameters.get("type") != "object" or not isinstance(properties, dict):
            raise InvalidInputError(
                f"tool '{name}' parameters must be a JSON Schema object with 'properties'"
            )
        clashing = sorted(set(properties) & set(ID_FIELDS))
        if clashing:
            raise InvalidInputError(
                f"tool '{name}' has parameters named {clashing}, which the Bland body uses for "
                "the call id and the caller; rename them"
            )
        body: dict[str, str] = {"call_id": "{{call_id}}", "caller": "{{phone_number}}"}
        body.update({param: f"{{{{input.{param}}}}}" for param in properties})
        example: dict[str, Any] = {"speech": FILLER_SPEECH}
        example.update(
            {
                param: _example_value(param, schema if isinstance(schema, dict) else {})
                for param, schema in properties.items()
            }
        )
        definitions.append(
            {
                "name": name,
                "description": str(spec.get("description") or ""),
                "url": tool_url(base_url, agent_id, name),
                "method": "POST",
                "headers": {
                    "Authorization": f"Bearer {tool_token_placeholder}",
                    "Content-Type": "application/json",
                },
                "body": body,
                "input_schema": {"example": example, **parameters},
                "speech": FILLER_SPEECH,
                # The route answers {"answer"} or {"error"}; mapping both lets the agent voice
                # a failure instead of an empty variable.
                "response": {f"{name}_answer": "$.answer", f"{name}_error": "$.error"},
            }
        )
    return definitions
