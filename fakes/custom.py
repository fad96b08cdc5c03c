"""The custom platform: a tenant with a signing secret through the real admin API, and messages
of Backline's own contract (version "1"), signed over their raw bytes the way a team's voice
stack signs them (``Backline-Signature: t=<unix seconds>,v1=<hex>``)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from connectors.custom.webhooks import SIGNATURE_HEADER, VERSION, signature_header
from fakes.common import ADMIN, new_org_and_agent, raw

JSON = {"content-type": "application/json"}


def sign(body: bytes, *secrets: str, timestamp: int | None = None) -> dict[str, str]:
    """The headers that sign ``body`` with each of ``secrets`` (one ``v1`` per secret)."""
    return {SIGNATURE_HEADER: signature_header(body, secrets, timestamp), **JSON}


@dataclass
class CustomTenant:
    org_id: str
    agent_id: str
    secret: str

    @property
    def webhook(self) -> str:
        return f"/v1/webhooks/custom/{self.agent_id}"

    def post(
        self,
        http: httpx.Client,
        body: dict[str, Any] | bytes,
        *,
        secrets: tuple[str, ...] | None = None,
        timestamp: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """POST a message: the exact bytes sent are the bytes signed (with the tenant's secret
        unless ``secrets`` names others); ``headers`` replaces the signed headers outright."""
        content = body if isinstance(body, bytes) else raw(body)
        sent = (
            headers
            if headers is not None
            else sign(content, *(secrets or (self.secret,)), timestamp=timestamp)
        )
        return http.post(self.webhook, content=content, headers=sent)


def set_secret(http: httpx.Client, agent_id: str, secret: str) -> None:
    r = http.put(
        f"/v1/agents/{agent_id}/credentials/custom",
        json={"kind": "signing_secret", "secret": secret},
        headers=ADMIN,
    )
    assert r.status_code == 200, r.text


def create_custom_tenant(http: httpx.Client) -> CustomTenant:
    org_id, agent_id = new_org_and_agent(http, "Custom")
    secret = f"custom-sign-{uuid.uuid4().hex[:16]}"
    set_secret(http, agent_id, secret)
    return CustomTenant(org_id, agent_id, secret)


def _iso(t: datetime | str | float | None) -> str | float | None:
    """A time as the contract carries it: ISO 8601 (``Z``), or unix seconds left as they are."""
    if not isinstance(t, datetime):
        return t
    return t.isoformat().replace("+00:00", "Z")


def _call(
    call_id: str, number: str | None, direction: str = "inbound", **extra: Any
) -> dict[str, Any]:
    call: dict[str, Any] = {"id": call_id, "direction": direction}
    if number is not None:
        call["caller_number"] = number
    call.update({k: v for k, v in extra.items() if v is not None})
    return call


def message(kind: str, call_id: str, number: str | None, **fields: Any) -> dict[str, Any]:
    """Any message of the contract: the envelope plus ``fields``."""
    return {"version": VERSION, "type": kind, "call": _call(call_id, number), **fields}


def call_started(
    number: str | None,
    call_id: str | None = None,
    *,
    variables: dict[str, str] | None = None,
    direction: str = "inbound",
) -> dict[str, Any]:
    return {
        "version": VERSION,
        "type": "call.started",
        "call": _call(
            call_id or f"call-{uuid.uuid4().hex[:8]}", number, direction, variables=variables
        ),
    }


def tool_calls(
    number: str | None, calls: list[tuple[str, str, Any]], call_id: str | None = None
) -> dict[str, Any]:
    """``calls``: ``(id, name, arguments)`` triples."""
    return message(
        "tool.calls",
        call_id or f"call-{uuid.uuid4().hex[:8]}",
        number,
        tool_calls=[{"id": i, "name": n, "arguments": a} for i, n, a in calls],
    )


def knowledge_request(
    number: str | None,
    *,
    query: str | None = None,
    turns: list[tuple[str, str]] | None = None,
    call_id: str | None = None,
) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if query is not None:
        fields["query"] = query
    if turns is not None:
        fields["turns"] = [{"role": r, "text": t} for r, t in turns]
    return message("knowledge.request", call_id or f"call-{uuid.uuid4().hex[:8]}", number, **fields)


def transcript_update(
    call_id: str, number: str | None, role: str, text: str, *, final: bool = True
) -> dict[str, Any]:
    return message(
        "transcript.update", call_id, number, turn={"role": role, "text": text, "final": final}
    )


def call_ended(
    call_id: str,
    number: str | None,
    turns: list[tuple[str, str]],
    *,
    started_at: datetime | str | float | None = "2026-03-02T17:04:10Z",
    ended_at: datetime | str | float | None = "2026-03-02T17:07:10Z",
    end_reason: str | None = "caller_hangup",
    seconds_apart: float | None = 5.0,
    direction: str = "inbound",
) -> dict[str, Any]:
    """A ``call.ended`` message; turn ``i`` is ``at`` ``i * seconds_apart`` seconds from the
    start (no ``at`` when ``seconds_apart`` is None)."""
    transcript: list[dict[str, Any]] = []
    for i, (role, text) in enumerate(turns):
        turn: dict[str, Any] = {"role": role, "text": text}
        if seconds_apart is not None:
            turn["at"] = i * seconds_apart
        transcript.append(turn)
    body: dict[str, Any] = {
        "version": VERSION,
        "type": "call.ended",
        "call": _call(
            call_id, number, direction, started_at=_iso(started_at), ended_at=_iso(ended_at)
        ),
        "transcript": transcript,
    }
    if end_reason is not None:
        body["end_reason"] = end_reason
    return body
