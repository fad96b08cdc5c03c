"""Backline tools as VAPI function tools (``CreateFunctionToolDto``), pointing at the agent's
server URL so tool calls arrive on the same authenticated webhook."""

from __future__ import annotations

from typing import Any

# Well inside VAPI's own 20 s default so the caller hears our fallback, not dead air.
TOOL_TIMEOUT_S = 15


def tool_definitions(
    tools: dict[str, dict[str, Any]], base_url: str, agent_id: str
) -> list[dict[str, Any]]:
    url = f"{base_url.rstrip('/')}/v1/webhooks/vapi/{agent_id}"
    return [
        {
            "type": "function",
            "async": False,
            "function": {
                "name": name,
                "description": spec["description"],
                "parameters": spec["parameters"],
            },
            "server": {"url": url, "timeoutSeconds": TOOL_TIMEOUT_S},
            "messages": [{"type": "request-start", "content": "One moment."}],
        }
        for name, spec in tools.items()
    ]
