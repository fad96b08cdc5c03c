"""The agent as the hot path sees it: ids, name and decrypted platform credentials."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.calls.ports import PlatformCredential


@dataclass(frozen=True)
class AgentInfo:
    id: str
    org_id: str
    name: str
    vapi_assistant_id: str | None
    vapi_assistant: dict[str, Any] | None
    credentials: dict[str, list[PlatformCredential]]  # platform -> credentials
