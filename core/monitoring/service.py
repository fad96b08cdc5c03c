"""Monitoring service: gathers a call's evidence, scores it with the deterministic scorecard,
stores the card, then evaluates the agent's threshold alert rules
(``core.monitoring.thresholds``)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from sqlmodel import Session, col, select

from core.calls import repository as calls_repo
from core.calls.events import CallEnded
from core.calls.models import Call, CallEvent
from core.knowledge import repository as knowledge_repo
from core.memory import repository as memory_repo
from core.monitoring import repository as repo
from core.monitoring import thresholds
from core.monitoring.models import CallScore
from core.monitoring.scorecard import (
    CallEvidence,
    ComplianceCheck,
    Retrieval,
    Scorecard,
    ToolUse,
    score_call,
)
from core.monitoring.traces import CallTrace, build_call_trace
from core.prompts import repository as prompts_repo
from core.tools.models import ToolInvocation

RETRIEVAL_EVENT = "knowledge_retrieval"
TOOL_EVENT = "tool_call"
CONTEXT_EVENT = "context_request"
_VERSION_REF = re.compile(r"^v(\d{1,9})$")


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _tool_use(data: dict[str, Any]) -> ToolUse:
    return ToolUse(
        name=str(data.get("tool") or "?"),
        status=str(data.get("status") or ("ok" if data.get("ok") else "tool_error")),
        ok=bool(data.get("ok", data.get("status") == "ok")),
        latency_ms=_number(data.get("latency_ms")),
        result=str(data.get("outcome") or "") if data.get("ok") else "",
    )


def _stale(data: dict[str, Any]) -> int:
    withheld = data.get("withheld") or []
    flagged = [f for f in data.get("freshness") or [] if f not in ("fresh", None)]
    return (len(withheld) if isinstance(withheld, list) else 0) + len(flagged)


def compliance_checks(declared: Iterable[dict[str, Any]]) -> tuple[ComplianceCheck, ...]:
    return tuple(
        ComplianceCheck(
            name=str(c.get("name", "?")),
            must_say=c.get("must_say"),
            must_not_say=c.get("must_not_say"),
        )
        for c in declared
        if c.get("must_say") or c.get("must_not_say")
    )


class MonitoringService:
    def __init__(self, session: Session) -> None:
        self.session = session

    def gather_evidence(self, call: Call, ended: CallEnded) -> CallEvidence:
        """What the call recorded, read back for the scorecard: context-fetch latencies, tool
        invocations, the texts of the chunks retrievals served (as stored now: a chunk
        rewritten since is read in its new words, a deleted one is missing), the caller's
        facts known when the call started, and the served version's prompt and checks."""
        events: list[CallEvent] = calls_repo.list_call_events(
            self.session, call.agent_id, call.platform, call.platform_call_id
        )
        context_ms: list[float] = []
        tools: list[ToolUse] = []
        retrieval_data: list[dict[str, Any]] = []
        for event in events:
            data = dict(event.data or {})
            if event.type == CONTEXT_EVENT and (ms := _number(data.get("latency_ms"))) is not None:
                context_ms.append(ms)
            elif event.type == TOOL_EVENT:
                tools.append(_tool_use(data))
            elif event.type == RETRIEVAL_EVENT:
                retrieval_data.append(data)
        ids = sorted({str(i) for d in retrieval_data for i in d.get("chunk_ids") or []})
        chunks = knowledge_repo.chunks_by_ids(self.session, ids) if ids else {}
        retrievals = tuple(
            Retrieval(
                chunk_texts=tuple(
                    chunks[str(i)].text for i in d.get("chunk_ids") or [] if str(i) in chunks
                ),
                stale_hits=_stale(d),
            )
            for d in retrieval_data
        )
        facts: list[str] = []
        if call.caller_hash is not None:
            started = call.started_at or call.created_at
            for f in memory_repo.list_facts(
                self.session, call.org_id, call.agent_id, call.caller_hash
            ):
                from_this_call = f.platform == call.platform and (
                    f.source_call_id == call.platform_call_id
                )
                if from_this_call or f.valid_from > started:
                    continue
                if f.valid_to is not None and f.valid_to < started:
                    continue
                facts.append(f"{f.key.replace('_', ' ')}: {f.value}")
        instructions: list[str] = []
        checks: tuple[ComplianceCheck, ...] = ()
        ref = _VERSION_REF.match(call.prompt_version or "")
        if ref is not None:
            version = prompts_repo.get_version(self.session, call.agent_id, int(ref.group(1)))
            if version is not None:
                instructions = [version.template, version.first_message or ""]
                checks = compliance_checks(version.compliance or [])
        return CallEvidence(
            ended=ended,
            context_fetch_ms=tuple(context_ms),
            tools=tuple(tools),
            retrievals=retrievals,
            memory_facts=tuple(facts),
            compliance=checks,
            instructions=tuple(t for t in instructions if t),
            prompt_version=call.prompt_version,
        )

    def score_and_store(self, call: Call, ended: CallEnded) -> Scorecard:
        card = score_call(self.gather_evidence(call, ended))
        row = repo.get_score(self.session, call.agent_id, call.platform, call.platform_call_id)
        if row is None:
            row = CallScore(
                org_id=call.org_id,
                agent_id=call.agent_id,
                platform=call.platform,
                platform_call_id=call.platform_call_id,
                score=card.score,
            )
        row.score = card.score
        row.parts = {**card.parts, "notes": card.notes}
        row.prompt_version = call.prompt_version
        row.layers = card.layers
        # Judged grades (core.monitoring.judge) live beside the card: a re-score keeps them.
        judged = (row.metrics or {}).get("judged")
        row.metrics = {**card.metrics, "judged": judged} if judged else card.metrics
        self.session.add(row)
        self.session.flush()
        thresholds.evaluate(self.session, call.agent_id)  # threshold rules see this call
        return card

    def call_trace(self, call: Call) -> CallTrace:
        """The call's trace, built from its stored rows (``core.monitoring.traces``)."""
        events = calls_repo.list_call_events(
            self.session, call.agent_id, call.platform, call.platform_call_id
        )
        invocations = self.session.exec(
            select(ToolInvocation)
            .where(
                ToolInvocation.agent_id == call.agent_id,
                ToolInvocation.platform == call.platform,
                ToolInvocation.call_id == call.platform_call_id,
            )
            .order_by(col(ToolInvocation.created_at), col(ToolInvocation.id))
        )
        score = repo.get_score(self.session, call.agent_id, call.platform, call.platform_call_id)
        return build_call_trace(call, events, list(invocations), score)

    def get_score(self, agent_id: str, platform: str, call_id: str) -> CallScore | None:
        return repo.get_score(self.session, agent_id, platform, call_id)
