"""Eval run reports from a run as the API returns it (``GET /v1/evals/runs/{id}?cases=true``):
JUnit XML (one ``testcase`` per scenario x persona, for CI) and a self-contained HTML page."""

from __future__ import annotations

import html
from collections.abc import Iterable
from typing import Any
from xml.etree import ElementTree as ET

__all__ = ["cost_line", "group_cases", "html_report", "junit_xml", "usd"]


def usd(value: Any) -> str:
    """A cost for people: ``0.0123 USD``; ``unknown`` for None."""
    return "unknown" if value is None else f"{float(value):.4f} USD"


def cost_line(cost: dict[str, Any] | None) -> str:
    """The run's tokens and LLM cost (``cost`` of a run as the API returns it) in one line."""
    if not cost:
        return "tokens and cost: not recorded"
    line = (
        f"tokens: {cost.get('prompt_tokens', 0)} in, {cost.get('completion_tokens', 0)} out; "
        f"cost {usd(cost.get('cost_usd'))}"
    )
    unknown = int(cost.get("cost_unknown_runs") or 0)
    if unknown and cost.get("cost_usd") is not None:
        line += f" (plus {unknown} case(s) of unknown cost)"
    if cost.get("cost_cap_usd") is not None:
        line += f"; cap {float(cost['cost_cap_usd']):.2f} USD"
    return line


def group_cases(run: dict[str, Any]) -> list[tuple[str, str | None, list[dict[str, Any]]]]:
    """(scenario, persona, its cases) in case order."""
    groups: dict[tuple[str, str | None], list[dict[str, Any]]] = {}
    for case in run.get("cases") or []:
        groups.setdefault((case["scenario"], case.get("persona")), []).append(case)
    return [(s, p, cs) for (s, p), cs in groups.items()]


def _name(scenario: str, persona: str | None) -> str:
    return f"{scenario} [{persona}]" if persona else scenario


def _failed_checks(cases: Iterable[dict[str, Any]]) -> list[str]:
    lines = []
    for case in cases:
        if case["status"] == "error" and case.get("reason"):
            lines.append(f"repeat {case['repeat']}: error: {case['reason']}")
        for check in case.get("checks") or []:
            if check.get("passed") is False:
                lines.append(
                    f"repeat {case['repeat']}: [{check['layer']}] {check['name']}: "
                    f"{check.get('detail') or 'failed'}"
                )
    return lines


def junit_xml(run: dict[str, Any]) -> str:
    """JUnit XML: a ``testcase`` per scenario x persona, failed when any of its runs failed,
    skipped when all were skipped."""
    groups = group_cases(run)
    suite = ET.Element(
        "testsuite",
        name=str(run.get("suite") or "evals"),
        tests=str(len(groups)),
        id=str(run.get("id", "")),
    )
    failures = skipped = 0
    for scenario, persona, cases in groups:
        seconds = sum(float(c.get("seconds") or 0) for c in cases)
        case_el = ET.SubElement(
            suite,
            "testcase",
            classname=str(run.get("suite") or "evals"),
            name=_name(scenario, persona),
            time=f"{seconds:.3f}",
        )
        counted = [c for c in cases if c["status"] != "skipped"]
        passed = sum(1 for c in counted if c["status"] == "passed")
        if not counted:
            skipped += 1
            reasons = sorted({c.get("reason") or "skipped" for c in cases})
            ET.SubElement(case_el, "skipped", message="; ".join(reasons))
        elif passed < len(counted):
            failures += 1
            failure = ET.SubElement(
                case_el, "failure", message=f"passed {passed}/{len(counted)} runs"
            )
            failure.text = "\n".join(_failed_checks(counted))
        out = ET.SubElement(case_el, "system-out")
        out.text = f"passed {passed}/{len(counted)} runs, {len(cases) - len(counted)} skipped"
    suite.set("failures", str(failures))
    suite.set("skipped", str(skipped))
    suite.set("errors", "0")
    props = ET.Element("properties")
    summary = {"cost": cost_line(run.get("cost")), "stop_reason": run.get("stop_reason")}
    summary |= {f"warning{i}": w for i, w in enumerate(run.get("warnings") or [], 1)}
    for name, value in summary.items():
        if value:
            ET.SubElement(props, "property", name=name, value=str(value))
    suite.insert(0, props)
    ET.indent(suite)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suite, encoding="unicode")


_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;
text-align:left;vertical-align:top}.passed{color:#1a7f37}.failed,.error,.regressed{color:#c0392b}
.skipped,.inconclusive{color:#9a6700}details{margin:.5em 0}.turn{margin:2px 0}
.agent{color:#0550ae}.caller{color:#444}
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def html_report(run: dict[str, Any]) -> str:
    """One self-contained page (no scripts, no external assets): the run, per scenario x
    persona its tally and verdict, and each case's checks and transcript."""
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>Eval run {_e(run.get('id'))}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{_e(run.get('suite'))}: <span class='{_e(run.get('status'))}'>"
        f"{_e(run.get('status'))}</span></h1>",
        f"<p>Run {_e(run.get('id'))} of agent {_e(run.get('agent_id'))}, target "
        f"{_e(run.get('label') or run.get('version') or 'production')}; verdict "
        f"{_e(run.get('verdict'))}; baseline {_e(run.get('baseline_run_id') or 'none')}.</p>",
        f"<p>{_e(cost_line(run.get('cost')))}</p>",
        *([f"<p><b>{_e(run['stop_reason'])}</b></p>"] if run.get("stop_reason") else []),
        *(f"<p class='skipped'>warning: {_e(w)}</p>" for w in run.get("warnings") or []),
        "<table><tr><th>scenario</th><th>persona</th><th>passed</th><th>skipped</th>"
        "<th>verdict</th><th>why</th></tr>",
    ]
    for row in run.get("scenarios") or []:
        parts.append(
            f"<tr><td>{_e(row.get('scenario'))}</td><td>{_e(row.get('persona'))}</td>"
            f"<td>{_e(row.get('passed'))}/{_e(row.get('runs'))}</td><td>{_e(row.get('skipped'))}"
            f"</td><td class='{_e(row.get('verdict'))}'>{_e(row.get('verdict'))}</td>"
            f"<td>{_e(row.get('reason'))}</td></tr>"
        )
    parts.append("</table>")
    for scenario, persona, cases in group_cases(run):
        parts.append(f"<h2>{_e(_name(scenario, persona))}</h2>")
        for case in cases:
            status = _e(case["status"])
            parts.append(
                f"<details><summary>repeat {_e(case['repeat'])}: <span class='{status}'>"
                f"{status}</span> {_e(case.get('reason') or '')}</summary>"
                "<table><tr><th>layer</th><th>check</th><th>result</th><th>detail</th></tr>"
            )
            for check in case.get("checks") or []:
                state = {True: "passed", False: "failed", None: "skipped"}[check.get("passed")]
                parts.append(
                    f"<tr><td>{_e(check.get('layer'))}</td><td>{_e(check.get('name'))}</td>"
                    f"<td class='{state}'>{state}</td><td>{_e(check.get('detail'))}</td></tr>"
                )
            parts.append("</table>")
            for turn in case.get("transcript") or []:
                role = _e(turn.get("role"))
                parts.append(
                    f"<div class='turn {role}'><b>{role}</b>: {_e(turn.get('text'))}</div>"
                )
            parts.append("</details>")
    parts.append("</body></html>")
    return "\n".join(parts)
