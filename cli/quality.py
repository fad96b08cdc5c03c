"""``backline quality``: an agent's call quality per prompt version, from the four-layer
scorecard, through the API."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from cli.http import call
from cli.output import print_rows


def _pct(value: Any) -> str:
    return "—" if value is None else f"{100 * float(value):.0f}%"


def _num(value: Any) -> str:
    return "—" if value is None else f"{float(value):.2f}"


def quality(
    agent_id: Annotated[str, typer.Argument(help="The agent")],
    period: Annotated[str, typer.Option(help="Hours or days back: 24h, 7d, 30d")] = "7d",
    version: Annotated[str | None, typer.Option(help="Only this prompt version, e.g. v3")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """An agent's call quality per prompt version over a period (the four-layer scorecard).

    Overall and per version: calls, mean score, the four layers' means, grounded share, words
    per agent turn, tool failure rate, containment."""
    found: dict[str, Any] = call(
        "GET", f"/v1/agents/{agent_id}/quality", period=period, version=version
    )
    rows = [{**found["overall"], "prompt_version": "all"}, *found["versions"]]
    print_rows(
        rows,
        [
            ("version", lambda g: g["prompt_version"] or "none"),
            ("calls", "calls"),
            ("score", lambda g: _num(g["mean_score"])),
            ("infra", lambda g: _num(g["layers"]["infrastructure"])),
            ("execution", lambda g: _num(g["layers"]["execution"])),
            ("reaction", lambda g: _num(g["layers"]["reaction"])),
            ("outcome", lambda g: _num(g["layers"]["outcome"])),
            ("grounded", lambda g: _pct(g["grounded_share"])),
            ("words/turn", lambda g: _num(g["words_per_agent_turn"])),
            ("tool fail", lambda g: _pct(g["tool_failure_rate"])),
            ("contained", lambda g: _pct(g["containment"])),
        ],
        title=f"Call quality of {agent_id}, last {found['period']}",
        as_json=as_json,
        ids=("version",),
        raw=found,
    )
