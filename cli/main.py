"""``backline``: run the stack, or manage Backline through its API.

Every command has ``--help``. API commands read ``BACKLINE_API_URL`` and ``BACKLINE_API_KEY``
(an org API key or the admin token).
"""

from __future__ import annotations

import asyncio
from enum import StrEnum
from typing import Annotated

import typer

from cli import ops
from cli.alerts import alerts_app
from cli.audit import app as audit_app
from cli.drift import app as drift_app
from cli.evals import app as eval_app
from cli.http import call, print_json
from cli.kb import app as kb_app
from cli.llm import app as llm_app
from cli.output import print_rows, text, when
from cli.prompts import app as prompts_app
from cli.quality import quality
from cli.retention import app as retention_app
from cli.tools import tools_app
from connectors.registry import CREDENTIAL_KINDS
from core.settings import Settings

app = typer.Typer(help="Backline: the backend behind voice AI agents.", no_args_is_help=True)
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON")]
orgs_app = typer.Typer(help="Organizations (operator token).", no_args_is_help=True)
keys_app = typer.Typer(help="API keys of an organization.", no_args_is_help=True)
agents_app = typer.Typer(help="Agents and their platform credentials.", no_args_is_help=True)
memory_app = typer.Typer(help="What Backline remembers about callers.", no_args_is_help=True)
calls_app = typer.Typer(help="Calls and their traces.", no_args_is_help=True)
app.add_typer(orgs_app, name="orgs")
app.add_typer(keys_app, name="keys")
app.add_typer(agents_app, name="agents")
app.add_typer(memory_app, name="memory")
app.add_typer(calls_app, name="calls")
app.add_typer(prompts_app, name="prompts")
app.add_typer(tools_app, name="tools")
app.add_typer(kb_app, name="kb")
app.add_typer(audit_app, name="audit")
app.add_typer(retention_app, name="retention")
app.add_typer(alerts_app, name="alerts")
app.add_typer(drift_app, name="drift")
app.command("quality")(quality)
app.add_typer(eval_app, name="eval")
app.add_typer(llm_app, name="llm")


@app.command()
def up() -> None:
    """Start the embedded stack: Temporal dev server, worker, API, dashboard, demo data."""
    from cli.supervisor import run_stack

    raise typer.Exit(run_stack(Settings()))


@app.command()
def worker() -> None:
    """Run a Temporal worker for Backline's workflows and activities."""
    from cli.worker import run_worker

    asyncio.run(run_worker(Settings()))


@app.command()
def migrate() -> None:
    """Apply database migrations (SQLite file by default, or BACKLINE_DATABASE_URL)."""
    settings = Settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    ops.migrate(settings.resolved_database_url)
    typer.echo("database is at the latest revision")


@orgs_app.command("create")
def orgs_create(org_id: str, name: Annotated[str, typer.Option(help="Display name")]) -> None:
    """Create an organization."""
    print_json(call("POST", "/v1/orgs", {"id": org_id, "name": name}))


@orgs_app.command("list")
def orgs_list() -> None:
    """List organizations."""
    print_json(call("GET", "/v1/orgs"))


@keys_app.command("create")
def keys_create(
    org_id: str,
    name: Annotated[str, typer.Option(help="What the key is for")],
    scope: Annotated[list[str], typer.Option(help="admin, content, release or viewer")],
) -> None:
    """Create an API key; the token is printed once."""
    print_json(call("POST", f"/v1/orgs/{org_id}/keys", {"name": name, "scopes": scope}))


@keys_app.command("list")
def keys_list(org_id: str, as_json: JsonOption = False) -> None:
    """List an organization's API keys (never their tokens)."""
    print_rows(
        call("GET", f"/v1/orgs/{org_id}/keys"),
        [
            ("id", "id"),
            ("name", "name"),
            ("scopes", lambda k: ", ".join(k["scopes"])),
            ("created", lambda k: when(k["created_at"])),
            ("revoked", lambda k: when(k["revoked_at"]) if k["revoked_at"] else "active"),
        ],
        title=f"API keys of {org_id}",
        as_json=as_json,
        ids=("id",),
    )


