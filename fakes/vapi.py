"""VAPI: a tenant with a bearer credential through the real admin API, and VAPI payloads built
from the recorded ones."""

from __future__ import annotations

import copy
import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from fakes.common import ADMIN, fixture, new_org_and_agent


@dataclass
class Tenant:
    org_id: str
    agent_id: str
    vapi_token: str

    @property
    def vapi_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.vapi_token}", "content-type": "application/json"}

    @property
    def webhook(self) -> str:
        return f"/v1/webhooks/vapi/{self.agent_id}"


def create_tenant(http: httpx.Client, assistant_id: str = "asst-123") -> Tenant:
    org_id, agent_id = new_org_and_agent(http, "Test", vapi_assistant_id=assistant_id)
    token = f"vapi-token-{agent_id.removeprefix('agent-')}"
    r = http.put(
        f"/v1/agents/{agent_id}/credentials/vapi",
        json={"kind": "bearer", "secret": token},
        headers=ADMIN,
    )
    assert r.status_code == 200, r.text
    return Tenant(org_id, agent_id, token)


def end_of_call(
    call_id: str,
    number: str,
    turns: list[tuple[str, str]],
    ended_at: str = "2026-03-02T17:07:10.000Z",
) -> dict[str, Any]:
    body = copy.deepcopy(fixture("vapi_end_of_call_report.json"))
    m = body["message"]
    m["call"]["id"] = call_id
    m["call"]["customer"]["number"] = number
    m["customer"]["number"] = number
    m["endedAt"] = ended_at
    m["call"]["endedAt"] = ended_at
    m["artifact"]["messages"] = [
        {"role": "bot" if role == "agent" else "user", "message": text, "secondsFromStart": i * 5.0}
        for i, (role, text) in enumerate(turns)
    ]
    m["artifact"]["transcript"] = "\n".join(
        f"{'AI' if role == 'agent' else 'User'}: {text}" for role, text in turns
    )
    return body


def assistant_request(number: str, call_id: str | None = None) -> dict[str, Any]:
    body = copy.deepcopy(fixture("vapi_assistant_request.json"))
    m = body["message"]
    m["call"]["id"] = call_id or f"call-{uuid.uuid4().hex[:8]}"
    m["call"]["customer"]["number"] = number
    m["customer"]["number"] = number
    return body


def tool_call(number: str, name: str, arguments: Any, call_id: str | None = None) -> dict[str, Any]:
    body = copy.deepcopy(fixture("vapi_tool_calls.json"))
    m = body["message"]
    m["call"]["id"] = call_id or f"call-{uuid.uuid4().hex[:8]}"
    m["call"]["customer"]["number"] = number
    m["customer"]["number"] = number
    m["toolCallList"][0]["function"] = {"name": name, "arguments": arguments}
    return body
