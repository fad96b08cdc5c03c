"""JUnit XML and HTML reports from a run as the API returns it."""

from __future__ import annotations

from typing import Any
from xml.etree import ElementTree as ET

from evals.reports import html_report, junit_xml


def case(
    scenario: str, persona: str | None, repeat: int, status: str, **extra: Any
) -> dict[str, Any]:
    return {
        "scenario": scenario,
        "persona": persona,
        "repeat": repeat,
        "status": status,
        "reason": extra.get("reason"),
        "checks": extra.get("checks", []),
        "transcript": [{"role": "agent", "text": "<b>Hi</b> & welcome"}],
        "seconds": 0.5,
    }


RUN = {
    "id": "r1",
    "suite": "booking",
    "status": "failed",
    "verdict": "inconclusive",
    "agent_id": "demo",
    "scenarios": [{"scenario": "book", "persona": "angry", "passed": 1, "runs": 2, "skipped": 0}],
    "cases": [
        case("book", "angry", 0, "passed"),
        case(
            "book",
            "angry",
            1,
            "failed",
            checks=[
                {
                    "name": "says booked",
                    "layer": "reaction",
                    "passed": False,
                    "detail": "never said",
                }
            ],
        ),
        case("book", None, 0, "passed"),
        case("sim", None, 0, "skipped", reason="skipped: simulated caller needs an LLM"),
    ],
}


def test_junit_has_one_testcase_per_scenario_and_persona() -> None:
    root = ET.fromstring(junit_xml(RUN).split("\n", 1)[1])
    cases = {c.get("name"): c for c in root.iter("testcase")}
    assert set(cases) == {"book [angry]", "book", "sim"}
    assert root.get("tests") == "3" and root.get("failures") == "1" and root.get("skipped") == "1"
    failure = cases["book [angry]"].find("failure")
    assert failure is not None and failure.get("message") == "passed 1/2 runs"
    assert "[reaction] says booked: never said" in (failure.text or "")
    assert cases["book"].find("failure") is None
    skipped = cases["sim"].find("skipped")
    assert skipped is not None and "needs an LLM" in (skipped.get("message") or "")


def test_html_is_self_contained_and_escaped() -> None:
    page = html_report(RUN)
    assert page.startswith("<!doctype html>") and "<script" not in page and "http" not in page
    assert "&lt;b&gt;Hi&lt;/b&gt; &amp; welcome" in page and "never said" in page
