"""Keeps the generated parts of the docs in step with the running system.

- docs/routes.md, section "Full route index": every operation of the app's OpenAPI schema with
  its method, path and who may call it (the route's ``x-backline-auth`` marker).
- docs/cli.md: every command of the ``backline`` CLI with its one-line help.

``python scripts/docs_index.py --write`` rewrites both; ``--check`` (what the test suite runs)
exits 1 and names what differs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import typer

ROOT = Path(__file__).resolve().parent.parent
ROUTES_MD = ROOT / "docs" / "routes.md"
CLI_MD = ROOT / "docs" / "cli.md"
INDEX_HEADING = "## Full route index"
AUTH_EXTENSION = "x-backline-auth"
METHODS = ("get", "post", "put", "patch", "delete")


def openapi_schema() -> dict[str, Any]:
    from api.main import create_app
    from core.settings import Settings

    settings = Settings(database_url="sqlite://", secret_key="docs-index-key", admin_token="x" * 20)
    return create_app(settings).openapi()


def route_rows(schema: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    """(area, METHOD, path, auth, summary) for every operation, sorted."""
    rows = []
    for path, ops in schema["paths"].items():
        for method, op in ops.items():
            if method not in METHODS:
                continue
            area = (op.get("tags") or ["-"])[0]
            rows.append(
                (
                    area,
                    method.upper(),
                    path,
                    op.get(AUTH_EXTENSION, "MISSING"),
                    op.get("summary", ""),
                )
            )
    return sorted(rows, key=lambda r: (r[0], r[2], r[1]))


def render_route_index(schema: dict[str, Any]) -> str:
    lines = [
        INDEX_HEADING,
        "",
        "Generated from the app's OpenAPI schema (`python scripts/docs_index.py --write`; the",
        "test suite fails when this table and the running app differ). `auth` is who may call",
        "the route: `none`; `operator` (the admin token only); a scope (`viewer`, `content`,",
        "`release`, `admin`: an API key of the organization that owns the resource whose scopes",
        "grant it, or the operator); `content or release` (either scope; moving a protected",
        "label needs `release`); `platform` (the agent's stored platform credential, checked by",
        "the connector).",
        "Request and response shapes are in the sections above, in docs/prompts.md,",
        "docs/knowledge.md and docs/tools.md, and at `/docs` on a running API.",
        "",
        "| area | method | path | auth | what |",
        "| --- | --- | --- | --- | --- |",
    ]
    for area, method, path, who, summary in route_rows(schema):
        lines.append(f"| {area} | {method} | `{path}` | {who} | {summary} |")
    return "\n".join(lines) + "\n"


def parse_route_index(text: str) -> set[tuple[str, str, str]]:
    """(METHOD, path, auth) rows of the documented index."""
    section = text[text.index(INDEX_HEADING) :]
    rows = set()
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[1] in {m.upper() for m in METHODS}:
            rows.add((cells[1], cells[2].strip("`"), cells[3]))
    return rows


def cli_commands() -> list[tuple[str, str]]:
    """('backline kb add', first help line) for every leaf command of the CLI."""
    from cli.main import app

    root = typer.main.get_command(app)
    out: list[tuple[str, str]] = []

    def walk(cmd: Any, path: str) -> None:
        if isinstance(getattr(cmd, "commands", None), dict):
            for name, sub in sorted(cmd.commands.items()):
                walk(sub, f"{path} {name}")
        else:
            text = (cmd.help or "").strip()
            out.append((path, text.splitlines()[0] if text else ""))

    walk(root, "backline")
    return out


def render_cli_doc() -> str:
    lines = [
        "# The `backline` CLI",
        "",
        "Every command, generated from the CLI itself (`python scripts/docs_index.py --write`; the",
        "test suite fails when this page and the CLI differ). Each command has `--help`. API",
        "commands read `BACKLINE_API_URL` (default `http://127.0.0.1:8000`) and `BACKLINE_API_KEY`",
        "(an organization's API key, or the operator token); `up`, `worker`, `migrate` and `llm`",
        "run locally (`llm serve`: a small local model, [llm.md](llm.md)). Listing commands print",
        "a table, and JSON with `--json`.",
        "",
        "| command | what it does |",
        "| --- | --- |",
    ]
    for path, help_line in cli_commands():
        lines.append(f"| `{path}` | {help_line.replace('|', '/')} |")
    return "\n".join(lines) + "\n"


def parse_cli_doc(text: str) -> set[str]:
    found = set()
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 2 and cells[0].startswith("`backline"):
            found.add(cells[0].strip("`"))
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="rewrite the generated docs")
    mode.add_argument("--check", action="store_true", help="exit 1 when the docs differ")
    args = parser.parse_args()
    schema = openapi_schema()
    routes_text = ROUTES_MD.read_text()
    head = routes_text[: routes_text.index(INDEX_HEADING)]
    new_routes = head + render_route_index(schema)
    new_cli = render_cli_doc()
    if args.write:
        ROUTES_MD.write_text(new_routes)
        CLI_MD.write_text(new_cli)
        return 0
    stale = [
        p.name for p, new in ((ROUTES_MD, new_routes), (CLI_MD, new_cli)) if p.read_text() != new
    ]
    if stale:
        print(f"out of date: {', '.join(stale)}; run python scripts/docs_index.py --write")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
