"""Rendering: only Backline's namespace is substituted; platform variables survive."""

from __future__ import annotations

from datetime import UTC, datetime

from core.memory.schemas import CallerContext
from core.prompts.render import build_variables, render, unknown_variables

NOW = datetime(2026, 3, 2, 17, 5, tzinfo=UTC)
CTX = CallerContext(
    known=True, summary="Asked about a leak", facts={"contact_preference": "email"}, call_count=2
)


def _values(**version_vars: str) -> dict[str, str]:
    return build_variables(
        version_variables=version_vars,
        context=CTX,
        now=NOW,
        agent_id="acme",
        agent_name="Acme",
        prompt_version="v3",
    )


def test_both_spellings_render_and_platform_variables_are_left_alone() -> None:
    template = (
        "Known: {{backline.caller_known}} / {{ backline_memory_summary }}. "
        "Facts: {{backline_caller_facts}}. Call {{customer.number}} at {{ now }}; "
        "{{backlinex}} {{ backline.prompt_version }} {{backline.brand}}"
    )
    out = render(template, _values(brand="Acme Plumbing"))
    assert out == (
        "Known: yes / Asked about a leak. Facts: contact preference: email. "
        "Call {{customer.number}} at {{ now }}; {{backlinex}} v3 Acme Plumbing"
    )


def test_caller_derived_text_never_becomes_a_platform_template() -> None:
    ctx = CallerContext(known=True, summary="said {{customer.number}} twice")
    values = build_variables(
        version_variables={},
        context=ctx,
        now=NOW,
        agent_id="a",
        agent_name="A",
        prompt_version="v1",
    )
    out = render("{{backline.memory_summary}}", values)
    assert "{{" not in out and "customer.number" in out


def test_clock_variables_follow_the_version_timezone() -> None:
    out = render(
        "{{backline.date}} {{backline.time}} {{backline.weekday}}",
        _values(timezone="America/New_York"),
    )
    assert out == "2026-03-02 12:05 Monday"
    assert render("{{backline.time}}", _values()) == "17:05"


def test_built_ins_win_over_version_defaults_and_unknown_names_are_reported() -> None:
    values = build_variables(
        version_variables={"caller_known": "forged"},
        context=CTX,
        now=NOW,
        agent_id="a",
        agent_name="A",
        prompt_version="v1",
    )
    assert values["caller_known"] == "yes"
    assert unknown_variables({"brand": "x"}, "{{backline.brand}} {{backline.nope}}", None) == [
        "nope"
    ]
    assert unknown_variables({}, "{{customer.name}} {{backline_now}}") == []
