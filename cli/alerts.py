"""``backline alerts``: list, acknowledge and resolve an organization's alerts through the API.

Alerts resolve by themselves when their condition clears (a knowledge source fresh again or
deleted, a later rollout promoted); ``ack`` says a human is on one, ``resolve`` closes it.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from cli.http import call
from cli.output import print_rows, when

alerts_app = typer.Typer(help="Alerts: list, acknowledge, resolve.", no_args_is_help=True)

OrgOption = Annotated[
    str | None,
    typer.Option("--org-id", help="Organization (default: the org of --agent)"),
]
AgentOption = Annotated[str | None, typer.Option("--agent", help="Only this agent's alerts")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON")]


def _org(org_id: str | None, agent: str | None) -> str:
    if org_id:
        return org_id
    if agent:
        found: dict[str, Any] = call("GET", f"/v1/agents/{agent}")
        return str(found["org_id"])
    typer.echo("error: name the organization with --org-id <org> (or --agent <agent>)", err=True)
    raise typer.Exit(2)


def _show(alerts: list[dict[str, Any]], as_json: bool) -> None:
    print_rows(
        alerts,
        [
            ("id", "id"),
            ("state", "state"),
            ("severity", "severity"),
            ("kind", "kind"),
            ("agent", "agent_id"),
            ("raised", lambda a: when(a["created_at"])),
            ("message", "message"),
        ],
        title="Alerts",
        as_json=as_json,
        ids=("id",),
    )


@alerts_app.command("list")
def alerts_list(
    org_id: OrgOption = None,
    agent: AgentOption = None,
    kind: Annotated[str | None, typer.Option(help="e.g. knowledge_source_failing")] = None,
    state: Annotated[
        str | None, typer.Option(help="firing, acknowledged or resolved (default: all)")
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first")] = 50,
    as_json: JsonOption = False,
) -> None:
    """List alerts, newest first."""
    org = _org(org_id, agent)
    found = call(
        "GET", f"/v1/orgs/{org}/alerts", agent_id=agent, kind=kind, state=state, limit=limit
    )
    _show(found, as_json)


@alerts_app.command("ack")
def alerts_ack(
    alert_id: Annotated[int, typer.Argument(help="Alert id (see `backline alerts list`)")],
    org_id: OrgOption = None,
    agent: AgentOption = None,
    as_json: JsonOption = False,
) -> None:
    """Acknowledge an alert: you are on it (it stays open until resolved)."""
    org = _org(org_id, agent)
    _show([call("POST", f"/v1/orgs/{org}/alerts/{alert_id}/ack")], as_json)


@alerts_app.command("resolve")
def alerts_resolve(
    alert_id: Annotated[int, typer.Argument(help="Alert id (see `backline alerts list`)")],
    org_id: OrgOption = None,
    agent: AgentOption = None,
    note: Annotated[str | None, typer.Option(help="Why it is resolved")] = None,
    as_json: JsonOption = False,
) -> None:
    """Resolve an alert."""
    org = _org(org_id, agent)
    body = {"note": note} if note else None
    _show([call("POST", f"/v1/orgs/{org}/alerts/{alert_id}/resolve", body)], as_json)
