"""A date of birth and a street address said on a call never reach memory or the next call's
assistant-request reply, unless the agent's PII policy keeps the address as a fact: VAPI edge
-> PostCallWorkflow -> memory -> assistant-request, on Postgres, the Temporal dev server and
the real embedder."""

from __future__ import annotations

import json
import uuid

import pytest
from sqlmodel import Session, select
from typer.testing import CliRunner

from cli.main import app as cli_app
from core.calls.models import Call
from core.memory.models import Fact, Memory
from tests.conftest import ADMIN_TOKEN, Stack, async_wait_for
from tests.helpers import ADMIN, Tenant, assistant_request, create_tenant, end_of_call, raw

pytestmark = [pytest.mark.postgres, pytest.mark.temporal]
CALLER = "+14155550142"
ADDRESS = "4127 Juniper Street"
CALL = [
    ("agent", "Thanks for calling Brightwater Plumbing. How can I help?"),
    (
        "caller",
        f"Hi, my name is Dana. My water heater at {ADDRESS} is leaking, and the account is"
        " under my date of birth, March fourth, nineteen eighty-two.",
    ),
    ("agent", "I can book a plumber for Thursday. What's your date of birth for the account?"),
    ("caller", "March fourth, nineteen eighty-two."),
    ("caller", "Or 03/04/1982 if you need digits. I prefer email for the confirmation."),
    ("agent", "Done, the plumber is booked for Thursday and the confirmation is on its way."),
]
# Anything that would reveal the birth date or the address, in any spelling the call used.
DOB_TRACES = ("1982", "eighty-two", "march fourth", "03/04")
ADDRESS_TRACES = ("juniper", "4127")


def _reply(http, tenant: Tenant) -> str:  # type: ignore[no-untyped-def]
    r = http.post(
        tenant.webhook, content=raw(assistant_request(CALLER)), headers=tenant.vapi_headers
    )
    assert r.status_code == 200, r.text
    text: str = r.text
    return text


async def _run_call(stack: Stack, http, tenant: Tenant) -> str:  # type: ignore[no-untyped-def]
    call_id = f"call-{uuid.uuid4().hex[:8]}"
    r = http.post(
        tenant.webhook, content=raw(end_of_call(call_id, CALLER, CALL)), headers=tenant.vapi_headers
    )
    assert r.status_code == 200, r.text
    await async_wait_for(
        lambda: (
            json.loads(_reply(http, tenant))["assistantOverrides"]["variableValues"][
                "backline_caller_known"
            ]
            == "yes"
        ),
        timeout=30,
    )
    return call_id


def _stored(stack: Stack, tenant: Tenant) -> tuple[str, list[Fact]]:
    """Everything memory and the call record hold for the tenant, as one lower-cased text."""
    with Session(stack.engine) as s:
        memories = s.exec(select(Memory).where(Memory.agent_id == tenant.agent_id)).all()
        facts = list(s.exec(select(Fact).where(Fact.agent_id == tenant.agent_id)).all())
        calls = s.exec(select(Call).where(Call.agent_id == tenant.agent_id)).all()
        text = json.dumps(
            {
                "memories": [m.text for m in memories],
                "facts": [[f.key, f.value] for f in facts],
                "calls": [[c.transcript, c.summary] for c in calls],
            }
        )
    return text.lower(), facts


async def test_birth_date_and_address_never_reach_memory_or_the_reply(stack: Stack) -> None:
    with stack.http() as http:
        tenant = create_tenant(http)
        agent = http.get(f"/v1/agents/{tenant.agent_id}", headers=ADMIN).json()
        assert agent["pii_policy"] == {"address": "redact"}
        await _run_call(stack, http, tenant)

        reply = _reply(http, tenant).lower()
        stored, facts = _stored(stack, tenant)
        # The call was remembered: the leak check below is not vacuous.
        assert "water heater" in reply
        assert "contact preference: email" in reply
        for trace in DOB_TRACES + ADDRESS_TRACES:
            assert trace not in reply, trace
            assert trace not in stored, trace
        assert "[address]" in stored
        assert "[dob]" in stored
        assert "address" not in {f.key for f in facts}


