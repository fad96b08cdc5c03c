"""``backline prompts``: versions, diffs, labels, rollbacks, experiments and canary rollouts.

An HTTP client of the prompt API (so scopes and the audit's "who" apply); it never touches the
database. Every command has ``--help``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from cli.http import call, print_json

app = typer.Typer(help="Prompts treated like code: versions, labels, A/B, rollouts.")
experiment_app = typer.Typer(help="A/B experiments across prompt versions.", no_args_is_help=True)
rollout_app = typer.Typer(
    help="Canary rollouts with automatic rollback (PromptRolloutWorkflow).", no_args_is_help=True
)
app.add_typer(experiment_app, name="experiment")
app.add_typer(rollout_app, name="rollout")

Reason = Annotated[str, typer.Option("--reason", "-r", help="Why (kept in the audit trail)")]
AsJson = Annotated[bool, typer.Option("--json", help="Print the raw JSON answer")]
PUSH_HINT = "backline prompts push AGENT_ID --template-file FILE -m MESSAGE"


def _base(agent_id: str) -> str:
    return f"/v1/agents/{agent_id}/prompts"


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _experiments(answer: Any, title: str, as_json: bool) -> None:
    """One experiment or a list of them: a table, or the API's JSON with --json."""
    if as_json:
        print_json(answer)
        return
    rows: list[dict[str, Any]] = answer if isinstance(answer, list) else [answer]
    if not rows:
        typer.echo("no experiments yet; start one with `backline prompts experiment start`")
        return
    table = Table(title=title)
    for column in ("id", "name", "status", "split (control last)", "started", "reason"):
        table.add_column(column, no_wrap=column.startswith("split"))
    for e in rows:
        split = ", ".join(f"v{v['version']} {v['weight']:.0%}" for v in e["variants"])
        reason = e["reason"] if e["stop_reason"] is None else f"{e['reason']} / {e['stop_reason']}"
        table.add_row(
            str(e["id"]),
            e["name"],
            e["status"],
            split,
            e["started_at"][:16].replace("T", " "),
            f"{reason[:60]} ({e['created_by']})",
        )
    Console().print(table)


