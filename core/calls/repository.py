"""Call, inbox and event queries. Returns models or None; never commits."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, or_, update
from sqlmodel import Session, col, select

from core.calls.models import Call, CallEvent, RejectedWebhook, WebhookInbox
from core.monitoring.models import CallScore
from core.tools.models import ToolInvocation


def find_inbox(
    session: Session,
    agent_id: str,
    platform: str,
    event_type: str,
    call_id: str,
    payload_hash: str,
) -> WebhookInbox | None:
    stmt = select(WebhookInbox).where(
        WebhookInbox.agent_id == agent_id,
        WebhookInbox.platform == platform,
        WebhookInbox.event_type == event_type,
        WebhookInbox.call_id == call_id,
        WebhookInbox.payload_hash == payload_hash,
    )
    return session.exec(stmt).first()


def inbox_payloads_for_call(
    session: Session, agent_id: str, platform: str, event_type: str, call_id: str
) -> list[str]:
    """One agent's stored raw payloads for one call, oldest first (purged ones skipped)."""
    stmt = (
        select(WebhookInbox.payload)
        .where(
            WebhookInbox.agent_id == agent_id,
            WebhookInbox.platform == platform,
            WebhookInbox.event_type == event_type,
            WebhookInbox.call_id == call_id,
            col(WebhookInbox.payload).is_not(None),
        )
        .order_by(col(WebhookInbox.id))
    )
    return [p for p in session.exec(stmt) if p is not None]


def count_inbox(
    session: Session, agent_id: str, platform: str, event_type: str, call_id: str
) -> int:
    """How many payloads (revisions) one agent's call has in the inbox."""
    stmt = select(func.count()).where(
        WebhookInbox.agent_id == agent_id,
        WebhookInbox.platform == platform,
        WebhookInbox.event_type == event_type,
        WebhookInbox.call_id == call_id,
    )
    return int(session.exec(stmt).one())


def mark_inbox_dispatched(session: Session, inbox_ids: Sequence[int], now: datetime) -> None:
    """Stamp ``dispatched_at`` on those rows that have none yet."""
    if not inbox_ids:
        return
    session.execute(
        update(WebhookInbox)
        .where(col(WebhookInbox.id).in_(inbox_ids), col(WebhookInbox.dispatched_at).is_(None))
        .values(dispatched_at=now)
    )


def undispatched_inbox(
    session: Session, older_than: datetime, now: datetime, limit: int = 100
) -> list[WebhookInbox]:
    """Rows whose workflow has not started and that are due, fewest tries first.

    Rows backing off (``next_dispatch_at`` ahead) and rows given up on are skipped, and a
    row tried before comes after every row not tried yet, so rows that cannot start never
    fill the batch ahead of new ones.
    """
    stmt = (
        select(WebhookInbox)
        .where(
            col(WebhookInbox.dispatched_at).is_(None),
            col(WebhookInbox.dispatch_failed_at).is_(None),
            col(WebhookInbox.workflow_id).is_not(None),
            col(WebhookInbox.received_at) < older_than,
            or_(
                col(WebhookInbox.next_dispatch_at).is_(None),
                col(WebhookInbox.next_dispatch_at) <= now,
            ),
        )
        .order_by(col(WebhookInbox.dispatch_attempts), col(WebhookInbox.id))
        .limit(limit)
    )
    return list(session.exec(stmt))


def charge_dispatch_attempt(
    session: Session, inbox_id: int, seen_attempts: int, values: dict[str, Any]
) -> bool:
    """Record one failed start, only if nobody recorded it first (several API processes may
    dispatch the same row): False when the row moved on meanwhile."""
    stmt = (
        update(WebhookInbox)
        .where(
            col(WebhookInbox.id) == inbox_id,
            col(WebhookInbox.dispatch_attempts) == seen_attempts,
            col(WebhookInbox.dispatched_at).is_(None),
            col(WebhookInbox.dispatch_failed_at).is_(None),
        )
        .values(dispatch_attempts=seen_attempts + 1, **values)
    )
    return _affected(session, stmt) == 1


def get_call(session: Session, agent_id: str, platform: str, call_id: str) -> Call | None:
    stmt = select(Call).where(
        Call.agent_id == agent_id, Call.platform == platform, Call.platform_call_id == call_id
    )
    return session.exec(stmt).first()


def list_calls(session: Session, org_id: str, agent_id: str | None, limit: int) -> list[Call]:
    stmt = select(Call).where(Call.org_id == org_id)
    if agent_id:
        stmt = stmt.where(Call.agent_id == agent_id)
    stmt = stmt.order_by(col(Call.created_at).desc(), col(Call.id).desc()).limit(limit)
    return list(session.exec(stmt))


