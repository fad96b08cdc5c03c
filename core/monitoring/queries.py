"""Read-only monitoring queries for dashboards: an agent's open alerts.

Each function takes a ``Session`` and returns plain dicts. They never write, flush or commit.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from core.monitoring import repository as repo


def open_alert_rows(
    session: Session, agent_id: str, kind_prefix: str, org_id: str | None = None
) -> list[dict[str, Any]]:
    """An agent's open alerts whose kind starts with ``kind_prefix`` (``knowledge_``,
    ``prompt_``), newest first, for the dashboard page of the thing they are about."""
    return [
        {
            "id": a.id,
            "created_at": a.created_at,
            "kind": a.kind,
            "severity": a.severity,
            "state": a.state,
            "message": a.message,
        }
        for a in repo.open_alerts_of_kind(session, agent_id, kind_prefix, org_id)
    ]
