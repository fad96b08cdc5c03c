"""``backline alerts``: list, show, acknowledge and resolve an organization's alerts, and manage
where they are delivered (``channels``) and which of an agent's alerts notify (``rules``),
through the API.

Alerts resolve by themselves when their condition clears (a knowledge source fresh again or
deleted, a later rollout promoted); ``ack`` says a human is on one, ``resolve`` closes it.
Each state change notifies the organization's channels, as the agent's rules say (no rules:
every alert of severity warning or worse); see docs/alerts.md.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from cli.http import call, print_json
from cli.output import print_rows, when

alerts_app = typer.Typer(
    help="Alerts: list, show, acknowledge, resolve; delivery channels and rules.",
    no_args_is_help=True,
)
rules_app = typer.Typer(
    help="An agent's alert rules: which alerts notify the channels.", no_args_is_help=True
)
channels_app = typer.Typer(
    help="The organization's alert channels: signed webhooks and Slack incoming webhooks.",
    no_args_is_help=True,
)
alerts_app.add_typer(rules_app, name="rules")
alerts_app.add_typer(channels_app, name="channels")

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


@alerts_app.command("show")
def alerts_show(
    alert_id: Annotated[int, typer.Argument(help="Alert id (see `backline alerts list`)")],
    org_id: Annotated[
        str | None, typer.Option("--org-id", help="Organization (the operator must name one)")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Show an alert and its deliveries (per channel and state change: pending, sent, failed
    with its last error, or suppressed by the cool-down)."""
    found: dict[str, Any] = call("GET", f"/v1/alerts/{alert_id}", org_id=org_id)
    if as_json:
        print_json(found)
        return
    _show([found], False)
    print_rows(
        found["deliveries"],
        [
            ("id", "id"),
            ("channel", "channel_id"),
            ("rule", "rule_id"),
            ("event", "event"),
            ("status", "status"),
            ("attempts", "attempts"),
            ("http", "response_status"),
            ("sent", lambda d: when(d["sent_at"]) if d["sent_at"] else ""),
            ("last error", "last_error"),
        ],
        title="Deliveries",
        ids=("id",),
    )


# -- rules ------------------------------------------------------------------------------------

RuleAgent = Annotated[str, typer.Option("--agent", help="The agent whose rules these are")]


def _show_rules(rules: list[dict[str, Any]], as_json: bool) -> None:
    def _what(r: dict[str, Any]) -> str:
        if r["kind"] == "threshold":
            return f"{r['metric']} {r['op']} {r['value']} over {r['window_calls']} calls"
        kinds = ", ".join(r["alert_kinds"]) or "any kind"
        return f"{kinds} >= {r['min_severity']}"

    print_rows(
        rules,
        [
            ("id", "id"),
            ("name", "name"),
            ("kind", "kind"),
            ("matches", _what),
            ("cool-down", lambda r: f"{r['cooldown_minutes']} min"),
            ("channels", lambda r: ", ".join(map(str, r["channel_ids"])) or "all"),
            ("enabled", "enabled"),
        ],
        title="Alert rules",
        as_json=as_json,
        ids=("id",),
    )


@rules_app.command("list")
def rules_list(agent: RuleAgent, as_json: JsonOption = False) -> None:
    """List the agent's rules. None: every alert of severity warning or worse goes to every
    channel of the organization."""
    _show_rules(call("GET", f"/v1/agents/{agent}/alert-rules"), as_json)


