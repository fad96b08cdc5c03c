"""``backline audit``: list the audit trail and verify its hash chain.

An HTTP client of the API (``admin`` scope). Verification runs on the server, which recomputes
every link from the stored rows; this command only reports the verdict and exits nonzero when
the chain is broken.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from cli.http import call, print_json

app = typer.Typer(help="The audit trail: who did what, tamper-evident.", no_args_is_help=True)

OrgOpt = Annotated[
    str | None,
    typer.Option("--org-id", help="Organization (required with the admin token)"),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON")]
_RELATIVE = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_when(value: str | None, flag: str) -> datetime | None:
    """ISO 8601, or an age such as ``30m``, ``24h``, ``7d`` (that long ago)."""
    if value is None:
        return None
    m = _RELATIVE.match(value.strip())
    if m:
        ago = timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})
        return datetime.now(UTC) - ago
    try:
        when = datetime.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter(
            f"'{value}' is not a time: use ISO 8601 (2026-12-01T09:00:00Z) or an age like 24h, 7d",
            param_hint=flag,
        ) from exc
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _table(events: list[dict[str, Any]]) -> None:
    table = Table(title="Audit trail (newest first)")
    for column in ("#", "at", "actor", "action", "target", "detail"):
        table.add_column(column)
    for e in events:
        detail = ", ".join(f"{k}={v}" for k, v in e["detail"].items())
        table.add_row(
            str(e["seq"]), e["at"][:19], e["actor"], e["action"], e["target"], detail[:80]
        )
    Console().print(table)


@app.command("list")
def list_events(
    org_id: OrgOpt = None,
    agent_id: Annotated[
        str | None, typer.Option("--agent-id", help="Only events on this agent")
    ] = None,
    action: Annotated[
        str | None,
        typer.Option("--action", help="An action, or a family ending in * (prompt.label.*)"),
    ] = None,
    actor: Annotated[str | None, typer.Option("--actor", help="Only this actor")] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="At or after: ISO 8601 or an age (24h, 7d)")
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="Before: ISO 8601 or an age (24h, 7d)")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000, help="At most")] = 100,
    as_json: JsonOpt = False,
) -> None:
    """List audit events, newest first, filtered."""
    start, end = parse_when(since, "--since"), parse_when(until, "--until")
    if start is not None and end is not None and start >= end:
        raise typer.BadParameter("--since must be before --until", param_hint="--since")
    events = call(
        "GET",
        "/v1/audit",
        org_id=org_id,
        agent_id=agent_id,
        action=action,
        actor=actor,
        since=start.isoformat() if start else None,
        until=end.isoformat() if end else None,
        limit=limit,
    )
    if as_json:
        print_json(events)
    else:
        _table(events)


@app.command("verify")
def verify(org_id: OrgOpt = None, as_json: JsonOpt = False) -> None:
    """Recompute the organization's hash chain; exit 1 naming the first edited, deleted or
    reordered row."""
    report = call("GET", "/v1/audit/verify", org_id=org_id)
    if as_json:
        print_json(report)
    elif report["ok"]:
        typer.echo(
            f"audit chain of {report['org_id']} intact: {report['checked']} events, "
            f"head #{report['head_seq']} {report['head_hash']}"
        )
    else:
        bad = report["first_bad"]
        typer.echo(
            f"audit chain of {report['org_id']} BROKEN ({bad['problem']}) at #{bad['seq']}: "
            f"{bad['detail']}",
            err=True,
        )
    if not report["ok"]:
        raise typer.Exit(1)
