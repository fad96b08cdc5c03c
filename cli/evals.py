"""``backline eval``: run an eval suite folder against an agent through the API and wait for
the verdict, list and show runs, compare two runs, register a suite.

Exit codes of ``run`` and ``compare`` (evals.verdict): 0 passed, 1 failed or regressed (or the
run was cancelled or errored), 2 bad arguments or invalid suite files (each problem printed as
``file:line: message``; nothing is sent), 3 inconclusive (too few runs to rule out a
regression, or no baseline to compare with).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from cli.http import client, print_json, send
from cli.output import print_rows, when
from evals.files import SuiteError
from evals.reports import cost_line, html_report, junit_xml
from evals.runner import ScenarioTally, verdict_against
from evals.scenarios import load_suite
from evals.verdict import EXIT_FAILED, EXIT_INCONCLUSIVE, EXIT_PASS, EXIT_USAGE, exit_code

app = typer.Typer(
    help="Eval suites: run them against an agent, compare runs.", no_args_is_help=True
)
suite_app = typer.Typer(help="The suites registered for nightly runs and the release gate.")
app.add_typer(suite_app, name="suite", no_args_is_help=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON")]
FINISHED = {"passed", "failed", "regressed", "inconclusive", "cancelled", "error"}
STATUS_EXIT = {
    "passed": EXIT_PASS,
    "failed": EXIT_FAILED,
    "regressed": EXIT_FAILED,
    "cancelled": EXIT_FAILED,
    "error": EXIT_FAILED,
    "inconclusive": EXIT_INCONCLUSIVE,
}


def suite_files(folder: Path) -> dict[str, str]:
    """Check the folder with the same loader the API uses (exit 2 listing every problem), then
    read its YAML files as ``{relative path: text}``."""
    try:
        load_suite(folder)
    except SuiteError as exc:
        for problem in exc.problems:
            typer.echo(str(problem), err=True)
        count = len(exc.problems)
        typer.echo(f"{count} problem{'s' if count != 1 else ''}; nothing was run", err=True)
        raise typer.Exit(EXIT_USAGE) from None
    files = {}
    for path in sorted([*folder.rglob("*.yaml"), *folder.rglob("*.yml")]):
        rel = path.relative_to(folder)
        if any(part.startswith(".") for part in rel.parts):
            continue
        files[rel.as_posix()] = path.read_text(encoding="utf-8")
    return files


def _tags(values: list[str] | None) -> list[str]:
    return [t.strip() for v in values or [] for t in v.split(",") if t.strip()]


def _scenario_rows(run: dict[str, Any], as_json: bool, title: str | None = None) -> None:
    print_rows(
        run.get("scenarios") or [],
        [
            ("scenario", "scenario"),
            ("persona", "persona"),
            ("passed", lambda r: f"{r['passed']}/{r['runs']}"),
            ("skipped", "skipped"),
            ("verdict", "verdict"),
            ("why", "reason"),
        ],
        title=title,
        as_json=as_json,
        raw=run,
    )


def _summary(run: dict[str, Any]) -> str:
    p = run["progress"]
    lines = [
        f"run {run['id']} ({run['suite']}): {run['status']}, verdict {run.get('verdict')}; "
        f"{run['passed']} passed, {run['failed']} failed, {run['skipped']} skipped of "
        f"{p['total']}; baseline {run.get('baseline_run_id') or 'none'}"
        + (f"; error: {run['error']}" if run.get("error") else "")
    ]
    if run.get("cost"):
        lines.append(cost_line(run["cost"]))
    if run.get("stop_reason"):
        lines.append(run["stop_reason"])
    lines += [f"warning: {w}" for w in run.get("warnings") or []]
    return "\n".join(lines)


def wait(http: httpx.Client, run_id: str, total: int, poll_s: float, quiet: bool) -> dict[str, Any]:
    """Poll the run until it finishes, with a progress bar unless ``quiet``."""
    console = Console(stderr=True)
    with Progress(
        TextColumn("[bold]eval[/bold] {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=quiet,
        transient=True,
    ) as progress:
        task = progress.add_task(run_id, total=total)
        while True:
            run: dict[str, Any] = send(http, "GET", f"/v1/evals/runs/{run_id}")
            progress.update(task, completed=run["progress"]["done"], description=run["status"])
            if run["status"] in FINISHED:
                return run
            time.sleep(poll_s)


def _start(http: httpx.Client, agent_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST the run; the API refusing the suite or the arguments (422) exits 2, like a local
    problem, with its message (one ``file:line: message`` line per problem)."""
    try:
        resp = http.post(f"/v1/agents/{agent_id}/evals/runs", json=body)
    except httpx.HTTPError as exc:
        typer.echo(f"error: cannot reach the API at {http.base_url}: {exc}", err=True)
        raise typer.Exit(EXIT_FAILED) from exc
    if resp.status_code >= 400:
        try:
            err = resp.json()
            typer.echo(
                f"error {resp.status_code}: {err.get('error')}: {err.get('detail')}", err=True
            )
        except ValueError:
            typer.echo(f"error {resp.status_code}: {resp.text}", err=True)
        raise typer.Exit(EXIT_USAGE if resp.status_code == 422 else EXIT_FAILED)
    created: dict[str, Any] = resp.json()
    return created


