"""Calls: the webhook inbox, rejected webhooks, call events and the stored call record.

Nothing a platform sent is silently dropped: accepted end-of-call payloads go to the inbox
(idempotent on agent, platform, event, call id and payload hash), rejected ones to rejected webhooks
with the reason. Everything derived (events, transcripts) is stored redacted.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from core.calls import repository as repo
from core.calls.events import CallAnalyzed, CallEnded, CallRef, Turn, canonical_end_reason
from core.calls.models import ABANDONED, Call, CallEvent, RejectedWebhook, WebhookInbox
from core.calls.schemas import CallDetail, CallEventPublic
from core.db import utcnow
from core.errors import ConflictError
from core.monitoring.alerts import raise_alert
from core.monitoring.models import CallScore
from core.pii.phone import caller_hash as hash_caller
from core.pii.phone import checked_number, mask_number
from core.pii.policy import PiiPolicy
from core.pii.redact import redact, redact_json, redact_turns
from core.tenancy.models import Agent

# Key in ``Call.analysis`` holding the facts the post-call analysis extracted (redacted text).
DERIVED_FACTS = "derived_facts"


@dataclass(frozen=True)
class InboxReceipt:
    inbox_id: int
    created: bool
    revision: int
    workflow_id: str


# A row whose workflow cannot start is tried this many times, waiting 5 s, 10 s, 20 s...
# (at most 10 minutes) in between, then marked failed with one alert: about 10 minutes in all.
DISPATCH_MAX_ATTEMPTS = 8
DISPATCH_BACKOFF = timedelta(seconds=5)
DISPATCH_BACKOFF_CAP = timedelta(minutes=10)

# How often an insert that lost a race looks again before giving up (each loss means another
# delivery for the same call committed meanwhile).
_INSERT_ATTEMPTS = 5


def post_call_workflow_id(agent_id: str, platform: str, call_id: str, revision: int) -> str:
    """``post-call-{agent}-{platform}-{call id}`` (``-rN`` from revision 2): agent ids are
    global, so two organizations' calls never share an id. Rows stored before the agent was
    part of the id keep their old ``post-call-{platform}-{call id}`` ids."""
    base = f"post-call-{agent_id}-{platform}-{call_id}"
    return base if revision <= 1 else f"{base}-r{revision}"


def payload_hash(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def call_detail(call: Call, events: Iterable[CallEvent], score: CallScore | None) -> CallDetail:
    """The stored call with its trace (oldest event first) and its scorecard, if scored."""
    assert call.id is not None
    return CallDetail(
        id=call.id,
        org_id=call.org_id,
        agent_id=call.agent_id,
        platform=call.platform,
        platform_call_id=call.platform_call_id,
        caller_hash=call.caller_hash,
        caller_display=call.caller_display,
        status=call.status,
        started_at=call.started_at,
        ended_at=call.ended_at,
        ended_reason=call.ended_reason,
        revision=call.revision,
        summary=call.summary,
        summary_method=call.summary_method,
        prompt_version=call.prompt_version,
        transcript=call.transcript,
        platform_summary=call.platform_summary,
        analysis=call.analysis,
        events=[CallEventPublic.model_validate(e, from_attributes=True) for e in events],
        score=score.score if score else None,
        score_parts=score.parts if score else None,
        score_layers=(score.layers or None) if score else None,
        score_metrics=(score.metrics or None) if score else None,
    )


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
        """Insert the payload once per (agent, platform, event, call id, payload hash).

        Insert-or-get: the row is written whole (revision and workflow id included) in one
        statement, so a concurrent delivery never sees it half-made; the unique constraints
        decide races. The same bytes seen again answer the stored row; a different body for the
        agent's call becomes the next revision (two at once: the loser of the workflow-id
        constraint counts again).
        """
        digest = payload_hash(raw)
        s = self.session
        key = (agent_id, platform, event_type, call_id)
        for _ in range(_INSERT_ATTEMPTS):
            existing = repo.find_inbox(s, *key, digest)
            if existing is not None:
                assert existing.id is not None and existing.workflow_id is not None
                return InboxReceipt(existing.id, False, existing.revision, existing.workflow_id)
            revision = repo.count_inbox(s, *key) + 1
            row = WebhookInbox(
                org_id=org_id,
                agent_id=agent_id,
                platform=platform,
                event_type=event_type,
                call_id=call_id,
                payload_hash=digest,
                payload=raw.decode("utf-8", errors="replace"),
                caller_hash=self.caller_hash(caller_number),
                revision=revision,
                workflow_id=post_call_workflow_id(agent_id, platform, call_id, revision),
            )
            try:
                with s.begin_nested():
                    s.add(row)
                    s.flush()
            except IntegrityError:
                continue  # a concurrent delivery won this key: look again
            assert row.id is not None and row.workflow_id is not None
            return InboxReceipt(row.id, True, row.revision, row.workflow_id)
        raise ConflictError(
            f"call '{call_id}' kept changing while it was stored; deliver the report again"
        )

    def record_dispatch_failure(
        self, inbox_id: int, error: str, now: datetime
    ) -> WebhookInbox | None:
        """Count one failed workflow start: back off, and after ``DISPATCH_MAX_ATTEMPTS`` give
        up on the row and raise one alert. Answers the row when this call gave up on it."""
        row = self.session.get(WebhookInbox, inbox_id)
        if row is None or row.dispatched_at is not None or row.dispatch_failed_at is not None:
            return None
        attempts = row.dispatch_attempts + 1
        gave_up = attempts >= DISPATCH_MAX_ATTEMPTS
        delay = min(DISPATCH_BACKOFF * 2 ** (attempts - 1), DISPATCH_BACKOFF_CAP)
        values: dict[str, Any] = {
            "dispatch_error": error[:500],
            "next_dispatch_at": None if gave_up else now + delay,
            "dispatch_failed_at": now if gave_up else None,
        }
        if not repo.charge_dispatch_attempt(self.session, inbox_id, row.dispatch_attempts, values):
            return None
        if not gave_up:
            return None
        self.session.refresh(row)
        raise_alert(
            self.session,
            org_id=row.org_id,
            agent_id=row.agent_id,
            kind="post_call_not_started",
            severity="critical",
            message=(
                f"The post-call workflow of a {row.platform} call could not start after "
                f"{attempts} attempts; its report stays in the inbox (row {row.id}) and was "
                "not processed."
            ),
            detail={
                "inbox_id": row.id,
                "platform": row.platform,
                "call_id": row.call_id[:128],
                "error": error[:300],
            },
        )
        return row

    def mark_dispatched(self, inbox_id: int) -> None:
        row = self.session.get(WebhookInbox, inbox_id)
        if row is not None and row.dispatched_at is None:
            row.dispatched_at = utcnow()
            self.session.add(row)

    def mark_many_dispatched(self, inbox_ids: Sequence[int]) -> None:
        """Mark rows whose workflows started in one statement (one write for a drained batch)."""
        repo.mark_inbox_dispatched(self.session, inbox_ids, utcnow())

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
        policy = self.pii_policy(agent_id)
        # Each turn is read with the one before: "June second" answering "your date of birth?"
        texts = redact_turns([t.text for t in ended.turns], policy)
        call.transcript = [
            {"role": t.role, "text": text, "seconds_from_start": t.seconds_from_start}
            for t, text in zip(ended.turns, texts, strict=True)
        ]
        if ended.platform_summary:
            # call_analyzed may have landed first; an end-of-call without one keeps it.
            call.platform_summary = redact(ended.platform_summary, policy)
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
        policy = self.pii_policy(agent_id)
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
                "data": redact_json(analyzed.data, policy),
            }
        )
        call.analysis = analysis
        if analyzed.platform_summary:
            call.platform_summary = redact(analyzed.platform_summary, policy)
        call.updated_at = utcnow()
        self.session.add(call)
        return call

    def save_analysis(
        self, call: Call, summary: str, facts: list[tuple[str, str]], method: str
    ) -> None:
        """Keep the post-call analysis on the call, so workflows pass its id, not its text."""
        call.summary = summary
        call.summary_method = method
        analysis = dict(call.analysis or {})
        analysis[DERIVED_FACTS] = [[k, v] for k, v in facts]
        call.analysis = analysis
        call.updated_at = utcnow()
        self.session.add(call)

    @staticmethod
    def stored_analysis(call: Call) -> tuple[str, list[tuple[str, str]], str] | None:
        """The analysis ``save_analysis`` kept: (summary, facts, method), or None."""
        facts = (call.analysis or {}).get(DERIVED_FACTS)
        if call.summary_method is None or facts is None:
            return None
        return call.summary or "", [(str(k), str(v)) for k, v in facts], call.summary_method

    def pii_policy(self, agent_id: str) -> PiiPolicy:
        """The agent's PII policy (the default one for an agent that set none)."""
        agent = self.session.get(Agent, agent_id)
        return PiiPolicy.from_stored(agent.pii_policy if agent is not None else None)

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

    @staticmethod
    def forget_tables() -> tuple[str, ...]:
        """The tables ``forget_caller`` deletes from."""
        return repo.CALLER_TABLES
