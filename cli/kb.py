"""``backline kb``: knowledge sources through the API (add, list, refresh, status), with
progress bars for long work; and the demo knowledge base ``backline up`` registers.

An HTTP client of the API like the rest of the CLI, so scopes and the audit's "who" apply.
Reads ``BACKLINE_API_URL`` and ``BACKLINE_API_KEY``. Never touches the database directly.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich import box
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from cli.http import client, send
from core.settings import Settings

app = typer.Typer(help="Knowledge bases: sources, refreshes, freshness.", no_args_is_help=True)
console = Console(stderr=True)

SUPPORTED = (".md", ".markdown", ".txt", ".html", ".htm", ".pdf")
ROOT = Path(__file__).resolve().parent.parent
DEMO_KNOWLEDGE = ROOT / "examples" / "knowledge"
# Demo policy: the price list must be re-confirmed monthly, the rest quarterly.
DEMO_MAX_STALENESS = {"prices.md": 30 * 86400}
DEMO_DEFAULT_STALENESS = 90 * 86400
DEMO_QUESTIONS = (
    "How much is a water heater flush?",
    "um are you open on thanksgiving",
    "do you come out to hayward",
    "how much is the a c tune up",
)

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str | None) -> int | None:
    """``90s``, ``15m``, ``1h``, ``2d``, ``1w`` or seconds; ``off`` / ``none`` means never."""
    if text is None or text.strip().lower() in ("off", "none", "never", ""):
        return None
    match = _DURATION.match(text.lower())
    if not match:
        raise typer.BadParameter(f"'{text}' is not a duration like 90s, 15m, 1h, 2d or 1w")
    return int(match.group(1)) * _UNITS[match.group(2)]


class Api:
    """The API for a ``kb`` command: the CLI's client (``cli.http``), with a longer timeout for
    uploads; the settings' URL and key unless given."""

    def __init__(
        self, base_url: str | None = None, token: str | None = None, timeout: float = 60
    ) -> None:
        self._client = client(base_url, token, timeout)

    @classmethod
    def from_settings(cls) -> Api:
        return cls()

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *exc: object) -> None:
        self._client.close()

    def call(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        return send(self._client, method, path, body, **params)


def _files(paths: Iterable[Path]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.suffix.lower() in SUPPORTED))
        elif path.is_file():
            found.append(path)
        else:
            raise typer.BadParameter(f"{path} does not exist")
    return found


def upsert_files(
    api: Api,
    agent_id: str,
    files: list[Path],
    *,
    kb: str = "default",
    refresh_interval_s: int | None = None,
    max_staleness: dict[str, int | None] | None = None,
    default_staleness_s: int | None = None,
    progress: Progress | None = None,
) -> list[dict[str, Any]]:
    """Add each file as a source (named by file name, remembering its path), or upload it again
    when it changed. Returns each change (``refresh`` is None when nothing changed)."""
    existing = {
        s["name"]: s
        for s in api.call("GET", f"/v1/agents/{agent_id}/knowledge/sources")
        if s["kb_name"] == kb
    }
    task = progress.add_task("uploading", total=len(files)) if progress else None
    changes: list[dict[str, Any]] = []
    for path in files:
        raw = path.read_bytes()
        staleness = (max_staleness or {}).get(path.name, default_staleness_s)
        origin = str(path.resolve())
        body: dict[str, Any] = {
            "filename": path.name,
            "content_base64": base64.b64encode(raw).decode(),
            "origin_path": origin,
            "refresh_interval_s": refresh_interval_s,
            "max_staleness_s": staleness,
        }
        current = existing.get(path.name)
        if current is None:
            change = api.call(
                "POST",
                f"/v1/agents/{agent_id}/knowledge/sources",
                {**body, "kind": "file", "name": path.name, "kb": kb},
            )
        elif (
            current["content_hash"] != hashlib.sha256(raw).hexdigest()
            or current["max_staleness_s"] != staleness
            or current.get("origin_path") != origin
        ):
            change = api.call("PATCH", f"/v1/knowledge/sources/{current['id']}", body)
        else:
            change = {"source": current, "refresh": None}
        changes.append(change)
        if progress is not None and task is not None:
            progress.update(task, advance=1, description=f"uploaded {path.name}")
    return changes


