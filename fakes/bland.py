"""Bland: a tenant with a signing secret and a tool token through the real admin API, and Bland
payloads built from the recorded ones, sent the way Bland sends them (post-call signed over its
raw bytes; tools and dynamic data with the bearer tool token)."""

from __future__ import annotations

import copy
import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from connectors.bland.webhooks import SIGNATURE_HEADER, sign
from fakes.common import ADMIN, fixture, new_org_and_agent, raw

JSON = {"content-type": "application/json"}


@dataclass
class BlandTenant:
    org_id: str
    agent_id: str
    signing_secret: str | None
    tool_token: str | None

    def url(self, path: str) -> str:
        return f"/v1/webhooks/bland/{self.agent_id}/{path}"

    def post_call(
        self, http: httpx.Client, body: dict[str, Any] | bytes, *, signature: str | None = None
    ) -> httpx.Response:
        """POST like Bland: the exact bytes sent are the bytes signed with the secret."""
        content = body if isinstance(body, bytes) else raw(body)
        header = signature if signature is not None else sign(content, self.signing_secret or "")
        return http.post(
            self.url("post-call"), content=content, headers={SIGNATURE_HEADER: header, **JSON}
        )

    def _bearer(self, token: str | None) -> dict[str, str]:
        value = token if token is not None else self.tool_token
        return {"Authorization": f"Bearer {value}", **JSON} if value else dict(JSON)

    def dynamic_data(
        self, http: httpx.Client, body: dict[str, Any], *, token: str | None = None
    ) -> httpx.Response:
        return http.post(self.url("dynamic-data"), content=raw(body), headers=self._bearer(token))

    def tool(
        self,
        http: httpx.Client,
        name: str,
        body: dict[str, Any],
        *,
        token: str | None = None,
        authorization: bool = True,
    ) -> httpx.Response:
        headers = self._bearer(token) if authorization else dict(JSON)
        return http.post(self.url(f"tools/{name}"), content=raw(body), headers=headers)


def create_bland_tenant(
    http: httpx.Client, *, signing_secret: bool = True, tool_token: bool = True
) -> BlandTenant:
    org_id, agent_id = new_org_and_agent(http, "Bland")
    secrets = {
        "signing_secret": f"bland-sign-{uuid.uuid4().hex[:12]}" if signing_secret else None,
        "tool_token": f"bland-tool-{uuid.uuid4().hex[:12]}" if tool_token else None,
    }
    for kind, secret in secrets.items():
        if secret is None:
            continue
        r = http.put(
            f"/v1/agents/{agent_id}/credentials/bland",
            json={"kind": kind, "secret": secret},
            headers=ADMIN,
        )
        assert r.status_code == 200, r.text
    return BlandTenant(org_id, agent_id, secrets["signing_secret"], secrets["tool_token"])


def post_call(
    call_id: str, number: str, turns: list[tuple[str, str]], *, inbound: bool = True
) -> dict[str, Any]:
    """The fixture call object for ``call_id`` with ``number`` as the other party."""
    body = copy.deepcopy(fixture("bland_post_call_webhook.json"))
    ours = body["to"]
    body.update(
        {
            "call_id": call_id,
            "c_id": call_id,
            "inbound": inbound,
            "from": number if inbound else ours,
            "to": ours if inbound else number,
        }
    )
    body["variables"].update({"phone_number": number, "call_id": call_id})
    body["request_data"]["phone_number"] = number
    body["transcripts"] = [
        {
            "id": 900 + i,
            "created_at": f"2026-03-02T17:04:{14 + 5 * i:02d}+00:00",
            "text": text,
            "user": "assistant" if role == "agent" else "user",
            "c_id": call_id,
        }
        for i, (role, text) in enumerate(turns)
    ]
    body["concatenated_transcript"] = " \n ".join(
        f"{'assistant' if role == 'agent' else 'user'}: {text}" for role, text in turns
    )
    return body


def corrected_transcript(call_id: str, turns: list[tuple[str, str]]) -> dict[str, Any]:
    """Bland's delayed second POST in its bare form (per the cookbook's listener)."""
    return {
        "call_id": call_id,
        "corrected_transcript": {
            "segments": [
                {
                    "speaker": "assistant" if role == "agent" else "user",
                    "text": text,
                    "confidence": 0.97,
                    "start": 5.0 * i,
                }
                for i, (role, text) in enumerate(turns)
            ]
        },
        "citations": [],
    }


def dynamic_data(number: str, call_id: str | None = None) -> dict[str, Any]:
    body = copy.deepcopy(fixture("bland_dynamic_data_request_received.json"))
    body.update({"caller": number, "call_id": call_id or f"bland-{uuid.uuid4().hex[:8]}"})
    return body


def tool_request(number: str, query: str, call_id: str | None = None) -> dict[str, Any]:
    body = copy.deepcopy(fixture("bland_custom_tool_request_received.json"))
    body.update(
        {"caller": number, "query": query, "call_id": call_id or f"bland-{uuid.uuid4().hex[:8]}"}
    )
    return body
