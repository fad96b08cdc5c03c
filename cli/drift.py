"""``backline drift``: an agent's drift monitors per prompt version and metric, and
acknowledging an alarm, through the API. ``backline drift <agent>`` is ``backline drift show
<agent>``."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from typer._click.core import Command, Context
from typer.core import TyperGroup

from cli.http import call
from cli.output import print_rows, text

RATES = ("grounded", "tool_failed", "stale_hit")


class _DriftGroup(TyperGroup):
    """``backline drift <agent>``: a first word that is no sub-command is an agent to show."""

    def resolve_command(
        self, ctx: Context, args: list[str]
    ) -> tuple[str | None, Command | None, list[str]]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["show", *args]
        return super().resolve_command(ctx, args)


app = typer.Typer(
    cls=_DriftGroup,
    help="Drift monitors of an agent: `backline drift show <agent>`, `backline drift ack`.",
    no_args_is_help=True,
)


def _value(metric: str, v: Any) -> str:
    if v is None:
        return "—"
    return f"{100 * float(v):.1f}%" if metric in RATES else f"{float(v):.2f}"


def _detectors(m: dict[str, Any]) -> str:
    parts = []
    for d in m["detectors"]:
        if d["detector"] == "cusum":
            flag = " ALARM" if d["alarmed"] else ""
            parts.append(f"cusum {d['direction']} {d['statistic']:.1f}/{d['threshold']:.1f}{flag}")
        else:
            flag = " ALARM" if d["alarmed"] else ""
            parts.append(f"window {d['calls']}/{d['of']}{flag}")
    return "; ".join(parts) or "—"


@app.command("show")
def show(
    agent_id: Annotated[str, typer.Argument(help="The agent")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Per prompt version and metric: phase, baseline vs recent, detector statistic/threshold."""
    found: dict[str, Any] = call("GET", f"/v1/agents/{agent_id}/drift")
    rows = [
        {"prompt_version": v["prompt_version"], "calls_seen": v["calls_seen"], **m}
        for v in found["versions"]
        for m in v["metrics"]
    ]
    print_rows(
        rows,
        [
            ("version", "prompt_version"),
            ("metric", "metric"),
            ("phase", "phase"),
            ("reference", lambda r: text(int(r["reference_size"]))),
            ("baseline", lambda r: _value(r["metric"], r["baseline"])),
            ("recent", lambda r: _value(r["metric"], r["recent"])),
            ("detectors (statistic/threshold)", _detectors),
            ("latched", lambda r: text(r["alarm_latched"])),
        ],
        title=f"Drift monitors of {agent_id}",
        as_json=as_json,
        ids=("version", "metric"),
        raw=found,
    )


@app.command("ack")
def ack(
    agent_id: Annotated[str, typer.Argument(help="The agent")],
    version: Annotated[str, typer.Argument(help="Prompt version, e.g. v3")],
    metric: Annotated[str, typer.Argument(help="Metric, e.g. words_per_agent_turn")],
    rebaseline: Annotated[
        bool,
        typer.Option(help="Also re-learn the metric's baseline from the next calls"),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Acknowledge a drift alarm: zero its detectors and resolve its alert."""
    done: dict[str, Any] = call(
        "POST",
        f"/v1/agents/{agent_id}/drift/{version}/{metric}/acknowledge",
        {"rebaseline": rebaseline},
    )
    m = done["metric"]
    print_rows(
        [m],
        [
            ("metric", "metric"),
            ("phase", "phase"),
            ("baseline", lambda r: _value(r["metric"], r["baseline"])),
            ("detectors (statistic/threshold)", _detectors),
        ],
        title=f"{'Rebaselined' if rebaseline else 'Acknowledged'} {metric} on {version}",
        as_json=as_json,
        ids=("metric",),
        raw=done,
    )