def started_runs(changes: Iterable[dict[str, Any]]) -> dict[str, str | None]:
    """Source id -> run id of the refresh each change started (or joined)."""
    runs: dict[str, str | None] = {}
    for change in changes:
        if change.get("refresh"):
            runs[change["source"]["id"]] = change["refresh"]["run_id"]
        elif change.get("note"):
            console.print(f"{change['source']['name']}: {change['note']}")
    return runs


def wait_refreshes(
    api: Api, runs: dict[str, str | None], timeout_s: float, progress: Progress
) -> tuple[bool, dict[str, dict[str, Any]]]:
    """Poll each refresh this command started until it ended, whatever the outcome (updated,
    unchanged, failing...), with a deadline. Returns (all ended, source id -> its ended run)."""
    task = progress.add_task("refreshing", total=len(runs))
    deadline = time.monotonic() + timeout_s
    ended: dict[str, dict[str, Any]] = {}
    while len(ended) < len(runs) and time.monotonic() < deadline:
        for source_id in sorted(set(runs) - set(ended)):
            run = api.call(
                "GET", f"/v1/knowledge/sources/{source_id}/refresh", run_id=runs[source_id]
            )
            if not run["running"]:
                ended[source_id] = run
                progress.update(
                    task, advance=1, description=f"{source_id}: {run['outcome'] or run['status']}"
                )
        if len(ended) < len(runs):
            time.sleep(0.5)
    return len(ended) == len(runs), ended


def failed_runs(ended: dict[str, dict[str, Any]]) -> dict[str, str]:
    """Source id -> why its refresh failed, for the refreshes that did not succeed."""
    return {
        source_id: run["error"] or run["status"]
        for source_id, run in ended.items()
        if run["status"] != "completed" or run["outcome"] == "failing"
    }


def report(sources: list[dict[str, Any]], done: bool, ended: dict[str, dict[str, Any]]) -> None:
    """The sources' table, then each failed refresh with its reason; exits 1 when a refresh is
    still running at the deadline, 3 when one failed."""
    _table(sources)
    failed = failed_runs(ended)
    names = {s["id"]: s["name"] for s in sources}
    for source_id, reason in failed.items():
        console.print(f"[red]failing[/]: {names.get(source_id, source_id)} ({source_id}): {reason}")
    if not done:
        console.print("some refreshes are still running; see `backline kb status`")
        raise typer.Exit(1)
    if failed:
        raise typer.Exit(3)


def _progress() -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


def _print(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


@app.command("add")
def add(
    agent_id: str,
    paths: Annotated[list[Path] | None, typer.Argument(help="Files or folders to upload")] = None,
    url: Annotated[str | None, typer.Option(help="Add a URL source")] = None,
    text: Annotated[str | None, typer.Option(help="Add a text source (markdown)")] = None,
    name: Annotated[str | None, typer.Option(help="Source name (url and text sources)")] = None,
    kb: Annotated[str, typer.Option(help="Knowledge base name")] = "default",
    every: Annotated[
        str | None, typer.Option(help="Refresh interval: 15m, 1h, 1d or off (URLs: 1h)")
    ] = None,
    max_staleness: Annotated[
        str | None, typer.Option(help="Withhold after this long without a good refresh")
    ] = None,
    wait: Annotated[bool, typer.Option(help="Wait for the refresh to finish")] = True,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for refreshes")] = 600,
) -> None:
    """Add files (md, txt, html, pdf; folders too), a URL or a text source, then refresh."""
    interval = parse_duration(every)
    staleness = parse_duration(max_staleness)
    with Api.from_settings() as api, _progress() as progress:
        changes: list[dict[str, Any]] = []
        if paths:
            changes += upsert_files(
                api,
                agent_id,
                _files(paths),
                kb=kb,
                refresh_interval_s=interval,
                default_staleness_s=staleness,
                progress=progress,
            )
        for kind, value in (("url", url), ("text", text)):
            if value is None:
                continue
            body: dict[str, Any] = {
                "kind": kind,
                "name": name or (value if kind == "url" else "text"),
                "kb": kb,
                kind: value,
                "max_staleness_s": staleness,
            }
            if every is not None:
                body["refresh_interval_s"] = interval
            created = api.call("POST", f"/v1/agents/{agent_id}/knowledge/sources", body)
            changes.append(created)
        if not changes:
            raise typer.BadParameter("give files or folders, --url or --text")
        ids = [c["source"]["id"] for c in changes]
        runs = started_runs(changes)
        done, ended = wait_refreshes(api, runs, timeout, progress) if wait else (True, {})
    report(_sources_by_id(ids), done, ended)


def _sources_by_id(ids: list[str]) -> list[dict[str, Any]]:
    with Api.from_settings() as api:
        return [api.call("GET", f"/v1/knowledge/sources/{i}") for i in ids]


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit} ago"
    return f"{seconds:.0f}s ago"


