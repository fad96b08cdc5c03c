"""Builds a SQLite database shaped like a running Backline's, for the dashboard tests.

Shared by the AppTest page tests and the real-browser test. Rows are written the way the post-call
path writes them: transcripts redacted, callers as keyed hashes with a masked display form,
scorecards from the real deterministic scorer, bi-temporal facts with one superseded value.
Only tests use this; it never touches a database it did not create.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlmodel import Session, SQLModel

import connectors.vectors.embedded
import core.audit.models
import core.calls.models
import core.memory.models
import core.monitoring.models
import core.tenancy.models
from core.calls.events import CallEnded, CallRef, Turn, canonical_end_reason
from core.calls.models import Call, CallEvent
from core.db import make_engine, utcnow
from core.memory.models import CallerProfile, Fact, Memory
from core.memory.schemas import CallerContext
from core.monitoring.models import CallScore
from core.monitoring.scorecard import score_call
from core.pii.phone import caller_hash, mask_number
from core.pii.redact import redact
from core.tenancy.models import Agent, Organization

# Every table must be registered on the metadata before create_all.
_MODEL_MODULES = (
    core.tenancy.models,
    core.calls.models,
    core.memory.models,
    core.monitoring.models,
    core.audit.models,
    connectors.vectors.embedded,
)

SECRET_KEY = "dashboard-test-secret"
ORG_ID = "org-acme"
AGENT_ID = "demo"
QUIET_AGENT_ID = "after-hours"  # an agent with no calls yet
MARIA = "+14155550123"
OLIVER = "+442079460958"
CARD = "4111 1111 1111 1111"


@dataclass(frozen=True)
class SeededCall:
    platform: str
    call_id: str
    caller_number: str
    started_at: datetime
    summary: str
    turns: list[tuple[str, str]]
    ended_reason: str
    facts: list[tuple[str, str]] = field(default_factory=list)

    @property
    def caller_display(self) -> str:
        return mask_number(self.caller_number)

    @property
    def ended_at(self) -> datetime:
        return self.started_at + timedelta(minutes=3)


@dataclass(frozen=True)
class Seed:
    url: str
    calls: list[SeededCall]

    def call(self, call_id: str) -> SeededCall:
        return next(c for c in self.calls if c.call_id == call_id)


def demo_calls(now: datetime) -> list[SeededCall]:
    return [
        SeededCall(
            platform="vapi",
            call_id="9f1c2d4e-vapi-0001",
            caller_number=MARIA,
            started_at=now - timedelta(days=3, hours=2),
            summary="Maria booked a cleaning for Tuesday and asked about payment by card.",
            turns=[
                ("agent", "Thanks for calling Acme Dental, how can I help?"),
                ("caller", "Hi, this is Maria. I'd like to book a cleaning, Tuesdays suit me."),
                ("agent", "Tuesday at 10am is free. Shall I book it?"),
                ("caller", f"Yes please. Can I pay with my card {CARD}?"),
                ("agent", "We take cards at the front desk. You're booked, see you Tuesday."),
            ],
            ended_reason="customer-ended-call",
            facts=[("name", "Maria"), ("preferred_day", "Tuesday")],
        ),
        SeededCall(
            platform="retell",
            call_id="call_retell_0002",
            caller_number=MARIA,
            started_at=now - timedelta(days=1, hours=1),
            summary="Maria moved her cleaning to Thursday because Tuesdays no longer work.",
            turns=[
                ("agent", "Welcome back Maria, how can I help today?"),
                ("caller", "Tuesdays don't work anymore, can we do Thursday instead?"),
                ("agent", "Done, your cleaning is now Thursday at 10am."),
                ("caller", "Perfect, thank you."),
            ],
            ended_reason="user_hangup",
            facts=[("preferred_day", "Thursday")],
        ),
        SeededCall(
            platform="vapi",
            call_id="7a0b3c5d-vapi-0003",
            caller_number=OLIVER,
            started_at=now - timedelta(hours=2),
            summary="Oliver asked whether Delta Dental insurance is accepted; it is.",
            turns=[
                ("agent", "Thanks for calling Acme Dental, how can I help?"),
                ("caller", "Do you take Delta Dental insurance?"),
                ("agent", "Yes, we accept Delta Dental."),
                ("caller", "This is ridiculous, I asked about that last week. Fine, thanks."),
            ],
            ended_reason="customer-ended-call",
            facts=[("insurance", "Delta Dental")],
        ),
    ]


def create_schema(url: str) -> None:
    engine = make_engine(url)
    SQLModel.metadata.create_all(engine)
    engine.dispose()


def seed_database(url: str, now: datetime | None = None) -> Seed:
    """Create the schema at ``url``: one org, agent ``demo`` with three calls, a quiet agent."""
    now = now or utcnow()
    calls = demo_calls(now)
    engine = make_engine(url)
    SQLModel.metadata.create_all(engine)
    with Session(engine) as session:
        session.add(Organization(id=ORG_ID, name="Acme Dental"))
        session.flush()  # no ORM relationship orders the insert, and the agent's FK needs it
        session.add(Agent(id=AGENT_ID, org_id=ORG_ID, name="Front desk"))
        session.add(Agent(id=QUIET_AGENT_ID, org_id=ORG_ID, name="After hours"))
        session.flush()
        for call in calls:
            _add_call(session, call)
        _add_memory(session, calls)
        session.commit()
    engine.dispose()
    return Seed(url=url, calls=calls)


def _add_call(session: Session, seeded: SeededCall) -> None:
    hashed = caller_hash(SECRET_KEY, seeded.caller_number)
    turns = [
        Turn(role=role, text=text, seconds_from_start=8.0 * i)  # type: ignore[arg-type]
        for i, (role, text) in enumerate(seeded.turns)
    ]
    ended = CallEnded(
        call=CallRef(platform=seeded.platform, call_id=seeded.call_id),  # type: ignore[arg-type]
        started_at=seeded.started_at,
        ended_at=seeded.ended_at,
        ended_reason=canonical_end_reason(seeded.ended_reason),
        platform_ended_reason=seeded.ended_reason,
        turns=turns,
        turn_latency_ms=950.0,
    )
    card = score_call(ended)
    scope = {"org_id": ORG_ID, "agent_id": AGENT_ID, "platform": seeded.platform}
    session.add(
        Call(
            **scope,
            platform_call_id=seeded.call_id,
            caller_hash=hashed,
            caller_display=seeded.caller_display,
            direction="inbound",
            status="ended",
            started_at=seeded.started_at,
            ended_at=seeded.ended_at,
            ended_reason=canonical_end_reason(seeded.ended_reason),
            revision=1,
            transcript=[
                {"role": t.role, "text": redact(t.text), "seconds_from_start": t.seconds_from_start}
                for t in turns
            ],
            summary=seeded.summary,
            summary_method="extractive",
            analysis={"transferred": False, "turn_latency_ms": 950.0},
            prompt_version="v3",
        )
    )
    session.add(
        CallScore(
            **scope,
            platform_call_id=seeded.call_id,
            score=card.score,
            parts={**card.parts, "notes": card.notes},
            layers=card.layers,
            metrics=card.metrics,
            created_at=seeded.ended_at,
        )
    )
    events = [
        ("call_started", "status-update", {"status": "in-progress"}),
        ("context_request", "assistant-request", {"known": True}),
        ("tool_calls", "tool-calls", {"tools": ["book_appointment"], "errors": 0}),
        ("transcript_update", "transcript", {"role": "caller", "text": redact(turns[-1].text)}),
        ("call_ended", "end-of-call-report", {"ended_reason": seeded.ended_reason}),
    ]
    for i, (kind, platform_type, data) in enumerate(events):
        session.add(
            CallEvent(
                **scope,
                platform_call_id=seeded.call_id,
                caller_hash=hashed,
                type=kind,
                platform_type=platform_type,
                data=data,
                at=seeded.started_at + timedelta(seconds=40 * i),
            )
        )


def _add_memory(session: Session, calls: list[SeededCall]) -> None:
    """Memories and facts as ``MemoryService.write_call_memories`` leaves them, oldest first."""
    by_caller: dict[str, list[SeededCall]] = {}
    for call in sorted(calls, key=lambda c: c.ended_at):
        by_caller.setdefault(call.caller_number, []).append(call)
    for number, caller_calls in by_caller.items():
        hashed = caller_hash(SECRET_KEY, number)
        current: dict[str, Fact] = {}
        for call in caller_calls:
            scope = {"org_id": ORG_ID, "agent_id": AGENT_ID, "caller_hash": hashed}
            session.add(
                Memory(
                    **scope,
                    text=call.summary,
                    platform=call.platform,
                    source_call_id=call.call_id,
                    created_at=call.ended_at,
                )
            )
            for key, value in call.facts:
                old = current.get(key)
                if old is not None:
                    old.valid_to = call.ended_at
                    old.superseded_by_platform = call.platform
                    old.superseded_by_call_id = call.call_id
                fact = Fact(
                    **scope,
                    key=key,
                    value=value,
                    valid_from=call.ended_at,
                    platform=call.platform,
                    source_call_id=call.call_id,
                )
                session.add(fact)
                current[key] = fact
        last = caller_calls[-1]
        context = CallerContext(
            known=True,
            summary=" | ".join(c.summary for c in caller_calls[-3:]),
            facts={key: fact.value for key, fact in current.items()},
            call_count=len(caller_calls),
            last_call_at=last.ended_at,
        )
        session.add(
            CallerProfile(
                org_id=ORG_ID,
                agent_id=AGENT_ID,
                caller_hash=hashed,
                caller_display=last.caller_display,
                call_count=len(caller_calls),
                last_call_at=last.ended_at,
                context=context.model_dump(mode="json"),
            )
        )
