"""Test helpers: tenants through the real admin API and VAPI payloads built from fixtures."""

from __future__ import annotations

import copy
import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

FIXTURES = Path(__file__).parent / "fixtures" / "platform"
ADMIN = {"Authorization": "Bearer test-admin-token"}


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return data


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
    suffix = uuid.uuid4().hex[:8]
    org_id, agent_id, token = f"org-{suffix}", f"agent-{suffix}", f"vapi-token-{suffix}"
    r = http.post("/v1/orgs", json={"id": org_id, "name": "Test org"}, headers=ADMIN)
    assert r.status_code == 201, r.text
    r = http.post(
        f"/v1/orgs/{org_id}/agents",
        json={"id": agent_id, "name": "Test agent", "vapi_assistant_id": assistant_id},
        headers=ADMIN,
    )
    assert r.status_code == 201, r.text
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


def raw(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


DANA_CALL_1 = [
    ("agent", "Hi, thanks for calling. How can I help?"),
    ("caller", "Hi, my name is Dana. My water heater is leaking in the garage."),
    ("agent", "I can book a plumber for Thursday morning. Your work order is 1042."),
    ("caller", "Great. I prefer email for the confirmation, please."),
    ("agent", "Done, the confirmation is on its way by email."),
]
DANA_CALL_2 = [
    ("agent", "Hi, thanks for calling. How can I help?"),
    ("caller", "Hi, this is Dana again, calling about order 1042."),
    ("agent", "The plumber replaced the valve. Is it still leaking?"),
    ("caller", "No, it's fixed. But please text me instead of email from now on."),
    ("agent", "Understood, I switched your updates to text messages."),
]


@dataclass
class DistinctiveCaller:
    """A caller whose number, name, appliance and order reference exist nowhere else, so a test
    can search storage for any trace of them."""

    number: str
    name: str
    appliance: str
    order: str

    @classmethod
    def new(cls) -> DistinctiveCaller:
        tag = uuid.uuid4().hex
        letters = "".join(chr(ord("a") + int(c, 16) % 26) for c in tag[:8])
        return cls(
            number=f"+1415555{int(tag[8:12], 16) % 10000:04d}",
            name=f"Q{letters}",
            appliance=f"zorbatron {letters[::-1]}",
            order=f"QX-{int(tag[12:17], 16) % 100000:05d}",
        )

    @property
    def turns(self) -> list[tuple[str, str]]:
        return [
            ("agent", "Hi, thanks for calling. How can I help?"),
            ("caller", f"Hi, my name is {self.name}. My {self.appliance} is rattling again."),
            ("agent", f"I can book a technician for Friday. Your work order is {self.order}."),
            ("caller", "Great. I prefer email for the confirmation, please."),
            ("agent", "Done, the confirmation is on its way by email."),
        ]

    def markers(self, secret_key: str) -> list[bytes]:
        """Lower-case byte strings that would identify the caller or repeat what they said."""
        from core.pii.phone import caller_hash

        digits = self.number.lstrip("+")
        return [
            m.lower().encode()
            for m in (
                self.number,
                digits,
                caller_hash(secret_key, self.number),
                self.name,
                self.appliance,
                self.order,
            )
        ]
