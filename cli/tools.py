"""``backline tools``: MCP servers, the tools agents may call, test calls and gateway status.

An HTTP client of the API like every other command (so scopes and the audit's "who" apply).
Secret values (headers, bearer token, stdio environment) can be read from the environment with
``@VAR`` instead of being typed on the command line, where shell history would keep them; they
are sent once, stored encrypted, and never printed.
"""

from __future__ import annotations

import json
import os
import shlex
from typing import Annotated, Any

import typer

from cli.http import call as _call
from cli.http import print_json as _print
from cli.output import print_rows

tools_app = typer.Typer(
    help="Tools through the MCP gateway: servers, enabled tools, calls, status.",
    no_args_is_help=True,
)
servers_app = typer.Typer(help="MCP servers registered for an organization.", no_args_is_help=True)
tools_app.add_typer(servers_app, name="servers")


def _secret(value: str, what: str) -> str:
    """``@VAR`` reads the value from the environment."""
    if value.startswith("@"):
        found = os.environ.get(value[1:])
        if found is None:
            typer.echo(f"error: {what} refers to ${value[1:]}, which is not set", err=True)
            raise typer.Exit(2)
        return found
    return value


def _pairs(values: list[str] | None, what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in values or []:
        name, sep, value = item.partition("=")
        if not sep or not name:
            typer.echo(f"error: {what} must look like NAME=VALUE (or NAME=@ENV_VAR)", err=True)
            raise typer.Exit(2)
        out[name.strip()] = _secret(value, f"{what} {name}")
    return out


@servers_app.command("add")
def servers_add(
    org_id: str,
    name: Annotated[str, typer.Argument(help="Server name (slug), unique in the organization")],
    command: Annotated[
        str | None, typer.Option(help="stdio: the command line to run (operator token only)")
    ] = None,
    url: Annotated[str | None, typer.Option(help="http: the streamable-HTTP endpoint")] = None,
    prefix: Annotated[
        str | None, typer.Option(help="Expose tools as '<prefix>_<tool>' (avoids name clashes)")
    ] = None,
    display_name: Annotated[
        str | None, typer.Option(help="Spoken in fallbacks, e.g. 'our booking system'")
    ] = None,
    header: Annotated[
        list[str] | None, typer.Option(help="http: secret header NAME=VALUE or NAME=@ENV_VAR")
    ] = None,
    bearer_token: Annotated[
        str | None, typer.Option(help="http: bearer token, or @ENV_VAR to read it")
    ] = None,
    env: Annotated[
        list[str] | None, typer.Option(help="stdio: secret environment NAME=VALUE or NAME=@VAR")
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds a tool may take")] = 5.0,
    retries: Annotated[int, typer.Option(help="Retries of idempotent tools")] = 2,
    rate_limit: Annotated[int, typer.Option(help="Calls per minute per tool")] = 1800,
    breaker_failures: Annotated[
        int, typer.Option(help="Consecutive failures that open the breaker")
    ] = 5,
    breaker_cooldown: Annotated[
        float, typer.Option(help="Seconds the breaker stays open before a probe")
    ] = 15.0,
    fallback: Annotated[
        str | None, typer.Option(help="What the caller hears when the server is down")
    ] = None,
) -> None:
    """Register an MCP server (stdio command or streamable-HTTP URL) and discover its tools."""
    if (command is None) == (url is None):
        typer.echo("error: give exactly one of --command (stdio) or --url (http)", err=True)
        raise typer.Exit(2)
    body: dict[str, Any] = {
        "name": name,
        "transport": "stdio" if command else "http",
        "command": shlex.split(command) if command else None,
        "url": url,
        "prefix": prefix,
        "display_name": display_name,
        "headers": _pairs(header, "--header"),
        "bearer_token": _secret(bearer_token, "--bearer-token") if bearer_token else None,
        "env": _pairs(env, "--env"),
        "timeout_s": timeout,
        "max_retries": retries,
        "rate_limit_per_minute": rate_limit,
        "breaker_failures": breaker_failures,
        "breaker_cooldown_s": breaker_cooldown,
        "fallback_message": fallback,
    }
    _print(_call("POST", f"/v1/orgs/{org_id}/tools/servers", body))


@servers_app.command("list")
def servers_list(org_id: str) -> None:
    """List the organization's MCP servers (secret names only, never values)."""
    _print(_call("GET", f"/v1/orgs/{org_id}/tools/servers"))


@servers_app.command("refresh")
def servers_refresh(org_id: str, name: str) -> None:
    """Re-read a server's tool list now (it is also re-read on a schedule)."""
    _print(_call("POST", f"/v1/orgs/{org_id}/tools/servers/{name}/refresh"))


@servers_app.command("remove")
def servers_remove(org_id: str, name: str) -> None:
    """Remove a server and disable its tools on every agent."""
    _print(_call("DELETE", f"/v1/orgs/{org_id}/tools/servers/{name}"))


@tools_app.command("list")
def tools_list(
    org_id: str,
    agent: Annotated[
        str | None, typer.Option(help="Also show which tools this agent has enabled")
    ] = None,
) -> None:
    """List the tools the organization's servers offer, under their exposed names."""
    _print(_call("GET", f"/v1/orgs/{org_id}/tools", agent_id=agent))


@tools_app.command("enabled")
def tools_enabled(agent_id: str) -> None:
    """List the tools enabled on an agent, with their effective settings."""
    _print(_call("GET", f"/v1/agents/{agent_id}/tools"))


@tools_app.command("enable")
def tools_enable(
    agent_id: str,
    tool: Annotated[str, typer.Argument(help="Exposed name, or <server>/<tool>")],
    idempotent: Annotated[
        bool | None,
        typer.Option(
            "--idempotent/--side-effecting",
            help="Override the server's hints (retries and deduplication follow it)",
        ),
    ] = None,
    timeout: Annotated[float | None, typer.Option(help="Seconds this tool may take")] = None,
    rate_limit: Annotated[int | None, typer.Option(help="Calls per minute")] = None,
    fallback: Annotated[
        str | None, typer.Option(help="What the caller hears when it cannot run")
    ] = None,
) -> None:
    """Enable a tool on an agent (again, to change its overrides)."""
    body = {
        "idempotent": idempotent,
        "timeout_s": timeout,
        "rate_limit_per_minute": rate_limit,
        "fallback_message": fallback,
    }
    _print(_call("PUT", f"/v1/agents/{agent_id}/tools/{tool}", body))


@tools_app.command("disable")
def tools_disable(
    agent_id: str,
    tool: Annotated[str, typer.Argument(help="Exposed name, or <server>/<tool>")],
) -> None:
    """Disable a tool on an agent."""
    _print(_call("DELETE", f"/v1/agents/{agent_id}/tools/{tool}"))


@tools_app.command("call")
def tools_call(
    agent_id: str,
    tool: Annotated[str, typer.Argument(help="The tool's exposed name")],
    args: Annotated[str, typer.Option("--args", help="Arguments as a JSON object")] = "{}",
    call_id: Annotated[
        str | None, typer.Option(help="Trace under this call id (with --tool-call-id: once)")
    ] = None,
    tool_call_id: Annotated[str | None, typer.Option(help="Idempotency id of this call")] = None,
) -> None:
    """Call a tool through the gateway exactly as a live call would, and show the outcome."""
    try:
        arguments = json.loads(args)
    except json.JSONDecodeError as exc:
        typer.echo(f"error: --args is not JSON: {exc}", err=True)
        raise typer.Exit(2) from exc
    if not isinstance(arguments, dict):
        typer.echo("error: --args must be a JSON object", err=True)
        raise typer.Exit(2)
    body = {"arguments": arguments, "call_id": call_id, "tool_call_id": tool_call_id}
    _print(_call("POST", f"/v1/agents/{agent_id}/tools/{tool}/call", body))


@tools_app.command("status")
def tools_status(
    org_id: str, as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False
) -> None:
    """Gateway status: per server its connection, breaker and tools; per tool its calls by
    outcome and latency (counted in the API process that answers)."""
    status = _call("GET", f"/v1/orgs/{org_id}/tools/status")
    if as_json:
        _print(status)
        return
    print_rows(
        status["servers"],
        [
            ("server", "name"),
            ("transport", "transport"),
            ("connected", "connected"),
            ("breaker", lambda s: s["breaker"]["state"]),
            ("tools", lambda s: ", ".join(s["tools"])),
            ("last error", "last_error"),
        ],
        title=f"MCP servers of {org_id}",
        ids=("server",),
    )
    metrics = [{"tool": name, **m} for name, m in status["metrics"].items()]
    print_rows(
        metrics,
        [
            ("tool", "tool"),
            ("calls", "calls"),
            ("by outcome", lambda m: ", ".join(f"{k} {v}" for k, v in m["by_status"].items())),
            ("p50 ms", "latency_p50_ms"),
            ("p95 ms", "latency_p95_ms"),
        ],
        title="Tool calls",
        ids=("tool",),
    )


@tools_app.command("export")
def tools_export(
    agent_id: str,
    platform: Annotated[
        str, typer.Option(help="vapi, retell, bland or custom (your own voice stack)")
    ],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the definitions to paste into the platform")
    ] = False,
) -> None:
    """The agent's tool definitions in a platform's format (URLs from BACKLINE_PUBLIC_URL):
    a summary table, or with --json the definitions to paste into VAPI, Retell or Bland, or
    to give your own stack's LLM (custom: OpenAI-style function tools with the URL to post
    tool.calls to)."""
    tools = _call("GET", f"/v1/agents/{agent_id}/platforms/{platform}/tools")
    print_rows(
        tools,
        [("tool", _tool_name), ("calls", _tool_url)],
        title=f"{platform} tools of {agent_id} (--json for the definitions)",
        as_json=as_json,
        ids=("tool",),
    )


def _tool_name(tool: dict[str, Any]) -> str:
    function = tool.get("function")
    name = function.get("name") if isinstance(function, dict) else None
    return str(name or tool.get("name") or tool.get("tool", {}).get("name", "?"))


def _tool_url(tool: dict[str, Any]) -> str:
    server = tool.get("server")
    url = server.get("url") if isinstance(server, dict) else None
    return str(url or tool.get("url") or tool.get("tool", {}).get("url", ""))
