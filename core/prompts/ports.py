"""The promotion gate core asks before a version reaches production.

The testing engine (evals/) will implement ``EvalGate`` by running the agent's eval suite
against the version; until then ``NoEvalSuiteGate`` answers, recording that no suite exists
and passing only when a passing suite is not required. A gate never moves labels itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

NO_SUITE = "no eval suite configured"


@dataclass(frozen=True)
class EvalGateResult:
    passed: bool
    detail: str


class EvalGate(Protocol):
    def check(self, org_id: str, agent_id: str, version: int, *, required: bool) -> EvalGateResult:
        """Whether ``version`` may be promoted; ``required`` is the label's
        ``require_eval_gate`` flag."""
        ...


class NoEvalSuiteGate:
    """The stand-in until the testing engine lands: there is never a suite to run."""

    def check(self, org_id: str, agent_id: str, version: int, *, required: bool) -> EvalGateResult:
        if required:
            return EvalGateResult(
                passed=False,
                detail=f"{NO_SUITE}; this label requires a passing eval suite before promotion "
                "(turn require_eval_gate off, or add an eval suite once evals are available)",
            )
        return EvalGateResult(passed=True, detail=f"{NO_SUITE} (not required)")
