"""What every platform's fakes share: the recorded payloads, the admin token the test and
benchmark stacks run with, and payloads as the exact bytes a platform sends."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

PAYLOADS = Path(__file__).parent / "payloads"
ADMIN = {"Authorization": "Bearer test-admin-token"}


def fixture(name: str) -> dict[str, Any]:
    """A recorded payload of ``payloads/`` by file name (a fresh copy each call)."""
    data: dict[str, Any] = json.loads((PAYLOADS / name).read_text())
    return data


def raw(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
