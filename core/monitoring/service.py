"""Monitoring service: scores calls with the deterministic scorecard and stores the result,
then evaluates the agent's threshold alert rules (``core.monitoring.thresholds``)."""

from __future__ import annotations

from sqlmodel import Session

from core.calls.events import CallEnded
from core.calls.models import Call
from core.monitoring import repository as repo
from core.monitoring import thresholds
from core.monitoring.models import CallScore
from core.monitoring.scorecard import Scorecard, score_call


class MonitoringService:
    def __init__(self, session: Session) -> None:
        self.session = session

    def score_and_store(self, call: Call, ended: CallEnded) -> Scorecard:
        card = score_call(ended)
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
        self.session.add(row)
        self.session.flush()
        thresholds.evaluate(self.session, call.agent_id)  # threshold rules see this call
        return card

    def get_score(self, agent_id: str, platform: str, call_id: str) -> CallScore | None:
        return repo.get_score(self.session, agent_id, platform, call_id)