def list_call_events(
    session: Session, agent_id: str, platform: str, call_id: str
) -> list[CallEvent]:
    stmt = (
        select(CallEvent)
        .where(
            CallEvent.agent_id == agent_id,
            CallEvent.platform == platform,
            CallEvent.platform_call_id == call_id,
        )
        .order_by(col(CallEvent.at), col(CallEvent.id))
    )
    return list(session.exec(stmt))


def list_rejected(session: Session, org_id: str | None, limit: int) -> list[RejectedWebhook]:
    stmt = select(RejectedWebhook)
    if org_id is not None:
        stmt = stmt.where(RejectedWebhook.org_id == org_id)
    return list(session.exec(stmt.order_by(col(RejectedWebhook.id).desc()).limit(limit)))


def purge_raw_payloads(session: Session, before: datetime) -> int:
    """Blank raw payloads older than the retention window; the rows themselves stay."""
    inbox = session.execute(
        update(WebhookInbox)
        .where(col(WebhookInbox.received_at) < before, col(WebhookInbox.payload).is_not(None))
        .values(payload=None)
    )
    rejected = session.execute(
        update(RejectedWebhook)
        .where(col(RejectedWebhook.received_at) < before, col(RejectedWebhook.payload).is_not(None))
        .values(payload=None)
    )
    return int(getattr(inbox, "rowcount", 0) or 0) + int(getattr(rejected, "rowcount", 0) or 0)


def _affected(session: Session, stmt: Any) -> int:
    """Rows a DELETE or UPDATE touched."""
    return int(getattr(session.execute(stmt), "rowcount", 0) or 0)


# Tables ``delete_caller_calls`` deletes from (their freed space is scrubbed after a forget).
CALLER_TABLES: tuple[str, ...] = tuple(
    str(m.__tablename__)
    for m in (CallScore, CallEvent, WebhookInbox, ToolInvocation, Call, RejectedWebhook)
)


def delete_caller_calls(session: Session, org_id: str, agent_id: str, caller_hash: str) -> int:
    """Every call-side row of a caller: scores, events, inbox payloads, the side-effecting tool
    runs of their calls (arguments and results may name them), calls, rejections."""
    call_ids = list(
        session.exec(
            select(Call.platform, Call.platform_call_id).where(
                Call.org_id == org_id, Call.agent_id == agent_id, Call.caller_hash == caller_hash
            )
        )
    )
    total = 0
    by_call: tuple[tuple[Any, Any, Any, Any], ...] = (
        (CallScore, CallScore.agent_id, CallScore.platform, CallScore.platform_call_id),
        (CallEvent, CallEvent.agent_id, CallEvent.platform, CallEvent.platform_call_id),
        (WebhookInbox, WebhookInbox.agent_id, WebhookInbox.platform, WebhookInbox.call_id),
        (ToolInvocation, ToolInvocation.agent_id, ToolInvocation.platform, ToolInvocation.call_id),
    )
    for platform, call_id in call_ids:
        # Rows recorded before the caller's number was known still belong to their calls.
        for model, agent_col, platform_col, call_col in by_call:
            total += _affected(
                session,
                delete(model).where(
                    col(agent_col) == agent_id,
                    col(platform_col) == platform,
                    col(call_col) == call_id,
                ),
            )
    for model in (Call, CallEvent, WebhookInbox):
        total += _affected(
            session,
            delete(model).where(
                col(model.org_id) == org_id,
                col(model.agent_id) == agent_id,
                col(model.caller_hash) == caller_hash,
            ),
        )
    total += _affected(
        session,
        delete(RejectedWebhook).where(
            col(RejectedWebhook.agent_id) == agent_id,
            col(RejectedWebhook.caller_hash) == caller_hash,
        ),
    )
    return total


def idle_in_progress_calls(session: Session, cutoff: datetime, limit: int) -> list[Call]:
    """Calls still ``in_progress`` with nothing heard from them since ``cutoff``: no change to
    the row and no event recorded (a context request alone never ends a call)."""
    recent_event = (
        select(CallEvent.id)
        .where(
            CallEvent.agent_id == Call.agent_id,
            CallEvent.platform == Call.platform,
            CallEvent.platform_call_id == Call.platform_call_id,
            CallEvent.at >= cutoff,
        )
        .exists()
    )
    stmt = (
        select(Call)
        .where(Call.status == "in_progress", Call.updated_at < cutoff, ~recent_event)
        .order_by(col(Call.id))
        .limit(limit)
    )
    return list(session.exec(stmt))