@keys_app.command("revoke")
def keys_revoke(
    org_id: str,
    key_id: Annotated[str, typer.Argument(help="Key id (see `backline keys list`)")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation")] = False,
    as_json: JsonOption = False,
) -> None:
    """Revoke an API key: requests with its token are refused from now on."""
    if not yes:
        typer.confirm(f"Revoke key {key_id} of {org_id}?", abort=True)
    print_rows(
        [call("DELETE", f"/v1/orgs/{org_id}/keys/{key_id}")],
        [("id", "id"), ("name", "name"), ("revoked", lambda k: when(k["revoked_at"]))],
        title="Revoked",
        as_json=as_json,
        ids=("id",),
    )


class AddressRule(StrEnum):
    redact = "redact"
    keep = "keep"


AddressOption = Annotated[
    AddressRule,
    typer.Option(
        "--address",
        help="Street addresses in calls: redact (default) or keep as the caller's address fact",
    ),
]


@agents_app.command("create")
def agents_create(
    org_id: str,
    agent_id: str,
    name: Annotated[str, typer.Option(help="Display name")],
    vapi_assistant_id: Annotated[str | None, typer.Option(help="VAPI assistant id")] = None,
    address: AddressOption = AddressRule.redact,
) -> None:
    """Create an agent in an organization."""
    body = {
        "id": agent_id,
        "name": name,
        "platform_settings": {"vapi": {"assistant_id": vapi_assistant_id}}
        if vapi_assistant_id
        else {},
        "pii_policy": {"address": address.value},
    }
    print_json(call("POST", f"/v1/orgs/{org_id}/agents", body))


@agents_app.command("set-pii-policy")
def agents_set_pii_policy(
    agent_id: str,
    address: AddressOption,
    as_json: Annotated[bool, typer.Option("--json", help="Print the agent as JSON")] = False,
) -> None:
    """Set what an agent's calls may keep. Dates of birth, cards, national ids, bank accounts
    and e-mails are always redacted; only street addresses can be kept."""
    agent = call("PATCH", f"/v1/agents/{agent_id}", {"pii_policy": {"address": address.value}})
    if as_json:
        print_json(agent)
        return
    typer.echo(f"{'agent':<24} address")
    typer.echo(f"{agent['id']:<24} {agent['pii_policy']['address']}")


KIND_HELP = ", ".join(f"{'|'.join(k)} ({p})" for p, k in CREDENTIAL_KINDS.items())


@agents_app.command("set-credential")
def agents_set_credential(
    agent_id: str,
    platform: Annotated[str, typer.Argument(help=", ".join(sorted(CREDENTIAL_KINDS)))],
    kind: Annotated[str, typer.Option(help=KIND_HELP)],
    secret: Annotated[str, typer.Option(prompt=True, hide_input=True, help="The secret value")],
) -> None:
    """Set an agent's platform credential (stored encrypted)."""
    print_json(
        call(
            "PUT", f"/v1/agents/{agent_id}/credentials/{platform}", {"kind": kind, "secret": secret}
        )
    )


@memory_app.command("show")
def memory_show(
    agent_id: str,
    number: Annotated[str, typer.Option(help="The caller's phone number, e.g. +14155550100")],
    as_json: JsonOption = False,
) -> None:
    """Show a caller's memory timeline (summaries and facts, past and current)."""
    handle = call("POST", f"/v1/agents/{agent_id}/callers/lookup", {"number": number})
    timeline = call("GET", f"/v1/agents/{agent_id}/callers/{handle['caller_hash']}/memory")
    if as_json:
        print_json(timeline)
        return
    ctx = timeline["context"]
    typer.echo(
        f"caller {timeline['caller_display'] or handle['display']} on {agent_id}: "
        + (
            f"{ctx['call_count']} calls, last {when(ctx['last_call_at'])}"
            if ctx["known"]
            else "not known (no memory yet)"
        )
    )
    print_rows(
        timeline["summaries"],
        [
            ("created", lambda r: when(r["created_at"])),
            ("call", "source_call_id"),
            ("method", "method"),
            ("summary", "text"),
        ],
        title="Call summaries",
    )
    print_rows(
        timeline["facts"],
        [
            ("fact", "key"),
            ("value", "value"),
            ("since", lambda r: when(r["valid_from"])),
            ("until", lambda r: when(r["valid_to"]) if r["valid_to"] else "current"),
            ("call", "source_call_id"),
        ],
        title="Facts",
    )


@memory_app.command("forget")
def memory_forget(
    agent_id: str,
    number: Annotated[str, typer.Option(help="The caller's phone number")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation")] = False,
) -> None:
    """Erase everything Backline holds about a caller."""
    handle = call("POST", f"/v1/agents/{agent_id}/callers/lookup", {"number": number})
    if not yes:
        typer.confirm(f"Forget caller {handle['display']} on agent {agent_id}?", abort=True)
    print_json(call("DELETE", f"/v1/agents/{agent_id}/callers/{handle['caller_hash']}"))


@calls_app.command("list")
def calls_list(
    agent_id: Annotated[
        str | None, typer.Option("--agent-id", "--agent", help="Only this agent")
    ] = None,
    org_id: Annotated[
        str | None, typer.Option("--org-id", help="Organization (needed with the operator token)")
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first (1-500)")] = 20,
    as_json: JsonOption = False,
) -> None:
    """List recent calls (status: in_progress, ended, processed or abandoned)."""
    calls = call("GET", "/v1/calls", agent_id=agent_id, org_id=org_id, limit=limit)
    print_rows(
        calls,
        [
            ("call id", "platform_call_id"),
            ("agent", "agent_id"),
            ("platform", "platform"),
            ("started", lambda c: when(c["started_at"])),
            ("caller", "caller_display"),
            ("status", "status"),
            ("ended reason", "ended_reason"),
        ],
        title="Calls",
        as_json=as_json,
        ids=("call id",),
    )


@calls_app.command("show")
def calls_show(
    call_id: Annotated[str, typer.Argument(help="The platform's call id (see `calls list`)")],
    agent_id: Annotated[str, typer.Option("--agent-id", "--agent", help="The call's agent")],
    platform: Annotated[
        str | None, typer.Option(help="vapi, retell or bland (default: found among recent calls)")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Show one call: status, summary, score, transcript and its events in order."""
    if platform is None:
        org_id = call("GET", f"/v1/agents/{agent_id}")["org_id"]
        recent = call("GET", "/v1/calls", agent_id=agent_id, org_id=org_id, limit=500)
        found = [c["platform"] for c in recent if c["platform_call_id"] == call_id]
        if not found:
            typer.echo(
                f"error: no recent call '{call_id}' for agent '{agent_id}'; give --platform "
                "(vapi, retell or bland) to look it up directly",
                err=True,
            )
            raise typer.Exit(1)
        platform = found[0]
    detail = call("GET", f"/v1/calls/{agent_id}/{platform}/{call_id}")
    if as_json:
        print_json(detail)
        return
    typer.echo(
        f"{platform} call {call_id} · {detail['status']} · started {when(detail['started_at'])}"
        f" · ended {when(detail['ended_at'])} ({detail['ended_reason'] or '—'}) · caller "
        f"{detail['caller_display'] or '—'} · score {text(detail['score'])}"
    )
    if detail["summary"]:
        typer.echo(f"summary: {detail['summary']}")
    print_rows(
        detail["transcript"],
        [("role", "role"), ("said", "text")],
        title="Transcript",
    )
    print_rows(
        detail["events"],
        [
            ("at", lambda e: when(e["at"])),
            ("event", "type"),
            ("platform event", "platform_type"),
        ],
        title="Events",
    )


if __name__ == "__main__":
    app()
