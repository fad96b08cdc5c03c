"""Rendering a prompt version's templates with Backline's variables.

Backline's variables live in their own namespace: ``{{backline.name}}``, ``{{backline_name}}``
(spaces inside the braces allowed). Every other ``{{...}}`` is a platform's own variable
(VAPI's ``{{customer.number}}``, Retell's and Bland's dynamic variables) and is left exactly as
written. Rendering is a pure function of its arguments: no clock (``now`` is passed in), no
I/O, so the hot path can call it on every assistant request.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from core.memory.schemas import CallerContext

VARIABLE = re.compile(r"\{\{\s*backline[._]([A-Za-z][A-Za-z0-9_]*)\s*\}\}")
VARIABLE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
TIMEZONE_VARIABLE = "timezone"

BUILTIN_VARIABLES: dict[str, str] = {
    "caller_known": "'yes' when Backline remembers this caller, else 'no'",
    "memory_summary": "summaries of the caller's last calls ('' for a first call)",
    "caller_facts": "current facts about the caller, 'key: value; ...'",
    "call_count": "how many earlier calls Backline remembers",
    "last_call_at": "when the caller last called (ISO 8601, '' if never)",
    "now": "the current time (ISO 8601) in the version's timezone (default UTC)",
    "date": "today's date (YYYY-MM-DD) in the version's timezone",
    "time": "the current time (HH:MM) in the version's timezone",
    "weekday": "today's weekday name in the version's timezone",
    "agent_id": "the agent's id",
    "agent_name": "the agent's display name",
    "prompt_version": "the served version, e.g. 'v3'",
}


def referenced_variables(*texts: str | None) -> set[str]:
    """Names of the Backline variables the texts use (without the namespace)."""
    names: set[str] = set()
    for text in texts:
        if text:
            names.update(m.group(1) for m in VARIABLE.finditer(text))
    return names


def _neutralize(value: str) -> str:
    # Values come partly from what callers said. A platform renders its own {{...}} after us,
    # so caller-derived text must never become a template expression there.
    return value.replace("{{", "{ {").replace("}}", "} }")


def _clock(now: datetime, variables: Mapping[str, Any]) -> dict[str, str]:
    tz_name = str(variables.get(TIMEZONE_VARIABLE) or "UTC")
    try:
        local = now.astimezone(ZoneInfo(tz_name))
    except (ZoneInfoNotFoundError, ValueError):
        local = now  # validated at push time; a vanished tz database falls back to UTC
    return {
        "now": local.isoformat(timespec="seconds"),
        "date": local.date().isoformat(),
        "time": local.strftime("%H:%M"),
        "weekday": local.strftime("%A"),
    }


def caller_variables(ctx: CallerContext) -> dict[str, str]:
    return {
        "caller_known": "yes" if ctx.known else "no",
        "memory_summary": ctx.summary,
        "caller_facts": "; ".join(f"{k.replace('_', ' ')}: {v}" for k, v in ctx.facts.items()),
        "call_count": str(ctx.call_count),
        "last_call_at": ctx.last_call_at.isoformat() if ctx.last_call_at else "",
    }


def build_variables(
    *,
    version_variables: Mapping[str, Any],
    context: CallerContext,
    now: datetime,
    agent_id: str,
    agent_name: str,
    prompt_version: str,
) -> dict[str, str]:
    """Every variable a template may use. Built-ins win over a version's own defaults, so a
    version cannot shadow what Backline knows about the caller."""
    values = {k: str(v) for k, v in version_variables.items()}
    values.update(_clock(now, version_variables))
    values.update(caller_variables(context))
    values.update(
        {"agent_id": agent_id, "agent_name": agent_name, "prompt_version": prompt_version}
    )
    return values


def render(template: str, values: Mapping[str, str]) -> str:
    """Substitute Backline variables; unknown Backline names render empty (push validation
    rejects them, so this only guards against a version older than a removed built-in)."""
    return VARIABLE.sub(lambda m: _neutralize(values.get(m.group(1), "")), template)


def unknown_variables(declared: Mapping[str, Any], *texts: str | None) -> list[str]:
    return sorted(referenced_variables(*texts) - set(BUILTIN_VARIABLES) - set(declared))


def valid_timezone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True
