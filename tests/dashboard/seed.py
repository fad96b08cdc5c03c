"""Builds a SQLite database shaped like a running Backline's, for the dashboard tests.

Shared by the AppTest page tests and the real-browser test. Rows are written the way the post-call
path writes them: transcripts redacted, callers as keyed hashes with a masked display form,
scorecards from the real deterministic scorer, bi-temporal facts with one superseded value.
Only tests use this; it never touches a database it did not create.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, SQLModel

import connectors.vectors.embedded
import core.audit.models
import core.calls.models
import core.evals.models
import core.memory.models
import core.monitoring.models
import core.tenancy.models
from core.calls.events import CallEnded, CallRef, Turn, canonical_end_reason
from core.calls.models import Call, CallEvent
from core.db import make_engine, utcnow
from core.evals.models import EvalCaseResult, EvalRun
from core.memory.models import CallerProfile, Fact, Memory
from core.memory.schemas import CallerContext
from core.monitoring.models import Alert, AlertChannel, AlertDelivery, CallScore
from core.monitoring.scorecard import CallEvidence, Retrieval, ToolUse, score_call
from core.pii.phone import caller_hash, mask_number
from core.pii.redact import redact
from core.tenancy.models import Agent, Organization

# Every table must be registered on the metadata before create_all.
_MODEL_MODULES = (
    core.tenancy.models,
    core.calls.models,
    core.evals.models,
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
    prompt_version: str = "v3"
    context_ms: float = 120.0
    # (tool, server, status, latency ms, breaker state), as the gateway records them
    tools: list[tuple[str, str, str, float, str]] = field(default_factory=list)
    # (chunk id, freshness) served by one knowledge retrieval
    chunks: list[tuple[str, str]] = field(default_factory=list)

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
            prompt_version="v2",
            context_ms=120.0,
            tools=[("book_appointment", "calendar", "ok", 420.0, "closed")],
            chunks=[("chunk-payments-1", "fresh")],
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
            prompt_version="v3",
            context_ms=340.0,
            tools=[("reschedule_appointment", "calendar", "ok", 610.0, "closed")],
            chunks=[("chunk-hours-2", "stale")],
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
            prompt_version="v3",
            context_ms=900.0,
            tools=[
                ("check_insurance", "insurance", "timeout", 5000.0, "closed"),
                ("check_insurance", "insurance", "breaker_open", 0.4, "open"),
            ],
            chunks=[("chunk-insurance-1", "fresh")],
        ),
    ]


def create_schema(url: str) -> None:
    engine = make_engine(url)
    SQLModel.metadata.create_all(engine)
    engine.dispose()


def seed_database(url: str, now: datetime | None = None) -> Seed:
    """Create the schema at ``url``: one org, agent ``demo`` with three calls (prompt versions v2
    and v3, tool calls, retrievals), its alerts, two eval runs (an accepted baseline and a later
    run that regressed against it), a quiet agent."""
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
        _add_alerts(session, now)
        _add_eval_runs(session, now)
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
    card = score_call(
        CallEvidence(
            ended=ended,
            context_fetch_ms=(seeded.context_ms,),
            tools=tuple(
                ToolUse(name=tool, status=status, ok=status == "ok", latency_ms=ms)
                for tool, _, status, ms, _ in seeded.tools
            ),
            retrievals=(
                Retrieval(
                    chunk_texts=(seeded.summary,),
                    stale_hits=sum(f != "fresh" for _, f in seeded.chunks),
                ),
            )
            if seeded.chunks
            else (),
            prompt_version=seeded.prompt_version,
        )
    )
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
            prompt_version=seeded.prompt_version,
        )
    )
    session.add(
        CallScore(
            **scope,
            platform_call_id=seeded.call_id,
            prompt_version=seeded.prompt_version,
            score=card.score,
            parts={**card.parts, "notes": card.notes},
            layers=card.layers,
            metrics=card.metrics,
            created_at=seeded.ended_at,
        )
    )
    context = {
        "caller_known": True,
        "latency_ms": seeded.context_ms,
        "prompt_version": seeded.prompt_version,
        "prompt_source": "label:production",
    }
    retrieval = {
        "via": "tool",
        "query": "opening hours",
        "status": "ok",
        "chunk_ids": [chunk for chunk, _ in seeded.chunks],
        "freshness": [fresh for _, fresh in seeded.chunks],
        "withheld": [],
        "latency_ms": 35.0,
    }
    tool_names = [tool for tool, *_ in seeded.tools]
    events: list[tuple[str, str, dict[str, Any]]] = [
        ("call_started", "status-update", {"status": "in-progress"}),
        ("context_request", "assistant-request", context),
        ("knowledge_retrieval", "tool", retrieval),
        ("tool_calls", "tool-calls", {"tools": tool_names, "errors": 0}),
        *(
            (
                "tool_call",
                "tool_call",
                {
                    "tool": tool,
                    "server": server,
                    "server_tool": tool,
                    "arguments": {"day": "Thursday", "phone": seeded.caller_display},
                    "status": status,
                    "ok": status == "ok",
                    "outcome": "done" if status == "ok" else "the service did not answer",
                    "latency_ms": ms,
                    "attempts": 1,
                    "breaker": breaker,
                    "duplicate": False,
                },
            )
            for tool, server, status, ms, breaker in seeded.tools
        ),
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
                at=seeded.started_at + timedelta(seconds=20 * i),
            )
        )


def _add_alerts(session: Session, now: datetime) -> None:
    """A drift alarm (firing, one delivery failing), a threshold alert (acknowledged) and a
    resolved knowledge alert, with an alert channel."""
    channel = AlertChannel(
        org_id=ORG_ID,
        name="on-call slack",
        kind="slack",
        url_encrypted="not-a-real-secret",
        url_host="hooks.slack.example",
    )
    session.add(channel)
    alerts = [
        Alert(
            org_id=ORG_ID,
            agent_id=AGENT_ID,
            kind="drift_grounded",
            severity="warning",
            message="grounded share fell on v3",
            subject="drift:demo:v3:grounded",
            created_at=now - timedelta(days=1),
        ),
        Alert(
            org_id=ORG_ID,
            agent_id=AGENT_ID,
            kind="score_threshold",
            severity="critical",
            message="mean score of the last 20 calls is 61.0 (< 70)",
            subject="rule:1",
            state="acknowledged",
            acknowledged_at=now - timedelta(hours=1),
            acknowledged_by="key:ops",
            created_at=now - timedelta(hours=2),
        ),
        Alert(
            org_id=ORG_ID,
            agent_id=AGENT_ID,
            kind="knowledge_source_failing",
            severity="warning",
            message="Knowledge source 'prices' could not be refreshed",
            subject="knowledge_source:src_1",
            state="resolved",
            resolved_at=now - timedelta(days=2),
            resolved_by="system",
            resolution="the source refreshed",
            created_at=now - timedelta(days=3),
        ),
    ]
    session.add_all(alerts)
    session.flush()
    assert channel.id is not None
    for alert, status, attempts, error in zip(
        alerts,
        ("failed", "sent", "sent"),
        (5, 1, 1),
        ("HTTP 500 from hooks.slack.example", None, None),
        strict=True,
    ):
        assert alert.id is not None
        session.add(
            AlertDelivery(
                org_id=ORG_ID,
                alert_id=alert.id,
                channel_id=channel.id,
                event="firing",
                subject=alert.subject or alert.kind,
                idempotency_key=f"alert-{alert.id}-firing",
                status=status,
                attempts=attempts,
                last_error=error,
                response_status=500 if error else 200,
                created_at=alert.created_at,
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


BASELINE_RUN = "run-baseline"
CANDIDATE_RUN = "run-candidate"
# (scenario, persona, baseline passes of 2, candidate passes of 2, verdict)
EVAL_SCENARIOS = [
    ("order status", "non_native", 2, 2, "inconclusive"),
    ("drain cleaning price", "angry", 2, 0, "inconclusive"),
]
FORBIDDEN = "I can't help"


def _eval_case(run_id: str, index: int, scenario: str, persona: str, ok: bool) -> EvalCaseResult:
    said = "" if ok else f"said {FORBIDDEN!r}"
    checks: list[dict[str, Any]] = [
        {"name": "conversation", "layer": "infrastructure", "passed": True, "detail": ""},
        {"name": "says $175", "layer": "reaction", "passed": ok, "detail": ""},
        {"name": f"does not say {FORBIDDEN}", "layer": "reaction", "passed": ok, "detail": said},
    ]
    reply = "Drain cleaning is $175 per drain." if ok else f"Sorry, {FORBIDDEN} with prices."
    return EvalCaseResult(
        run_id=run_id,
        case_index=index,
        scenario=scenario,
        persona=persona,
        repeat=index % 2,
        status="passed" if ok else "failed",
        passed=ok,
        checks=checks,
        transcript=[
            {"role": "agent", "text": "Hi, thanks for calling Acme Home Services."},
            {"role": "caller", "text": "How much does drain cleaning cost?"},
            {"role": "agent", "text": reply},
        ],
    )


def _scenario_row(scenario: tuple[str, str, int, int, str], candidate: bool) -> dict[str, Any]:
    name, persona, base, cand, verdict = scenario
    return {
        "scenario": f"{name} · {persona}",
        "verdict": verdict,
        "candidate": [cand if candidate else base, 2],
        "baseline": [base, 2] if candidate else [0, 0],
        "flaky": False,
        "reason": "too few runs to rule out a regression",
    }


def _add_eval_runs(session: Session, now: datetime) -> None:
    """An accepted baseline run of suite ``demo`` and a later run compared with it."""
    for run_id, age_h in ((BASELINE_RUN, 26), (CANDIDATE_RUN, 2)):
        candidate = run_id == CANDIDATE_RUN
        results = [
            (name, persona, i < (cand if candidate else base))
            for name, persona, base, cand, _ in EVAL_SCENARIOS
            for i in range(2)
        ]
        passed = sum(ok for *_, ok in results)
        at = now - timedelta(hours=age_h)
        session.add(
            EvalRun(
                id=run_id,
                org_id=ORG_ID,
                agent_id=AGENT_ID,
                suite_name="demo",
                status="failed" if candidate else "inconclusive",
                verdict="inconclusive",
                scenarios=[_scenario_row(row, candidate) for row in EVAL_SCENARIOS],
                total=len(results),
                done=len(results),
                passed=passed,
                failed=len(results) - passed,
                baseline_run_id=BASELINE_RUN if candidate else None,
                accepted=not candidate,
                created_at=at,
                started_at=at,
                finished_at=at + timedelta(minutes=3),
            )
        )
        session.flush()
        for i, (name, persona, ok) in enumerate(results):
            session.add(_eval_case(run_id, i, name, persona, ok))
