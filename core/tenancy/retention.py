"""Retention per organization: how long raw payloads, transcripts and memories are kept, and
the purge that enforces it (run by ``RetentionWorkflow`` on a Temporal Schedule).

Raw payloads are blanked (the inbox rows stay: they hold idempotency), transcripts are emptied
(the call and its score stay), memories (summaries and facts) are deleted with their vectors and
the caller's profile rebuilt. Every purge that removed something is audited with counts only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import func, update
from sqlmodel import Session, col, select

from core.audit.service import record_audit
from core.calls.models import Call, RejectedWebhook, WebhookInbox
from core.errors import NotFoundError
from core.memory.service import MemoryService
from core.tenancy import repository as repo
from core.tenancy.models import Organization

Days = int | None
MAX_DAYS = 36500


class RetentionUpdate(BaseModel):
    """Fields left out are unchanged; ``null`` resets one (raw payloads: the deployment
    default; transcripts and memories: kept)."""

    raw_payload_days: Days = Field(strict=True, default=None, ge=0, le=MAX_DAYS)
    transcript_days: Days = Field(strict=True, default=None, ge=0, le=MAX_DAYS)
    memory_days: Days = Field(strict=True, default=None, ge=0, le=MAX_DAYS)


class RetentionPublic(BaseModel):
    org_id: str
    raw_payload_days: Days
    transcript_days: Days
    memory_days: Days
    effective_raw_payload_days: int = Field(description="After the deployment default")


@dataclass(frozen=True)
class PurgeCounts:
    raw_payloads: int = 0
    transcripts: int = 0
    memories: int = 0

    @property
    def total(self) -> int:
        return self.raw_payloads + self.transcripts + self.memories


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


class RetentionService:
    def __init__(self, session: Session, default_raw_payload_days: int) -> None:
        self.session = session
        self.default_raw_payload_days = default_raw_payload_days

    def _org(self, org_id: str) -> Organization:
        org = repo.get_org(self.session, org_id)
        if org is None:
            raise NotFoundError(f"no organization '{org_id}'")
        return org

    def get(self, org_id: str) -> RetentionPublic:
        org = self._org(org_id)
        return RetentionPublic(
            org_id=org.id,
            raw_payload_days=org.raw_payload_days,
            transcript_days=org.transcript_days,
            memory_days=org.memory_days,
            effective_raw_payload_days=(
                org.raw_payload_days
                if org.raw_payload_days is not None
                else self.default_raw_payload_days
            ),
        )

    def update(self, org_id: str, data: RetentionUpdate, actor: str) -> RetentionPublic:
        org = self._org(org_id)
        changed = {k: getattr(data, k) for k in sorted(data.model_fields_set)}
        for key, value in changed.items():
            setattr(org, key, value)
        self.session.add(org)
        record_audit(
            self.session,
            actor=actor,
            action="org.retention.set",
            target=f"org:{org_id}",
            org_id=org_id,
            detail=changed,
        )
        return self.get(org_id)

    def org_ids(self) -> list[str]:
        return [o.id for o in repo.list_orgs(self.session)]

    def purge_unowned(self, now: datetime) -> int:
        """Rejected webhooks nobody could attribute to an organization: the default window."""
        before = now - timedelta(days=self.default_raw_payload_days)
        return _rowcount(
            self.session.execute(
                update(RejectedWebhook)
                .where(
                    col(RejectedWebhook.org_id).is_(None),
                    col(RejectedWebhook.received_at) < before,
                    col(RejectedWebhook.payload).is_not(None),
                )
                .values(payload=None)
            )
        )

    def purge_org(self, org_id: str, now: datetime, memory: MemoryService) -> PurgeCounts:
        """Apply the organization's windows as of ``now``; the caller commits, then applies
        ``memory``'s pending vector deletes."""
        policy = self.get(org_id)
        s = self.session
        raw_before = now - timedelta(days=policy.effective_raw_payload_days)
        raw = sum(
            _rowcount(
                s.execute(
                    update(model)
                    .where(
                        col(model.org_id) == org_id,
                        col(model.received_at) < raw_before,
                        col(model.payload).is_not(None),
                    )
                    .values(payload=None)
                )
            )
            for model in (WebhookInbox, RejectedWebhook)
        )
        transcripts = 0
        if policy.transcript_days is not None:
            before = now - timedelta(days=policy.transcript_days)
            ended = func.coalesce(col(Call.ended_at), col(Call.created_at))
            stmt = select(Call).where(Call.org_id == org_id, ended < before)
            for call in s.exec(stmt):
                # JSON emptiness is checked here: portable across SQLite and Postgres.
                if call.transcript:
                    call.transcript = []
                    s.add(call)
                    transcripts += 1
        memories = 0
        if policy.memory_days is not None:
            memories = memory.expire_before(org_id, now - timedelta(days=policy.memory_days))
        counts = PurgeCounts(raw, transcripts, memories)
        if counts.total:
            record_audit(
                s,
                actor="system:retention",
                action="retention.purge",
                target=f"org:{org_id}",
                org_id=org_id,
                detail={
                    "raw_payloads": raw,
                    "transcripts": transcripts,
                    "memories": memories,
                    "as_of": now.isoformat(),
                },
            )
        return counts
