"""A deliberately broken MCP server over stdio, speaking JSON-RPC by hand (no SDK), so it can
send what the official SDK would never let a server send.

It answers ``server/discover`` with "method not found" (so clients fall back to the
``initialize`` handshake), lists three tools, and answers ``tools/call`` with:

- ``garbage``: a result that is not a ``CallToolResult`` (``content`` is a string);
- ``crash``: a JSON-RPC internal error, as the SDK reports a handler's invalid result;
- ``fine``: a valid text result, to show the session itself still works.

Run: ``python tests/fakes/mcp_faulty_server.py`` (stdio). It never logs to stdout, which carries
the protocol.
"""

from __future__ import annotations

import json
import sys
from typing import Any

TOOLS = [
    {"name": name, "description": f"{name} tool", "inputSchema": {"type": "object"}}
    for name in ("garbage", "crash", "fine")
]


def reply(message_id: Any, result: Any = None, error: dict[str, Any] | None = None) -> None:
    body: dict[str, Any] = {"jsonrpc": "2.0", "id": message_id}
    if error is not None:
        body["error"] = error
    else:
        body["result"] = result
    sys.stdout.write(json.dumps(body) + "\n")
    sys.stdout.flush()


def handle(message: dict[str, Any]) -> None:
    method = message.get("method")
    message_id = message.get("id")
    if message_id is None:
        return  # notifications need no answer
    if method == "initialize":
        version = (message.get("params") or {}).get("protocolVersion", "2025-11-25")
        reply(
            message_id,
            {
                "protocolVersion": version,
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "faulty", "version": "0.0.1"},
            },
        )
    elif method == "tools/list":
        reply(message_id, {"tools": TOOLS})
    elif method == "tools/call":
        name = (message.get("params") or {}).get("name")
        if name == "garbage":
            reply(message_id, {"content": "this is not a list of content blocks", "isError": 7})
        elif name == "crash":
            reply(message_id, error={"code": -32603, "message": "Handler returned garbage"})
        else:
            reply(message_id, {"content": [{"type": "text", "text": "fine"}], "isError": False})
    elif method == "ping":
        reply(message_id, {})
    else:
        reply(message_id, error={"code": -32601, "message": f"Method not found: {method}"})


def main() -> None:
    for line in sys.stdin:
        line = line.strip()
        if line:
            handle(json.loads(line))


if __name__ == "__main__":
    main()