def _table(sources: list[dict[str, Any]]) -> None:
    """Sources as a table that fits 80 columns; errors are listed under it in full."""
    table = Table(title="Knowledge sources", box=box.SIMPLE_HEAD)
    # Ids are what `kb refresh` and `kb remove` take: never truncated, whatever the width.
    table.add_column("id", no_wrap=True, min_width=max((len(s["id"]) for s in sources), default=2))
    table.add_column("name", overflow="fold", ratio=1)
    table.add_column("kind", no_wrap=True)
    table.add_column("freshness", overflow="fold")
    table.add_column("chunks", justify="right", no_wrap=True)
    colors = {"fresh": "green", "stale": "red", "failing": "yellow", "pending": "blue"}
    for s in sources:
        state = s["freshness"]
        table.add_row(
            s["id"],
            s["name"] if s["kb_name"] == "default" else f"{s['kb_name']}/{s['name']}",
            s["kind"],
            f"[{colors.get(state, 'white')}]{state}[/] {_age(s['age_s'])}",
            str(s["chunk_count"]),
        )
    Console().print(table)
    for s in sources:
        if s["last_error"]:
            Console().print(f"{s['id']} last error: {s['last_error'][:300]}", soft_wrap=True)


@app.command("list")
def list_sources(
    agent_id: str,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """List an agent's sources with their freshness (fresh, stale, failing, pending)."""
    with Api.from_settings() as api:
        sources = api.call("GET", f"/v1/agents/{agent_id}/knowledge/sources")
    if as_json:
        _print(sources)
    else:
        _table(sources)


@app.command("refresh")
def refresh(
    source_ids: Annotated[list[str] | None, typer.Argument(help="Source ids")] = None,
    agent: Annotated[str | None, typer.Option(help="Refresh every source of this agent")] = None,
    force: Annotated[bool, typer.Option(help="Re-read and re-embed everything")] = False,
    wait: Annotated[bool, typer.Option(help="Wait for the refreshes to finish")] = True,
    timeout: Annotated[float, typer.Option(help="Seconds to wait")] = 600,
) -> None:
    """Refresh now (joins a refresh of the same source that is already running).

    URL sources are fetched again by the server. A file source is read again from the path it
    was added from: when the file changed there, the new content is uploaded first."""
    with Api.from_settings() as api, _progress() as progress:
        ids = list(source_ids or [])
        if agent:
            ids += [s["id"] for s in api.call("GET", f"/v1/agents/{agent}/knowledge/sources")]
        if not ids:
            raise typer.BadParameter("give source ids or --agent")
        task = progress.add_task("starting refreshes", total=len(ids))
        changes: list[dict[str, Any]] = []
        for source_id in ids:
            source = api.call("GET", f"/v1/knowledge/sources/{source_id}")
            change = _upload_if_changed(api, source, force)
            if change is None:
                started = api.call(
                    "POST", f"/v1/knowledge/sources/{source_id}/refresh", force=str(force).lower()
                )
                change = {"source": source, "refresh": started}
                note = "joined the running refresh" if started["joined_running"] else "started"
            else:
                note = "uploaded the changed file"
            changes.append(change)
            progress.update(task, advance=1, description=f"{source_id}: {note}")
        runs = started_runs(changes)
        done, ended = wait_refreshes(api, runs, timeout, progress) if wait else (True, {})
    report(_sources_by_id(ids), done, ended)


def _upload_if_changed(api: Api, source: dict[str, Any], force: bool) -> dict[str, Any] | None:
    """A file source whose file changed at its recorded path: upload it (which refreshes it).
    None when there is nothing new to upload (then the caller asks for a plain refresh)."""
    origin = source.get("origin_path")
    if source["kind"] != "file" or not origin or force:
        return None
    path = Path(origin)
    if not path.is_file():
        console.print(
            f"[yellow]{source['name']}[/]: {origin} no longer exists here; refreshing the "
            "uploaded copy (run `backline kb add` with the file's new path to replace it)"
        )
        return None
    raw = path.read_bytes()
    if hashlib.sha256(raw).hexdigest() == source["content_hash"]:
        return None
    change: dict[str, Any] = api.call(
        "PATCH",
        f"/v1/knowledge/sources/{source['id']}",
        {"filename": path.name, "content_base64": base64.b64encode(raw).decode()},
    )
    return change


@app.command("status")
def status(
    agent_id: str,
    source: Annotated[str | None, typer.Option(help="One source, as JSON")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Freshness summary of an agent's knowledge: counts by state, chunks, oldest check.
    Exits 3 when a source is stale or failing."""
    with Api.from_settings() as api:
        if source:
            _print(api.call("GET", f"/v1/knowledge/sources/{source}"))
            return
        sources = api.call("GET", f"/v1/agents/{agent_id}/knowledge/sources")
    counts = {state: 0 for state in ("fresh", "stale", "failing", "pending")}
    for s in sources:
        counts[s["freshness"]] = counts.get(s["freshness"], 0) + 1
    ages = [s["age_s"] for s in sources if s["age_s"] is not None]
    if as_json:
        _print({"counts": counts, "sources": sources})
    else:
        _status_summary(sources, counts, ages)
    if counts["stale"] or counts["failing"]:
        raise typer.Exit(3)


def _status_summary(
    sources: list[dict[str, Any]], counts: dict[str, int], ages: list[float]
) -> None:
    typer.echo(
        f"{len(sources)} sources, {sum(s['chunk_count'] for s in sources)} chunks; "
        + ", ".join(f"{k}: {v}" for k, v in counts.items())
        + (f"; oldest good check {_age(max(ages))}" if ages else "")
    )
    _table(sources)


@app.command("remove")
def remove(
    source_ids: Annotated[list[str], typer.Argument(help="Source ids (see `backline kb list`)")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Remove sources: their chunks, search-index entries and refresh schedules go too."""
    with Api.from_settings() as api:
        sources = [api.call("GET", f"/v1/knowledge/sources/{i}") for i in source_ids]
        if not yes:
            names = ", ".join(f"{s['name']} ({s['id']})" for s in sources)
            typer.confirm(f"Remove {names}?", abort=True)
        removed = [api.call("DELETE", f"/v1/knowledge/sources/{s['id']}") for s in sources]
    if as_json:
        _print(removed)
        return
    table = Table(title="Removed sources")
    table.add_column("id", no_wrap=True, min_width=max(len(r["source_id"]) for r in removed))
    for column in ("name", "chunks removed", "schedule removed"):
        table.add_column(column)
    for source, r in zip(sources, removed, strict=True):
        table.add_row(
            r["source_id"], source["name"], str(r["chunks_removed"]), str(r["schedule_removed"])
        )
    Console().print(table)


@app.command("search")
def search(
    agent_id: str,
    query: Annotated[str, typer.Argument(help="What a caller would ask")],
    k: Annotated[int, typer.Option("--k", help="How many hits (1-20)")] = 5,
    kb: Annotated[str | None, typer.Option(help="Only this knowledge base")] = None,
    mode: Annotated[str, typer.Option(help="hybrid, dense or keyword")] = "hybrid",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Search an agent's knowledge as a call would: hits with their source and freshness;
    outdated chunks are withheld and listed."""
    body = {"agent_id": agent_id, "query": query, "k": k, "kb": kb, "mode": mode}
    with Api.from_settings() as api:
        answer = api.call("POST", "/v1/knowledge/search", body)
    if as_json:
        _print(answer)
        return
    console.print(
        f"query: {answer['normalized_query']!r} · status: {answer['status']} · "
        f"{answer['latency_ms']:.1f} ms"
    )
    table = Table(title=f"Hits for {query!r}")
    for column in ("#", "source", "section", "freshness", "score", "text"):
        table.add_column(column, overflow="fold")
    for rank, hit in enumerate(answer["hits"], start=1):
        table.add_row(
            str(rank),
            hit["source_name"],
            hit["section"] or hit["title"],
            f"{hit['freshness']} ({_age(hit['age_s'])})",
            f"{hit['similarity'] if hit['similarity'] is not None else hit['score']:.3f}",
            hit["text"][:200],
        )
    Console().print(table)
    for withheld in answer["withheld"]:
        console.print(
            f"withheld as outdated: {withheld['source_name']} · {withheld['section']}: "
            f"{withheld['reason']}"
        )
    if answer.get("spoken_fallback"):
        console.print(f"the agent would say: {answer['spoken_fallback']}")


# -- the demo knowledge base (``backline up``) -----------------------------------------------


def seed_demo_knowledge(
    api_url: str, token: str, agent_id: str, vapi_token: str, timeout_s: float = 120
) -> tuple[int, bool]:
    """Register ``examples/knowledge`` for the demo agent, refresh it, wait until it is fresh,
    then ask a few questions through the VAPI edge so the dashboard has retrieval traces.
    Returns (sources, all fresh)."""
    files = _files([DEMO_KNOWLEDGE]) if DEMO_KNOWLEDGE.exists() else []
    if not files:
        return 0, True
    with Api(api_url, token) as api, _progress() as progress:
        changes = upsert_files(
            api,
            agent_id,
            files,
            max_staleness=dict(DEMO_MAX_STALENESS),
            default_staleness_s=DEMO_DEFAULT_STALENESS,
            progress=progress,
        )
        started = []
        for change in changes:
            if change.get("refresh") is None:  # unchanged since the last run: re-confirm it
                refresh = api.call(
                    "POST", f"/v1/knowledge/sources/{change['source']['id']}/refresh"
                )
                change = {**change, "refresh": refresh}
            started.append(change)
        done, ended = wait_refreshes(api, started_runs(started), timeout_s, progress)
        fresh = done and not failed_runs(ended)
    if fresh:
        ask_demo_questions(api_url, agent_id, vapi_token)
    return len(changes), fresh


def ask_demo_questions(api_url: str, agent_id: str, vapi_token: str) -> int:
    """Knowledge-base requests through the real VAPI edge, as a VAPI assistant would send."""
    answered = 0
    for i, question in enumerate(DEMO_QUESTIONS):
        body = {
            "message": {
                "type": "knowledge-base-request",
                "call": {"id": f"demo-knowledge-{i}", "type": "webCall"},
                "messagesOpenAIFormatted": [
                    {"role": "system", "content": "You are the Acme phone agent."},
                    {"role": "user", "content": question},
                ],
            }
        }
        resp = httpx.post(
            f"{api_url}/v1/webhooks/vapi/{agent_id}",
            json=body,
            headers={"Authorization": f"Bearer {vapi_token}"},
            timeout=10,
        )
        answered += resp.status_code == 200
    return answered


def seed_demo(api_url: str, settings: Settings, agent_id: str = "demo") -> None:
    """``backline up``: the demo knowledge base, best effort (the stack runs without it)."""
    try:
        count, fresh = seed_demo_knowledge(
            api_url,
            settings.admin_token.get_secret_value(),
            agent_id,
            settings.demo_vapi_token.get_secret_value(),
        )
    except (typer.Exit, httpx.HTTPError, OSError) as exc:
        print(f"backline: the demo knowledge base was not registered: {exc!r}", flush=True)
        return
    state = "fresh" if fresh else "still refreshing (see `backline kb status demo`)"
    print(f"backline: demo knowledge base: {count} sources, {state}", flush=True)
