"""Retell: a tenant with a Retell API key through the real admin API, and Retell payloads built
from the recorded ones, signed over their raw bytes like Retell signs them."""

from __future__ import annotations

import copy
import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from connectors.retell.webhooks import SIGNATURE_HEADER, sign
from fakes.common import ADMIN, fixture, new_org_and_agent, raw


@dataclass
class RetellTenant:
    org_id: str
    agent_id: str
    api_key: str

    def url(self, path: str) -> str:
        return f"/v1/webhooks/retell/{self.agent_id}/{path}"

    def post(
        self,
        http: httpx.Client,
        path: str,
        body: dict[str, Any] | bytes,
        *,
        signature: str | None = None,
    ) -> httpx.Response:
        """POST like Retell: the exact bytes sent are the bytes signed with the API key."""
        content = body if isinstance(body, bytes) else raw(body)
        header = signature if signature is not None else sign(content, self.api_key)
        return http.post(
            self.url(path),
            content=content,
            headers={SIGNATURE_HEADER: header, "content-type": "application/json"},
        )


def create_org_and_agent(http: httpx.Client) -> tuple[str, str]:
    return new_org_and_agent(http, "Retell")


def create_retell_tenant(http: httpx.Client) -> RetellTenant:
    org_id, agent_id = create_org_and_agent(http)
    api_key = f"key_retell_{uuid.uuid4().hex[:12]}"
    r = http.put(
        f"/v1/agents/{agent_id}/credentials/retell",
        json={"kind": "api_key", "secret": api_key},
        headers=ADMIN,
    )
    assert r.status_code == 200, r.text
    return RetellTenant(org_id, agent_id, api_key)


def _with_call(name: str, call_id: str, number: str) -> dict[str, Any]:
    body = copy.deepcopy(fixture(name))
    body["call"]["call_id"] = call_id
    body["call"]["from_number"] = number
    return body


def call_inbound(number: str) -> dict[str, Any]:
    body = copy.deepcopy(fixture("retell_call_inbound.json"))
    body["call_inbound"]["from_number"] = number
    return body


def call_ended(call_id: str, number: str, turns: list[tuple[str, str]]) -> dict[str, Any]:
    body = _with_call("retell_call_ended.json", call_id, number)
    body["call"]["transcript_object"] = [
        {
            "role": "agent" if role == "agent" else "user",
            "content": text,
            "words": [{"word": text.split()[0], "start": i * 5.0, "end": i * 5.0 + 0.3}],
        }
        for i, (role, text) in enumerate(turns)
    ]
    body["call"]["transcript"] = "\n".join(
        f"{'Agent' if role == 'agent' else 'User'}: {text}" for role, text in turns
    )
    return body


def call_analyzed(call_id: str, number: str, turns: list[tuple[str, str]]) -> dict[str, Any]:
    body = call_ended(call_id, number, turns)
    body["event"] = "call_analyzed"
    body["call"]["call_analysis"] = copy.deepcopy(
        fixture("retell_call_analyzed.json")["call"]["call_analysis"]
    )
    return body


def function_call(call_id: str, number: str, name: str, args: dict[str, Any]) -> dict[str, Any]:
    body = _with_call("retell_custom_function.json", call_id, number)
    body["name"] = name
    body["args"] = args
    return body