async def test_policy_that_keeps_addresses_stores_the_address_as_a_fact(stack: Stack) -> None:
    with stack.http() as http:
        tenant = create_tenant(http)
        r = http.patch(
            f"/v1/agents/{tenant.agent_id}",
            json={"pii_policy": {"address": "keep"}},
            headers=ADMIN,
        )
        assert r.status_code == 200, r.text
        assert r.json()["pii_policy"] == {"address": "keep"}
        await _run_call(stack, http, tenant)

        stored, facts = _stored(stack, tenant)
        assert {f.key: f.value for f in facts}["address"] == ADDRESS
        variables = json.loads(_reply(http, tenant))["assistantOverrides"]["variableValues"]
        assert f"address: {ADDRESS}" in variables["backline_caller_facts"]
        # Free text never keeps it: the summary shows the placeholder, not the address.
        assert "juniper" not in variables["backline_memory_summary"].lower()
        # The birth date is redacted whatever the policy says.
        for trace in DOB_TRACES:
            assert trace not in json.dumps(variables).lower(), trace
            assert trace not in stored, trace


async def test_pii_policy_is_set_at_creation_and_rejects_unknown_values(stack: Stack) -> None:
    with stack.http() as http:
        tenant = create_tenant(http)
        suffix = uuid.uuid4().hex[:8]
        r = http.post(
            f"/v1/orgs/{tenant.org_id}/agents",
            json={
                "id": f"agent-{suffix}",
                "name": "Home services",
                "pii_policy": {"address": "keep"},
            },
            headers=ADMIN,
        )
        assert r.status_code == 201, r.text
        assert r.json()["pii_policy"] == {"address": "keep"}
        for bad in ({"address": "maybe"}, {"dob": "keep"}):
            r = http.patch(f"/v1/agents/{tenant.agent_id}", json={"pii_policy": bad}, headers=ADMIN)
            assert r.status_code == 422, r.text
            assert set(r.json()) >= {"error", "detail"}
        r = http.patch("/v1/agents/no-such-agent", json={"name": "x"}, headers=ADMIN)
        assert r.status_code == 404, r.text
        assert http.get(f"/v1/agents/{tenant.agent_id}", headers=ADMIN).json()["pii_policy"] == {
            "address": "redact"
        }


async def test_cli_sets_the_policy_and_names_the_flag_values(stack: Stack) -> None:
    runner = CliRunner()
    env = {"BACKLINE_API_URL": stack.api.url, "BACKLINE_API_KEY": ADMIN_TOKEN}
    with stack.http() as http:
        tenant = create_tenant(http)
        out = runner.invoke(
            cli_app, ["agents", "set-pii-policy", tenant.agent_id, "--address", "keep"], env=env
        )
        assert out.exit_code == 0, out.output
        assert tenant.agent_id in out.output and "keep" in out.output
        out = runner.invoke(
            cli_app,
            ["agents", "set-pii-policy", tenant.agent_id, "--address", "redact", "--json"],
            env=env,
        )
        assert out.exit_code == 0, out.output
        assert json.loads(out.output)["pii_policy"] == {"address": "redact"}
        bad = runner.invoke(
            cli_app, ["agents", "set-pii-policy", tenant.agent_id, "--address", "maybe"], env=env
        )
        assert bad.exit_code != 0
        assert "--address" in bad.output
        suffix = uuid.uuid4().hex[:8]
        created = runner.invoke(
            cli_app,
            [
                "agents",
                "create",
                tenant.org_id,
                f"agent-{suffix}",
                "--name",
                "Home",
                "--address",
                "keep",
            ],
            env=env,
        )
        assert created.exit_code == 0, created.output
        assert json.loads(created.output)["pii_policy"] == {"address": "keep"}
