"""Which connector exports tool definitions for which platform."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from connectors.bland.tools import tool_definitions as bland_tools
from connectors.retell.tools import tool_definitions as retell_tools
from connectors.vapi.tools import tool_definitions as vapi_tools

Exporter = Callable[[dict[str, dict[str, Any]], str, str], list[dict[str, Any]]]

EXPORTERS: dict[str, Exporter] = {"vapi": vapi_tools, "retell": retell_tools, "bland": bland_tools}
