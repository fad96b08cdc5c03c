"""The agent as the hot path sees it: ids, name, per-platform settings and decrypted platform
credentials."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.calls.ports import PlatformCredential


@dataclass(frozen=True)
class AgentInfo:
    id: str
    org_id: str
    name: str
    platform_settings: dict[str, dict[str, Any]]  # platform -> its settings document
    credentials: dict[str, list[PlatformCredential]]  # platform -> credentials
