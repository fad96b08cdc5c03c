"""The docs describe the running system: every route of the app is in docs/routes.md with its
method and who may call it, every documented route exists, and every CLI command in the docs
exists in the CLI's command tree and vice versa."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]
ROUTE_ROW = re.compile(r"^\|\s*(GET|POST|PUT|PATCH|DELETE)\s*\|\s*`([^`]+)`", re.M)
CLI_MENTION = re.compile(
    r"`(backline(?: [a-z][a-z-]*)+)|^\s*(?:\$ )?(backline(?: [a-z][a-z-]*)+)", re.M
)


def _docs_index() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_index", ROOT / "scripts" / "docs_index.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["docs_index"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def index() -> ModuleType:
    return _docs_index()


@pytest.fixture(scope="module")
def schema(index: ModuleType) -> dict[str, Any]:
    result: dict[str, Any] = index.openapi_schema()
    return result


def test_every_route_declares_who_may_call_it(index: ModuleType, schema: dict[str, Any]) -> None:
    missing = [f"{m} {p}" for _, m, p, who, _ in index.route_rows(schema) if who == "MISSING"]
    assert not missing, f"routes without openapi_extra=auth(...): {missing}"


def test_route_index_matches_the_app_both_ways(index: ModuleType, schema: dict[str, Any]) -> None:
    documented = index.parse_route_index((ROOT / "docs" / "routes.md").read_text())
    served = {(m, p, who) for _, m, p, who, _ in index.route_rows(schema)}
    assert served - documented == set(), "served but not documented (or with another auth)"
    assert documented - served == set(), "documented but not served (or with another auth)"


def test_every_route_documented_anywhere_exists(schema: dict[str, Any]) -> None:
    served = {(m.upper(), p) for p, ops in schema["paths"].items() for m in ops}
    # Routes served outside the OpenAPI schema (the MCP endpoint answers the protocol itself).
    served |= {("POST", "/v1/agents/{agent_id}/mcp"), ("GET", "/v1/agents/{agent_id}/mcp")}
    unknown = []
    for doc in DOCS:
        for method, path in ROUTE_ROW.findall(doc.read_text()):
            path = path.split("?")[0]
            if (method, path) not in served:
                unknown.append(f"{doc.name}: {method} {path}")
    assert not unknown, f"documented routes the app does not serve: {unknown}"


def test_generated_docs_are_current(index: ModuleType, schema: dict[str, Any]) -> None:
    routes_md = (ROOT / "docs" / "routes.md").read_text()
    heading = routes_md.index(index.INDEX_HEADING)
    assert routes_md[heading:] == index.render_route_index(schema), (
        "docs/routes.md route index is stale: python scripts/docs_index.py --write"
    )
    assert (ROOT / "docs" / "cli.md").read_text() == index.render_cli_doc(), (
        "docs/cli.md is stale: python scripts/docs_index.py --write"
    )


def test_cli_reference_lists_every_command_and_nothing_else(index: ModuleType) -> None:
    documented = index.parse_cli_doc((ROOT / "docs" / "cli.md").read_text())
    commands = {path for path, _ in index.cli_commands()}
    assert commands - documented == set(), "commands missing from docs/cli.md"
    assert documented - commands == set(), "docs/cli.md lists commands the CLI does not have"


def test_every_cli_command_the_docs_mention_exists(index: ModuleType) -> None:
    commands = {path for path, _ in index.cli_commands()}
    groups = {" ".join(c.split()[:n]) for c in commands for n in range(1, len(c.split()))}
    unknown = []
    for doc in DOCS:
        for quoted, line in CLI_MENTION.findall(doc.read_text()):
            words = (quoted or line).split()
            # The longest prefix naming a command or group: a command takes the words after it
            # as arguments; a group followed by more words names a sub-command it lacks.
            prefixes = [" ".join(words[:n]) for n in range(len(words), 0, -1)]
            hit = next((p for p in prefixes if p in commands or p in groups), None)
            if hit is None or (hit in groups and len(hit.split()) < len(words)):
                unknown.append(f"{doc.name}: {' '.join(words)}")
    assert not unknown, f"the docs mention CLI commands that do not exist: {unknown}"