def _pairs(items: list[str] | None, what: str) -> dict[str, Any]:
    """``KEY=VALUE`` options; values that parse as JSON (numbers, booleans) keep their type."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            typer.echo(f"error: {what} must look like KEY=VALUE, got '{item}'", err=True)
            raise typer.Exit(2)
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value
    return out


@app.command("push")
def push(
    agent_id: str,
    template_file: Annotated[
        Path | None,
        typer.Option(
            help="System prompt file: Backline fills {{backline_*}}, the platform fills any "
            "other {{name}} (defaults from --var)"
        ),
    ] = None,
    file: Annotated[
        Path | None,
        typer.Option(
            help="A JSON version: template, variables, model, first_message, tools, compliance"
        ),
    ] = None,
    message: Annotated[str | None, typer.Option("--message", "-m", help="What changed")] = None,
    first_message: Annotated[str | None, typer.Option(help="The agent's opening line")] = None,
    model: Annotated[
        list[str] | None, typer.Option(help="Model setting KEY=VALUE (provider, model, ...)")
    ] = None,
    var: Annotated[
        list[str] | None,
        typer.Option(
            help="Default of a platform variable {{KEY}}, KEY=VALUE: sent with the platform's "
            "variables unless the call sets its own"
        ),
    ] = None,
    tool: Annotated[list[str] | None, typer.Option(help="A tool the version may use")] = None,
    label: Annotated[str | None, typer.Option(help="Then point this label at it")] = None,
    reason: Annotated[str | None, typer.Option(help="Why, when --label is given")] = None,
) -> None:
    """Push a new immutable version (identical content returns the existing version)."""
    body: dict[str, Any] = json.loads(file.read_text()) if file else {}
    if template_file is not None:
        body["template"] = template_file.read_text()
    if "template" not in body:
        typer.echo("error: give --template-file or a --file with a 'template'", err=True)
        raise typer.Exit(2)
    if message is not None:
        body["message"] = message
    if not body.get("message"):
        typer.echo("error: describe the change with --message", err=True)
        raise typer.Exit(2)
    if first_message is not None:
        body["first_message"] = first_message
    if model:
        body["model"] = {**body.get("model", {}), **_pairs(model, "--model")}
    if var:
        body["variables"] = {**body.get("variables", {}), **_pairs(var, "--var")}
    if tool:
        body["tools"] = [*body.get("tools", []), *({"name": t} for t in tool)]
    pushed = call("POST", f"{_base(agent_id)}/versions", body)
    state = "created" if pushed["created"] else "unchanged (same content)"
    typer.echo(f"{pushed['ref']} {state}: {pushed['message']}")
    if label is not None:
        moved = call(
            "PUT",
            f"{_base(agent_id)}/labels/{label}",
            {"version": pushed["version"], "reason": reason or pushed["message"]},
        )
        typer.echo(f"label {label} -> {moved['label']['ref']}")


@app.command("versions")
def versions(agent_id: str, as_json: AsJson = False) -> None:
    """List versions, newest first, with their labels."""
    rows = call("GET", f"{_base(agent_id)}/versions")
    if as_json:
        print_json(rows)
        return
    for v in rows:
        labels = f" [{', '.join(v['labels'])}]" if v["labels"] else ""
        typer.echo(f"{v['ref']}{labels}  {v['created_at'][:19]}  {v['created_by']}: {v['message']}")


@app.command("diff")
def diff(agent_id: str, from_version: int, to_version: int, as_json: AsJson = False) -> None:
    """Show what changed between two versions (prompt, first message, model, variables, tools)."""
    d = call("GET", f"{_base(agent_id)}/diff", from_version=from_version, to_version=to_version)
    if as_json:
        print_json(d)
        return
    typer.echo(f"v{from_version} -> v{to_version}: {', '.join(d['changed']) or 'no changes'}")
    typer.echo(f"message: {d['message']}")
    for part in ("template", "first_message"):
        if d[part]:
            typer.echo(d[part].rstrip("\n"))
    for part in ("model", "variables", "tools"):
        changes = d[part]
        if any(changes.values()):
            typer.echo(f"{part}: {json.dumps(changes, sort_keys=True)}")


@app.command("label")
def label(
    agent_id: str,
    label_name: str,
    version: int,
    reason: Reason,
    override_eval_gate: Annotated[
        bool,
        typer.Option(
            "--override-eval-gate",
            help="Move even though the eval gate refuses (release scope; audited with the reason)",
        ),
    ] = False,
) -> None:
    """Point a label (production, staging, custom) at a version."""
    body: dict[str, object] = {"version": version, "reason": reason}
    if override_eval_gate:
        body["override_eval_gate"] = True
    moved = call("PUT", f"{_base(agent_id)}/labels/{label_name}", body)
    was = f"v{moved['from_version']}" if moved["from_version"] else "nothing"
    typer.echo(f"{label_name}: {was} -> {moved['label']['ref']} (eval gate: {moved['eval_gate']})")


@app.command("rollback")
def rollback(
    agent_id: str,
    label_name: Annotated[str, typer.Argument(help="Label to move back")] = "production",
    reason: Reason = "",
    to: Annotated[int | None, typer.Option(help="Version (default: the previous one)")] = None,
) -> None:
    """Move a label back to the version it pointed at before."""
    if len(reason) < 3:
        typer.echo("error: say why with --reason", err=True)
        raise typer.Exit(2)
    moved = call(
        "POST",
        f"{_base(agent_id)}/labels/{label_name}/rollback",
        {"reason": reason, "to_version": to},
    )
    typer.echo(f"{label_name}: v{moved['from_version']} -> {moved['label']['ref']}")


@app.command("policy")
def policy(
    agent_id: str,
    label_name: str,
    reason: Reason,
    protected: Annotated[
        bool | None, typer.Option("--protected/--unprotected", help="Release scope only")
    ] = None,
    eval_gate: Annotated[
        bool | None,
        typer.Option("--require-eval-gate/--no-eval-gate", help="Need a passing eval suite"),
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Protect a label and/or require a passing eval suite before it moves."""
    lb = call(
        "PUT",
        f"{_base(agent_id)}/labels/{label_name}/policy",
        {"protected": protected, "require_eval_gate": eval_gate, "reason": reason},
    )
    if as_json:
        print_json(lb)
        return
    typer.echo(
        f"{lb['name']} -> {lb['ref']}: protected {_yes(lb['protected'])}, "
        f"eval gate required {_yes(lb['require_eval_gate'])}"
    )


