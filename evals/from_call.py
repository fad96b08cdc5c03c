"""A regression scenario from a recorded call: the YAML a scenario file would hold.

:func:`scenario_from_call` turns a stored call (its redacted transcript, its events and the tool
calls it made) into the text of one scenario file in the format of docs/evals.md: the caller's
lines become scripted ``turns``, the tools that answered become ``tools_called`` expectations
with their arguments. A pure function of its arguments (no database, no clock), so the
dashboard, the API and the CLI can all offer it; what it returns loads with ``load_suite``.

Stored data is redacted: an argument value holding a placeholder (``[CARD]``, a masked phone
number) cannot be replayed as it was, so it is expected only to be ``present``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import yaml

__all__ = ["NoCallerTurnsError", "scenario_from_call"]

_VERSION_REF = re.compile(r"^v(\d{1,9})$")
# Placeholders ``core.pii.redact`` leaves in stored text, and masked phone numbers.
_REDACTED = re.compile(r"\[[A-Z_]{3,}\]|•")
TOOL_EVENT = "tool_call"
RETRIEVAL_EVENT = "knowledge_retrieval"


class NoCallerTurnsError(ValueError):
    """The call has no caller line to script (the caller never spoke, or no transcript)."""


def _get(obj: Any, name: str, default: Any = None) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(name, default)
    return getattr(obj, name, default)


def _arg_constraint(value: Any) -> Any:
    """A bare value (``equals``), ``{equals: ...}`` for a mapping or a list, ``{present: true}``
    for a value the redaction changed."""
    if isinstance(value, str) and _REDACTED.search(value):
        return {"present": True}
    if isinstance(value, dict | list):
        if _REDACTED.search(str(value)):
            return {"present": True}
        return {"equals": value}
    return value


def _expectations(tool_calls: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One expectation per distinct successful (tool, arguments) pair, in call order."""
    seen: set[str] = set()
    out: list[dict[str, Any]] = []
    for tc in tool_calls:
        name = str(tc.get("tool") or tc.get("name") or "").strip()
        ok = tc.get("ok", tc.get("status") == "ok")
        if not name or not ok:
            continue
        arguments = tc.get("arguments") or {}
        args = (
            {str(k): _arg_constraint(v) for k, v in sorted(arguments.items())}
            if isinstance(arguments, Mapping)
            else {}
        )
        key = repr((name, sorted(args.items(), key=lambda kv: kv[0])))
        if key in seen:
            continue
        seen.add(key)
        out.append({"name": name, "args": args} if args else {"name": name})
    return out


def scenario_from_call(
    call: Any, events: Iterable[Any], tool_calls: Iterable[Mapping[str, Any]]
) -> str:
    """The YAML of a regression scenario replaying ``call``.

    ``call``: a ``Call`` row or a mapping with its fields (``agent_id``, ``platform``,
    ``platform_call_id`` or ``call_id``, ``transcript``, ``prompt_version``, ``started_at``,
    ``analysis``). ``events``: its ``CallEvent`` rows or mappings (``type``, ``data``);
    ``tool_call`` events there count as tool calls when ``tool_calls`` is empty.
    ``tool_calls``: the tool calls made, each with ``tool`` (or ``name``), ``arguments`` and
    ``ok`` (or ``status``). Failed tool calls are not expected (a replay should not fail).

    Raises ``NoCallerTurnsError`` when the transcript has no caller line.
    """
    call_id = str(_get(call, "platform_call_id") or _get(call, "call_id") or "?")
    platform = str(_get(call, "platform") or "?")
    agent_id = _get(call, "agent_id")
    transcript = _get(call, "transcript") or []
    lines = [
        str(t.get("text", "")).strip()
        for t in transcript
        if isinstance(t, Mapping) and t.get("role") in ("caller", "user")
    ]
    lines = [line for line in lines if line]
    if not lines:
        raise NoCallerTurnsError(f"call {call_id} has no caller line to script")
    event_list = [(str(_get(e, "type") or ""), dict(_get(e, "data") or {})) for e in events]
    calls = list(tool_calls) or [data for kind, data in event_list if kind == TOOL_EVENT]
    retrievals = sum(1 for kind, _ in event_list if kind == RETRIEVAL_EVENT)
    agent_turns = sum(
        1 for t in transcript if isinstance(t, Mapping) and t.get("role") in ("agent", "bot")
    )

    started = _get(call, "started_at")
    when = f" on {started:%Y-%m-%d %H:%M} UTC" if isinstance(started, datetime) else ""
    version = _VERSION_REF.match(str(_get(call, "prompt_version") or ""))
    description = (
        f"Replays {platform} call {call_id}{when}: the caller's {len(lines)} line(s) as "
        f"transcribed (redacted), {len(calls)} tool call(s), {retrievals} knowledge "
        "retrieval(s). Review the expectations before adding it to a suite."
    )
    scenario: dict[str, Any] = {
        "name": f"regression {platform} {call_id}",
        "description": description,
        "tags": ["regression", "from-call"],
    }
    if agent_id:
        scenario["agent"] = str(agent_id)
    if version is not None:
        scenario["version"] = int(version.group(1))
    scenario["turns"] = lines
    expect: dict[str, Any] = {}
    called = _expectations(calls)
    if called:
        expect["tools_called"] = called
    analysis = _get(call, "analysis") or {}
    if isinstance(analysis, Mapping) and isinstance(analysis.get("transferred"), bool):
        expect["transfer"] = analysis["transferred"]
    if agent_turns:
        expect["max_turns"] = agent_turns + 2
    if expect:
        scenario["expect"] = expect
    header = f"# Regression scenario from {platform} call {call_id} (stored, redacted data).\n"
    body = yaml.safe_dump(scenario, sort_keys=False, allow_unicode=True, width=100)
    return header + str(body)