@rules_app.command("add")
def rules_add(
    agent: RuleAgent,
    name: Annotated[str, typer.Option(help="A name people recognize")],
    kind: Annotated[
        str, typer.Option(help="single (matching alerts), trend (drift_* alarms), threshold")
    ] = "single",
    alert_kind: Annotated[
        list[str] | None,
        typer.Option(
            "--alert-kind", help="Alert kind to match (repeatable; 'drift_*' is a prefix)"
        ),
    ] = None,
    min_severity: Annotated[str, typer.Option(help="info, warning or critical")] = "warning",
    metric: Annotated[str | None, typer.Option(help="threshold: score_mean or score_min")] = None,
    op: Annotated[str | None, typer.Option(help="threshold: <, <=, > or >=")] = None,
    value: Annotated[float | None, typer.Option(help="threshold: the bound")] = None,
    window: Annotated[
        int | None, typer.Option(help="threshold: over the last N scored calls")
    ] = None,
    cooldown: Annotated[
        int, typer.Option(help="Minutes before the same subject notifies again")
    ] = 15,
    channel: Annotated[
        list[int] | None,
        typer.Option("--channel", help="Channel id (repeatable; default: every channel)"),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Add a rule to the agent."""
    body: dict[str, Any] = {
        "name": name,
        "kind": kind,
        "alert_kinds": alert_kind or [],
        "min_severity": min_severity,
        "cooldown_minutes": cooldown,
        "channel_ids": channel or [],
    }
    if kind == "threshold":
        body.update(metric=metric, op=op, value=value, window_calls=window)
    _show_rules([call("POST", f"/v1/agents/{agent}/alert-rules", body)], as_json)


@rules_app.command("rm")
def rules_rm(
    rule_id: Annotated[int, typer.Argument(help="Rule id (see `backline alerts rules list`)")],
    agent: RuleAgent,
) -> None:
    """Remove a rule."""
    call("DELETE", f"/v1/agents/{agent}/alert-rules/{rule_id}")
    typer.echo(f"removed alert rule {rule_id}")


# -- channels ---------------------------------------------------------------------------------

ChannelOrg = Annotated[
    str | None,
    typer.Option("--org-id", help="Organization (default: your key's; the operator must name one)"),
]


def _show_channels(channels: list[dict[str, Any]], as_json: bool) -> None:
    print_rows(
        channels,
        [
            ("id", "id"),
            ("name", "name"),
            ("kind", "kind"),
            ("host", "url_host"),
            ("signed", "signed"),
            ("enabled", "enabled"),
            ("created", lambda c: when(c["created_at"])),
        ],
        title="Alert channels",
        as_json=as_json,
        ids=("id",),
    )


@channels_app.command("list")
def channels_list(org_id: ChannelOrg = None, as_json: JsonOption = False) -> None:
    """List the organization's channels (the URL and secret are never shown)."""
    _show_channels(call("GET", "/v1/alert-channels", org_id=org_id), as_json)


@channels_app.command("add")
def channels_add(
    name: Annotated[str, typer.Option(help="A name people recognize")],
    url: Annotated[str, typer.Option(help="The http(s) URL to post to")],
    kind: Annotated[str, typer.Option(help="webhook (signed JSON) or slack")] = "webhook",
    secret: Annotated[
        str | None,
        typer.Option(help="webhook: the signing secret (default: generated and shown once)"),
    ] = None,
    org_id: ChannelOrg = None,
    as_json: JsonOption = False,
) -> None:
    """Add a channel; its URL must pass the egress policy (a public address, or one the
    operator admitted with BACKLINE_EGRESS_ALLOW)."""
    body: dict[str, Any] = {"name": name, "kind": kind, "url": url}
    if secret:
        body["secret"] = secret
    created: dict[str, Any] = call("POST", "/v1/alert-channels", body, org_id=org_id)
    _show_channels([created], as_json)
    if created.get("signing_secret") and not as_json:
        typer.echo(
            f"signing secret (shown once; verify Backline-Signature with it): "
            f"{created['signing_secret']}"
        )


@channels_app.command("rm")
def channels_rm(
    channel_id: Annotated[int, typer.Argument(help="Channel id")], org_id: ChannelOrg = None
) -> None:
    """Remove a channel."""
    call("DELETE", f"/v1/alert-channels/{channel_id}", org_id=org_id)
    typer.echo(f"removed alert channel {channel_id}")


@channels_app.command("test")
def channels_test(
    channel_id: Annotated[int, typer.Argument(help="Channel id")],
    org_id: ChannelOrg = None,
    as_json: JsonOption = False,
) -> None:
    """Send a test notification now and print what the receiver answered."""
    result: dict[str, Any] = call("POST", f"/v1/alert-channels/{channel_id}/test", org_id=org_id)
    if as_json:
        print_json(result)
        return
    if result["ok"]:
        typer.echo(f"delivered: HTTP {result['status_code']}")
    else:
        typer.echo(f"not delivered: {result['error']}", err=True)
        raise typer.Exit(1)