@app.command("status")
def status(agent_id: str, as_json: AsJson = False) -> None:
    """Labels, what callers are served now, the running experiment and rollout."""
    s = call("GET", f"{_base(agent_id)}/status")
    if as_json:
        print_json(s)
        return
    if s["latest_version"] is None:
        typer.echo(f"agent {s['agent_id']}: no versions yet; push one with `{PUSH_HINT}`")
    else:
        typer.echo(
            f"agent {s['agent_id']}: {s['versions']} version(s), latest v{s['latest_version']}"
        )
    for lb in s["labels"]:
        lock = " (protected)" if lb["protected"] else ""
        gate = " (eval gate)" if lb["require_eval_gate"] else ""
        typer.echo(f"  {lb['name']} -> {lb['ref']}{lock}{gate}")
    served = s["served"]
    if served["mode"] == "experiment":
        split = ", ".join(f"v{v['version']} {v['weight']:.0%}" for v in served["split"])
        typer.echo(f"serving: experiment {served['experiment_id']}: {split}")
    elif served["mode"] == "label":
        typer.echo(f"serving: v{served['version']} (production)")
    else:
        typer.echo("serving: the platform assistant's own prompt (no production version)")
    rollout = s.get("rollout")
    if rollout:
        typer.echo(
            f"rollout {rollout['id']}: v{rollout['candidate_version']} {rollout['status']}, "
            f"step {rollout['step_index'] + 1}/{len(rollout['plan'])} at {rollout['weight']:.0%}"
        )
        if rollout.get("outcome_reason"):
            typer.echo(f"  {rollout['outcome_reason']}")
    live = s.get("live")
    if live and live.get("history"):
        last = live["history"][-1]
        typer.echo(
            f"  last look: {last['verdict']} (canary {last['canary_n']}, "
            f"control {last['control_n']} calls)"
        )


# -- experiments ---------------------------------------------------------------------------


