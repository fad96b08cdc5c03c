"""What the memory domain needs from the outside: something that analyzes a finished call.

Only Protocols and the errors an implementation may raise live here; implementations live in
``connectors/`` (the LLM analyzer) or ``core/memory/analysis.py`` (the rule-based one). This
module must never import a vendor SDK.
"""

from __future__ import annotations

from typing import Protocol

from core.calls.events import Turn
from core.memory.analysis import CallAnalysis


class AnalyzerUnavailableError(Exception):
    """The analyzer cannot work and retrying will not change that.

    Raised when no LLM is configured, credentials are refused, or the model does not exist.
    Callers treat it as non-retryable and fall back to the rule-based analysis.
    """


class AnalyzerError(Exception):
    """One analysis attempt failed in a way a retry may fix.

    Raised on timeouts, connection errors, rate limits, server errors and invalid output.
    """


class CallAnalyzer(Protocol):
    def analyze(self, turns: list[Turn]) -> CallAnalysis:
        """Summarize the call and extract caller facts; raise the errors above on failure."""
        ...
