"""The names audit events give what they are about (their ``target``).

Whatever belongs to an agent is named under ``agent:<agent id>``, so listing the audit trail
for one agent (``AuditFilter.agent_id``) finds it by that prefix.
"""

from __future__ import annotations

_NO_KEY = object()


def agent_target(agent_id: str, kind: str | None = None, key: object = _NO_KEY) -> str:
    """``agent:<agent_id>``; with ``kind`` one of its things, ``agent:<agent_id>/<kind>``, and
    with ``key`` too, ``agent:<agent_id>/<kind>:<key>`` (e.g. ``agent:a1/source:src_1``)."""
    target = f"agent:{agent_id}"
    if kind is None:
        return target
    return f"{target}/{kind}" if key is _NO_KEY else f"{target}/{kind}:{key}"


def agent_prefix(agent_id: str) -> str:
    """What every target of one of the agent's things starts with."""
    return f"{agent_target(agent_id)}/"