@app.command("run")
def run(
    agent_id: str,
    folder: Annotated[Path, typer.Argument(help="The suite folder (with suite.yaml)")],
    label: Annotated[str | None, typer.Option(help="Prompt label to test, e.g. staging")] = None,
    version: Annotated[int | None, typer.Option(help="Prompt version to test")] = None,
    tags: Annotated[
        list[str] | None, typer.Option("--tags", help="Only scenarios with these tags (a,b)")
    ] = None,
    repeats: Annotated[int | None, typer.Option(help="Override the suite's repeats")] = None,
    baseline: Annotated[
        str | None, typer.Option(help="Compare with this run (default: the last accepted)")
    ] = None,
    cost_cap: Annotated[
        float | None,
        typer.Option(
            "--cost-cap",
            metavar="USD",
            help="Stop starting new cases once the run's LLM cost reaches this many USD",
        ),
    ] = None,
    junit: Annotated[Path | None, typer.Option(help="Write JUnit XML here")] = None,
    html_file: Annotated[Path | None, typer.Option("--html", help="Write an HTML report")] = None,
    no_wait: Annotated[bool, typer.Option("--no-wait", help="Start the run and exit")] = False,
    poll: Annotated[float, typer.Option(help="Seconds between progress checks")] = 1.0,
    as_json: JsonOpt = False,
) -> None:
    """Run a suite folder against an agent and wait for the verdict (exit 0 pass, 1 failed or
    regressed, 2 invalid files, 3 inconclusive)."""
    if label is not None and version is not None:
        typer.echo("error: give --label or --version, not both", err=True)
        raise typer.Exit(EXIT_USAGE)
    if repeats is not None and repeats < 1:
        typer.echo("error: --repeats must be at least 1", err=True)
        raise typer.Exit(EXIT_USAGE)
    if cost_cap is not None and cost_cap <= 0:
        typer.echo("error: --cost-cap must be more than 0 (USD)", err=True)
        raise typer.Exit(EXIT_USAGE)
    files = suite_files(folder)
    body = {
        "files": files,
        "label": label,
        "version": version,
        "tags": _tags(tags),
        "repeats": repeats,
        "baseline_run_id": baseline,
        "cost_cap_usd": cost_cap,
    }
    with client(timeout=60) as http:
        created = _start(http, agent_id, body)
        if no_wait:
            if as_json:
                print_json(created)
            else:
                typer.echo(f"started eval run {created['id']} ({created['total']} cases)")
            return
        wait(http, created["id"], created["total"], poll, quiet=as_json)
        result = send(http, "GET", f"/v1/evals/runs/{created['id']}", cases="true")
    if junit is not None:
        junit.write_text(junit_xml(result), encoding="utf-8")
    if html_file is not None:
        html_file.write_text(html_report(result), encoding="utf-8")
    if as_json:
        print_json(result)
    else:
        _scenario_rows(result, False, title=f"eval run {result['id']}")
        typer.echo(_summary(result))
    raise typer.Exit(STATUS_EXIT.get(result["status"], EXIT_FAILED))


