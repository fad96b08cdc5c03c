"""``backline retention``: an organization's retention windows (raw payloads, transcripts,
memories). An HTTP client of the API; changes need the ``admin`` scope and are audited."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from cli.http import call, print_json

app = typer.Typer(help="How long each organization keeps its data.", no_args_is_help=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON")]
RESET = ("default", "keep", "none")


def parse_days(value: str | None, flag: str) -> tuple[bool, int | None]:
    """(given, days): a number of days, or ``default``/``keep`` to reset the window."""
    if value is None:
        return False, None
    if value.strip().lower() in RESET:
        return True, None
    if value.isdigit():
        return True, int(value)
    raise typer.BadParameter(
        f"'{value}' is not a number of days: give e.g. 30, or 'default' to reset", param_hint=flag
    )


def _table(policy: dict[str, Any]) -> None:
    table = Table(title=f"Retention of {policy['org_id']}")
    table.add_column("data")
    table.add_column("kept for")
    raw = policy["raw_payload_days"]
    eff = policy["effective_raw_payload_days"]
    table.add_row("raw payloads", f"{eff} days" + (" (deployment default)" if raw is None else ""))
    for label, key in (("transcripts", "transcript_days"), ("memories", "memory_days")):
        days = policy[key]
        table.add_row(label, "forever" if days is None else f"{days} days")
    Console().print(table)


def _show(policy: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(policy)
    else:
        _table(policy)


@app.command("show")
def show(org_id: str, as_json: JsonOpt = False) -> None:
    """Show an organization's retention windows."""
    _show(call("GET", f"/v1/orgs/{org_id}/retention"), as_json)


@app.command("set")
def set_windows(
    org_id: str,
    raw_payload_days: Annotated[
        str | None,
        typer.Option("--raw-payload-days", help="Days, or 'default' for the deployment default"),
    ] = None,
    transcript_days: Annotated[
        str | None, typer.Option("--transcript-days", help="Days, or 'keep' to keep forever")
    ] = None,
    memory_days: Annotated[
        str | None, typer.Option("--memory-days", help="Days, or 'keep' to keep forever")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Change the windows given; the others keep their value. The hourly purge applies them."""
    body: dict[str, Any] = {}
    for key, value, flag in (
        ("raw_payload_days", raw_payload_days, "--raw-payload-days"),
        ("transcript_days", transcript_days, "--transcript-days"),
        ("memory_days", memory_days, "--memory-days"),
    ):
        given, days = parse_days(value, flag)
        if given:
            body[key] = days
    if not body:
        raise typer.BadParameter(
            "give at least one of --raw-payload-days, --transcript-days, --memory-days"
        )
    _show(call("PATCH", f"/v1/orgs/{org_id}/retention", body), as_json)
