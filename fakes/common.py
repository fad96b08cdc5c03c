"""What every platform's fakes share: the recorded payloads, the admin token the test and
benchmark stacks run with, and payloads as the exact bytes a platform sends."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import httpx

PAYLOADS = Path(__file__).parent / "payloads"
ADMIN = {"Authorization": "Bearer test-admin-token"}


def fixture(name: str) -> dict[str, Any]:
    """A recorded payload of ``payloads/`` by file name (a fresh copy each call)."""
    data: dict[str, Any] = json.loads((PAYLOADS / name).read_text())
    return data


def new_org_and_agent(http: httpx.Client, label: str, **agent: Any) -> tuple[str, str]:
    """A new organization and agent through the admin API (``<label> org``, ``<label> agent``,
    with the agent fields ``agent``); their ids ``org-<suffix>`` and ``agent-<suffix>``."""
    suffix = uuid.uuid4().hex[:8]
    org_id, agent_id = f"org-{suffix}", f"agent-{suffix}"
    r = http.post("/v1/orgs", json={"id": org_id, "name": f"{label} org"}, headers=ADMIN)
    assert r.status_code == 201, r.text
    r = http.post(
        f"/v1/orgs/{org_id}/agents",
        json={"id": agent_id, "name": f"{label} agent", **agent},
        headers=ADMIN,
    )
    assert r.status_code == 201, r.text
    return org_id, agent_id


def raw(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