@experiment_app.command("start")
def experiment_start(
    agent_id: str,
    name: Annotated[str, typer.Option(help="What is being tested")],
    variant: Annotated[list[str], typer.Option(help="VERSION=WEIGHT, e.g. 3=0.5")],
    reason: Reason,
    control: Annotated[
        int | None, typer.Option(help="Control version (default: production)")
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Split traffic across versions; control gets the weight the variants leave."""
    variants = [
        {"version": int(k), "weight": float(v)} for k, v in _pairs(variant, "--variant").items()
    ]
    exp = call(
        "POST",
        f"{_base(agent_id)}/experiments",
        {"name": name, "variants": variants, "control_version": control, "reason": reason},
    )
    _experiments(exp, "Experiment started", as_json)


@experiment_app.command("results")
def experiment_results(agent_id: str, experiment_id: int, as_json: AsJson = False) -> None:
    """Per variant: calls, quality score with its CI, completion, transfers, latency, verdict."""
    r = call("GET", f"{_base(agent_id)}/experiments/{experiment_id}")
    if as_json:
        print_json(r)
        return
    typer.echo(f"{r['experiment']['name']} ({r['experiment']['status']}): {r['verdict']}")
    typer.echo(f"  {r['summary']}")
    for v in r["variants"]:
        score = f"{v['score']:.1f}" if v["score"] is not None else "-"
        ci = v["score_ci95"]
        band = f" [{ci['low']:.1f}, {ci['high']:.1f}]" if ci["low"] is not None else ""
        typer.echo(
            f"  {v['ref']} {v['role']} {v['weight']:.0%}: {v['calls']} calls, score {score}{band}"
            f", verdict {v['verdict']}"
        )


@experiment_app.command("list")
def experiment_list(agent_id: str, as_json: AsJson = False) -> None:
    """List the agent's experiments, newest first."""
    _experiments(call("GET", f"{_base(agent_id)}/experiments"), "Experiments", as_json)


@experiment_app.command("stop")
def experiment_stop(
    agent_id: str, experiment_id: int, reason: Reason, as_json: AsJson = False
) -> None:
    """Stop an A/B experiment; callers return to production."""
    exp = call("POST", f"{_base(agent_id)}/experiments/{experiment_id}/stop", {"reason": reason})
    _experiments(exp, "Experiment stopped", as_json)


# -- rollouts ------------------------------------------------------------------------------


@rollout_app.command("start")
def rollout_start(
    agent_id: str,
    reason: Reason,
    version: Annotated[int | None, typer.Option(help="Candidate version")] = None,
    label_name: Annotated[
        str | None, typer.Option("--label", help="Candidate by label (e.g. staging)")
    ] = None,
    step: Annotated[
        list[str] | None,
        typer.Option(
            help="WEIGHT:HOLD_S:MIN_CALLS:MAX_S per step, e.g. 0.05:1800:50:86400 "
            "(default 5% -> 25% -> 50% -> 100%, 30 min holds). MIN_CALLS is at least 20 (the "
            "guards' per-arm minimum) and one step must be below 100%; a step passes only on "
            "a look that tested the guards"
        ),
    ] = None,
    check_interval: Annotated[float, typer.Option(help="Seconds between guard looks")] = 60.0,
    as_json: AsJson = False,
) -> None:
    """Start a canary rollout from production to a candidate; rolls back on a guard breach."""
    steps = None
    if step:
        steps = []
        for s in step:
            parts = s.split(":")
            if len(parts) != 4:
                typer.echo(
                    f"error: --step must be WEIGHT:HOLD_S:MIN_CALLS:MAX_S, got '{s}'", err=True
                )
                raise typer.Exit(2)
            steps.append(
                {
                    "weight": float(parts[0]),
                    "hold_s": float(parts[1]),
                    "min_canary_calls": int(parts[2]),
                    "max_duration_s": float(parts[3]),
                }
            )
    body = {
        "candidate_version": version,
        "candidate_label": label_name,
        "steps": steps,
        "check_interval_s": check_interval,
        "reason": reason,
    }
    started = call("POST", f"{_base(agent_id)}/rollouts", body)
    if as_json:
        print_json(started)
        return
    typer.echo(
        f"rollout {started['workflow_id']} started: v{started['control_version']} -> "
        f"v{started['candidate_version']}"
    )


@rollout_app.command("status")
def rollout_status(agent_id: str, as_json: AsJson = False) -> None:
    """The latest rollout with its live status: step, weights, samples, verdict history."""
    current = call("GET", f"{_base(agent_id)}/rollouts/current")
    if as_json:
        print_json(current)
        return
    r = current["rollout"]
    typer.echo(
        f"rollout {r['id']} ({r['workflow_id']}): v{r['control_version']} -> "
        f"v{r['candidate_version']} {r['status']}, step {r['step_index'] + 1}/{len(r['plan'])} "
        f"at {r['weight']:.0%}"
    )
    if r.get("outcome_reason"):
        typer.echo(f"  {r['outcome_reason']}")
    live = current.get("live") or {}
    if live.get("reason") and live["reason"] != r.get("outcome_reason"):
        typer.echo(f"  {live['reason']}")
    looks = live.get("history") or []
    if not looks and current.get("last_check"):
        last = current["last_check"]
        typer.echo(f"  last look {last['at'][:19]}: {last['verdict']}: {last['reason']}")
        return
    table = Table(title="Guard looks (latest last)")
    for column in ("at", "step", "weight", "verdict", "canary", "control", "scores", "reason"):
        table.add_column(column)
    for h in looks[-10:]:
        scores = "-"
        if h["canary_score"] is not None and h["control_score"] is not None:
            scores = f"{h['canary_score']:.1f} vs {h['control_score']:.1f}"
        table.add_row(
            h["at"][11:19],
            str(h["step_index"] + 1),
            f"{h['weight']:.0%}",
            h["verdict"],
            str(h["canary_n"]),
            str(h["control_n"]),
            scores,
            h["reason"][:80],
        )
    if looks:
        Console().print(table)


def _signal(agent_id: str, action: str, reason: str) -> None:
    sent = call("POST", f"{_base(agent_id)}/rollouts/current/{action}", {"reason": reason})
    typer.echo(f"{action} sent to {sent['workflow_id']}")


@rollout_app.command("pause")
def rollout_pause(agent_id: str, reason: Reason = "") -> None:
    """Freeze the rollout at its current weight (hold time stops counting)."""
    _signal(agent_id, "pause", reason)


@rollout_app.command("resume")
def rollout_resume(agent_id: str, reason: Reason = "") -> None:
    """Resume a paused rollout (also after a pause for missing data)."""
    _signal(agent_id, "resume", reason)


@rollout_app.command("abort")
def rollout_abort(agent_id: str, reason: Reason = "") -> None:
    """Roll back now: canary weight 0, production unchanged."""
    _signal(agent_id, "abort", reason)


@rollout_app.command("promote")
def rollout_promote(agent_id: str, reason: Reason = "") -> None:
    """Skip the remaining steps and promote the candidate to production now."""
    _signal(agent_id, "promote", reason)