@app.command("list")
def list_runs(
    agent: Annotated[str | None, typer.Option(help="Only this agent")] = None,
    suite: Annotated[str | None, typer.Option(help="Only this suite")] = None,
    limit: Annotated[int, typer.Option(help="How many")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """Eval runs, newest first."""
    with client() as http:
        runs = send(http, "GET", "/v1/evals/runs", agent_id=agent, suite=suite, limit=limit)
    print_rows(
        runs,
        [
            ("id", "id"),
            ("agent", "agent_id"),
            ("suite", "suite"),
            ("target", lambda r: r.get("label") or r.get("version") or "production"),
            ("status", "status"),
            ("done", lambda r: f"{r['progress']['done']}/{r['progress']['total']}"),
            ("passed", "passed"),
            ("failed", "failed"),
            ("accepted", "accepted"),
            ("created", lambda r: when(r.get("created_at"))),
        ],
        as_json=as_json,
        ids=("id",),
    )


@app.command("show")
def show(
    run_id: str,
    cases: Annotated[bool, typer.Option("--cases", help="Every case's checks")] = False,
    as_json: JsonOpt = False,
) -> None:
    """A run: status, progress, verdict and per-scenario results."""
    with client() as http:
        run = send(http, "GET", f"/v1/evals/runs/{run_id}", cases="true" if cases else None)
    if as_json:
        print_json(run)
        return
    _scenario_rows(run, False, title=f"eval run {run_id}")
    if cases:
        rows = [
            {**c, "failed": "; ".join(x["name"] for x in c["checks"] if x["passed"] is False)}
            for c in run.get("cases") or []
        ]
        print_rows(
            rows,
            [
                ("#", "index"),
                ("scenario", "scenario"),
                ("persona", "persona"),
                ("repeat", "repeat"),
                ("status", "status"),
                ("failed checks", "failed"),
                ("reason", "reason"),
            ],
        )
    typer.echo(_summary(run))


def _tallies(run: dict[str, Any]) -> list[ScenarioTally]:
    return [
        ScenarioTally(
            key=r["key"],
            scenario=r["scenario"],
            persona=r.get("persona"),
            passed=int(r["passed"]),
            runs=int(r["runs"]),
            skipped=int(r.get("skipped", 0)),
        )
        for r in run.get("scenarios") or []
    ]


@app.command("compare")
def compare(
    candidate: Annotated[str, typer.Argument(help="The run to judge")],
    baseline: Annotated[str, typer.Argument(help="The run to compare it with")],
    as_json: JsonOpt = False,
) -> None:
    """Per scenario x persona, the candidate run's passes against the baseline run's (Fisher
    exact test); exit 0 pass, 1 regressed, 3 inconclusive."""
    with client() as http:
        cand = send(http, "GET", f"/v1/evals/runs/{candidate}")
        base = send(http, "GET", f"/v1/evals/runs/{baseline}")
    verdict = verdict_against(_tallies(cand), _tallies(base))
    rows = [
        {
            "scenario": s.scenario,
            "candidate": f"{s.candidate.passed}/{s.candidate.runs}",
            "baseline": f"{s.baseline.passed}/{s.baseline.runs}",
            "verdict": str(s.verdict),
            "p": round(s.p_regressed, 4),
            "flaky": s.flaky,
            "reason": s.reason,
        }
        for s in verdict.scenarios
    ]
    print_rows(
        rows,
        [
            ("scenario", "scenario"),
            ("candidate", "candidate"),
            ("baseline", "baseline"),
            ("verdict", "verdict"),
            ("p (fewer)", "p"),
            ("flaky", "flaky"),
        ],
        title=f"{candidate} vs {baseline}: {verdict.verdict}",
        as_json=as_json,
        raw={"verdict": str(verdict.verdict), "scenarios": rows},
    )
    raise typer.Exit(exit_code(verdict.verdict))


@app.command("cancel")
def cancel(run_id: str, as_json: JsonOpt = False) -> None:
    """Cancel a run under way."""
    with client() as http:
        run = send(http, "POST", f"/v1/evals/runs/{run_id}/cancel")
    if as_json:
        print_json(run)
    else:
        typer.echo(_summary(run))


@app.command("accept")
def accept(run_id: str, as_json: JsonOpt = False) -> None:
    """Make a finished run the baseline of its suite."""
    with client() as http:
        run = send(http, "POST", f"/v1/evals/runs/{run_id}/accept")
    if as_json:
        print_json(run)
    else:
        typer.echo(f"run {run_id} is now the baseline of {run['suite']}")


@app.command("from-call")
def from_call(
    agent_id: str,
    platform: str,
    call_id: str,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Write the scenario to this file (default: print it)"),
    ] = None,
) -> None:
    """A regression scenario from a stored call: its caller lines as turns, the tools that
    answered as expectations. Review it, then add the file to a suite folder."""
    with client() as http:
        text = send(http, "GET", f"/v1/calls/{agent_id}/{platform}/{call_id}/scenario")["yaml"]
    if out is None:
        typer.echo(text, nl=False)
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    typer.echo(f"wrote {out}; review its expectations before adding it to a suite", err=True)


@suite_app.command("push")
def push(
    agent_id: str,
    folder: Annotated[Path, typer.Argument(help="The suite folder (with suite.yaml)")],
    as_json: JsonOpt = False,
) -> None:
    """Register a suite folder for the agent (replaces the suite of the same name)."""
    files = suite_files(folder)
    with client() as http:
        stored = send(http, "PUT", f"/v1/agents/{agent_id}/evals/suite", {"files": files})
    if as_json:
        print_json(stored)
    else:
        typer.echo(
            f"registered suite {stored['name']} ({len(stored['files'])} files) for {agent_id}"
        )


@suite_app.command("list")
def suites(agent_id: str, as_json: JsonOpt = False) -> None:
    """The agent's registered suites."""
    with client() as http:
        found = send(http, "GET", f"/v1/agents/{agent_id}/evals/suite")
    print_rows(
        found,
        [
            ("name", "name"),
            ("files", lambda r: len(r["files"])),
            ("updated", lambda r: when(r.get("updated_at"))),
        ],
        as_json=as_json,
    )
