"""Calls: the webhook inbox, rejected webhooks, call events and the stored call record.

Nothing a platform sent is silently dropped: accepted end-of-call payloads go to the inbox
(idempotent on platform, event, call id and payload hash), rejected ones to rejected webhooks
with the reason. Everything derived (events, transcripts) is stored redacted.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from core.calls import repository as repo
from core.calls.events import CallAnalyzed, CallEnded, CallRef, Turn, canonical_end_reason
from core.calls.models import ABANDONED, Call, CallEvent, RejectedWebhook, WebhookInbox
from core.db import utcnow
from core.pii.phone import caller_hash as hash_caller
from core.pii.phone import checked_number, mask_number
from core.pii.redact import redact, redact_json


@dataclass(frozen=True)
class InboxReceipt:
    inbox_id: int
    created: bool
    revision: int
    workflow_id: str


def post_call_workflow_id(platform: str, call_id: str, revision: int) -> str:
    base = f"post-call-{platform}-{call_id}"
    return base if revision <= 1 else f"{base}-r{revision}"


def payload_hash(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


class CallsService:
    def __init__(self, session: Session, secret_key: str) -> None:
        self.session = session
        self._secret_key = secret_key

    def caller_hash(self, number: str | None) -> str | None:
        """The keyed hash that addresses a caller's memory; None without a usable number.

        A withheld or odd caller id ("anonymous", "unknown", a truncated number) is legitimate
        on a webhook but names no one: hashing it would pool every such caller into one shared
        memory, so the call is served without memory instead (``no_memory_reason``)."""
        if not number or checked_number(number) is None:
            return None
        return hash_caller(self._secret_key, number)

    @staticmethod
    def no_memory_reason(number: str | None) -> str | None:
        """Why a call has no caller memory (for its trace; never the number itself)."""
        if not number:
            return "no caller id (a web call, or the number was withheld)"
        if checked_number(number) is None:
            return "the caller id is not a phone number (withheld or malformed)"
        return None

    # -- inbox ---------------------------------------------------------------------------
    def receive_call_ended(
        self,
        *,
        org_id: str,
        agent_id: str,
        platform: str,
        call_id: str,
        raw: bytes,
        caller_number: str | None,
        event_type: str = "call_ended",
    ) -> InboxReceipt:
        digest = payload_hash(raw)
        s = self.session
        existing = repo.find_inbox(s, platform, event_type, call_id, digest)
        if existing is None:
            row = WebhookInbox(
                org_id=org_id,
                agent_id=agent_id,
                platform=platform,
                event_type=event_type,
                call_id=call_id,
                payload_hash=digest,
                payload=raw.decode("utf-8", errors="replace"),
                caller_hash=self.caller_hash(caller_number),
            )
            try:
                with s.begin_nested():
                    s.add(row)
                    s.flush()
            except IntegrityError:
                existing = repo.find_inbox(s, platform, event_type, call_id, digest)
                if existing is None:
                    raise
            else:
                assert row.id is not None
                row.revision = repo.count_inbox_up_to(s, platform, event_type, call_id, row.id)
                row.workflow_id = post_call_workflow_id(platform, call_id, row.revision)
                s.add(row)
                s.flush()
                return InboxReceipt(row.id, True, row.revision, row.workflow_id)
        assert existing.id is not None and existing.workflow_id is not None
        return InboxReceipt(existing.id, False, existing.revision, existing.workflow_id)

    def mark_dispatched(self, inbox_id: int) -> None:
        row = self.session.get(WebhookInbox, inbox_id)
        if row is not None and row.dispatched_at is None:
            row.dispatched_at = utcnow()
            self.session.add(row)

    def get_inbox(self, inbox_id: int) -> WebhookInbox | None:
        return self.session.get(WebhookInbox, inbox_id)

    def reject(
        self,
        *,
        platform: str,
        agent_id: str | None,
        org_id: str | None,
        reason: str,
        detail: str,
        status_code: int,
        raw: bytes,
        caller_number: str | None = None,
    ) -> RejectedWebhook:
        row = RejectedWebhook(
            platform=platform,
            agent_id=agent_id,
            org_id=org_id,
            reason=reason,
            detail=detail[:2000],
            status_code=status_code,
            payload=raw.decode("utf-8", errors="replace")[:1_000_000],
            caller_hash=self.caller_hash(caller_number),
        )
        self.session.add(row)
        return row

    def purge_expired_payloads(self, retention_days: int) -> int:
        return repo.purge_raw_payloads(self.session, utcnow() - timedelta(days=retention_days))

    # -- events and call records -----------------------------------------------------------
    def record_event(
        self,
        *,
        org_id: str,
        agent_id: str,
        platform: str,
        call_id: str,
        caller_number: str | None,
        type: str,
        platform_type: str,
        data: dict[str, Any] | None = None,
    ) -> CallEvent:
        redacted = redact_json(data or {})
        event = CallEvent(
            org_id=org_id,
            agent_id=agent_id,
            platform=platform,
            platform_call_id=call_id,
            caller_hash=self.caller_hash(caller_number),
            type=type,
            platform_type=platform_type,
            data=redacted if isinstance(redacted, dict) else {},
        )
        self.session.add(event)
        return event

    def touch_call(
        self,
        *,
        org_id: str,
        agent_id: str,
        platform: str,
        call_id: str,
        caller_number: str | None,
        direction: str | None = None,
        prompt_version: str | None = None,
    ) -> Call:
        call = repo.get_call(self.session, agent_id, platform, call_id)
        if call is None:
            call = Call(
                org_id=org_id,
                agent_id=agent_id,
                platform=platform,
                platform_call_id=call_id,
                caller_hash=self.caller_hash(caller_number),
                caller_display=mask_number(caller_number) if caller_number else None,
                direction=direction,
                started_at=utcnow(),
            )
            self.session.add(call)
        elif call.status == ABANDONED:  # it was not over after all
            call.status = "in_progress"
            call.updated_at = utcnow()
            self.session.add(call)
        if prompt_version is not None and call.prompt_version is None:
            # The version that served the call's start is the one its metrics belong to.
            call.prompt_version = prompt_version
            self.session.add(call)
        return call

    def store_ended_call(
        self, *, org_id: str, agent_id: str, ended: CallEnded, revision: int
    ) -> Call | None:
        """Upsert the call from an end-of-call event; None when a newer revision is stored."""
        ref = ended.call
        call = repo.get_call(self.session, agent_id, ref.platform, ref.call_id)
        if call is not None and call.revision > revision:
            return None
        if call is None:
            call = Call(
                org_id=org_id,
                agent_id=agent_id,
                platform=ref.platform,
                platform_call_id=ref.call_id,
            )
        number = ref.caller_number
        call.caller_hash = self.caller_hash(number)
        call.caller_display = mask_number(number) if number else None
        call.direction = ref.direction
        call.status = "ended"
        call.started_at = ended.started_at
        call.ended_at = ended.ended_at or utcnow()
        call.ended_reason = ended.ended_reason
        call.revision = revision
        call.transcript = [
            {"role": t.role, "text": redact(t.text), "seconds_from_start": t.seconds_from_start}
            for t in ended.turns
        ]
        if ended.platform_summary:
            # call_analyzed may have landed first; an end-of-call without one keeps it.
            call.platform_summary = redact(ended.platform_summary)
        analysis = dict(call.analysis or {})
        if ended.platform_success is not None:
            analysis["platform_success"] = ended.platform_success
        analysis["platform_ended_reason"] = ended.platform_ended_reason
        analysis["transferred"] = ended.transferred
        analysis["turn_latency_ms"] = ended.turn_latency_ms
        call.analysis = analysis
        call.updated_at = utcnow()
        self.session.add(call)
        self.session.flush()
        return call

    def enrich_call(self, *, org_id: str, agent_id: str, analyzed: CallAnalyzed) -> Call:
        ref = analyzed.call
        call = repo.get_call(self.session, agent_id, ref.platform, ref.call_id)
        if call is None:
            call = Call(
                org_id=org_id,
                agent_id=agent_id,
                platform=ref.platform,
                platform_call_id=ref.call_id,
                caller_hash=self.caller_hash(ref.caller_number),
                caller_display=mask_number(ref.caller_number) if ref.caller_number else None,
            )
        analysis = dict(call.analysis or {})
        analysis.update(
            {
                "platform_success": analyzed.platform_success,
                "sentiment": analyzed.sentiment,
                "data": redact_json(analyzed.data),
            }
        )
        call.analysis = analysis
        if analyzed.platform_summary:
            call.platform_summary = redact(analyzed.platform_summary)
        call.updated_at = utcnow()
        self.session.add(call)
        return call

    def abandon_idle_calls(self, now: datetime, idle_s: int, limit: int = 500) -> list[Call]:
        """Close calls that only ever had a context request (or went silent) as ``abandoned``
        once idle for ``idle_s``. An end-of-call arriving later is processed as usual and
        moves the call to ``ended``. Abandoned calls count in no quality metric."""
        calls = repo.idle_in_progress_calls(self.session, now - timedelta(seconds=idle_s), limit)
        for call in calls:
            call.status = ABANDONED
            call.updated_at = now
            self.session.add(call)
            self.session.add(
                CallEvent(
                    org_id=call.org_id,
                    agent_id=call.agent_id,
                    platform=call.platform,
                    platform_call_id=call.platform_call_id,
                    caller_hash=call.caller_hash,
                    type="call_abandoned",
                    platform_type="backline",
                    data={"idle_s": idle_s, "reason": "no end-of-call report arrived"},
                    at=now,
                )
            )
        return calls

    def save_summary(self, call: Call, summary: str, method: str) -> None:
        call.summary = summary
        call.summary_method = method
        call.status = "processed"
        call.updated_at = utcnow()
        self.session.add(call)

    def ended_event(self, call: Call) -> CallEnded:
        """The stored (redacted) call as a canonical end-of-call event."""
        analysis = call.analysis or {}
        return CallEnded(
            call=CallRef(
                platform=call.platform,
                call_id=call.platform_call_id,
                direction=call.direction,
            ),
            started_at=call.started_at,
            ended_at=call.ended_at,
            ended_reason=canonical_end_reason(call.ended_reason),
            platform_ended_reason=analysis.get("platform_ended_reason"),
            turns=[Turn.model_validate(t) for t in call.transcript or []],
            platform_summary=call.platform_summary,
            platform_success=analysis.get("platform_success"),
            transferred=bool(analysis.get("transferred")),
            turn_latency_ms=analysis.get("turn_latency_ms"),
        )

    def forget_caller(self, org_id: str, agent_id: str, caller_hash: str) -> int:
        return repo.delete_caller_calls(self.session, org_id, agent_id, caller_hash)
