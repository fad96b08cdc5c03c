"""The hook for LLM-judged call quality, beside the deterministic scorecard. Not built yet.

An LLM judge would grade a sample of scored calls (``BACKLINE_JUDGE_SAMPLE_RATE``, default 0)
on what rules cannot see (was the answer right, was the tone apt) and record its grades apart
from the scorecard, which stays a pure function of the call's evidence. Nothing calls a judge
today: ``sampled`` is the deterministic choice of calls such a judge would grade, so a replayed
post-call workflow would pick the same calls.
"""

from __future__ import annotations

import hashlib
from typing import Any, Protocol

from core.monitoring.scorecard import CallEvidence, Scorecard


class CallJudge(Protocol):
    def judge(self, evidence: CallEvidence, card: Scorecard) -> dict[str, Any]:
        """Grades of one call, recorded apart from its scorecard."""
        ...


def sampled(agent_id: str, platform: str, call_id: str, rate: float) -> bool:
    """Whether this call falls in the judged sample: the same call always answers the same."""
    if rate <= 0:
        return False
    if rate >= 1:
        return True
    digest = hashlib.sha256(f"{agent_id}\x1f{platform}\x1f{call_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < rate
