"""A circuit breaker per MCP server: a small state machine with an injectable clock.

closed    every call goes through; the breaker opens after ``failures`` consecutive failures,
          or when at least ``min_calls`` calls in the last ``window_s`` seconds failed at a rate
          of ``error_rate`` or more.
open      calls are refused at once (the caller hears the fallback without waiting for a dead
          server) until ``cooldown_s`` has passed.
half_open one probe call at a time is let through; its success closes the breaker (and clears
          the window), its failure opens it again for another cool-down.

Only failures of the server itself count (no connection, timeout, malformed answer); a tool
answering "that slot is taken" is a healthy server. This module does no I/O and never sleeps.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

BreakerState = Literal["closed", "open", "half_open"]
STATE_CODES: dict[BreakerState, int] = {"closed": 0, "half_open": 1, "open": 2}


@dataclass(frozen=True)
class BreakerPolicy:
    failures: int = 5
    error_rate: float = 0.5
    window_s: float = 30.0
    min_calls: int = 10
    cooldown_s: float = 15.0


class CircuitBreaker:
    def __init__(self, policy: BreakerPolicy, clock: Callable[[], float] = time.monotonic) -> None:
        self.policy = policy
        self._clock = clock
        self._state: BreakerState = "closed"
        self._consecutive = 0
        self._window: deque[tuple[float, bool]] = deque()
        self._opened_at: float | None = None
        self._probes = 0
        self.opens_total = 0
        self.rejected_total = 0

    # -- reading ----------------------------------------------------------------------------
    @property
    def state(self) -> BreakerState:
        """The state now; an open breaker whose cool-down is over reads as half-open."""
        if self._state == "open" and self._cooled_down():
            return "half_open"
        return self._state

    def _cooled_down(self) -> bool:
        return (
            self._opened_at is not None
            and self._clock() - self._opened_at >= self.policy.cooldown_s
        )

    def _prune(self) -> None:
        horizon = self._clock() - self.policy.window_s
        while self._window and self._window[0][0] < horizon:
            self._window.popleft()

    def snapshot(self) -> dict[str, Any]:
        self._prune()
        calls = len(self._window)
        failed = sum(1 for _, ok in self._window if not ok)
        retry_in: float | None = None
        if self._state == "open" and self._opened_at is not None:
            retry_in = max(0.0, self.policy.cooldown_s - (self._clock() - self._opened_at))
        return {
            "state": self.state,
            "consecutive_failures": self._consecutive,
            "window_calls": calls,
            "window_failures": failed,
            "error_rate": round(failed / calls, 3) if calls else 0.0,
            "retry_in_s": None if retry_in is None else round(retry_in, 2),
            "opens_total": self.opens_total,
            "rejected_total": self.rejected_total,
        }

    # -- transitions ------------------------------------------------------------------------
    def allow(self) -> bool:
        """May a call go to the server now? A True in half-open takes the probe slot, so the
        caller must report the outcome (``record_success``/``record_failure``) or ``release``."""
        if self._state == "open":
            if not self._cooled_down():
                self.rejected_total += 1
                return False
            self._state = "half_open"
            self._probes = 0
        if self._state == "half_open":
            if self._probes >= 1:
                self.rejected_total += 1
                return False
            self._probes += 1
        return True

    def release(self) -> None:
        """A permitted call ended without a verdict (cancelled): free the probe slot."""
        if self._state == "half_open" and self._probes > 0:
            self._probes -= 1

    def record_success(self) -> None:
        if self._state == "half_open":
            self._close()
            return
        self._consecutive = 0
        self._window.append((self._clock(), True))
        self._prune()

    def record_failure(self) -> None:
        if self._state == "half_open":
            self._open()
            return
        if self._state == "open":
            return
        self._consecutive += 1
        self._window.append((self._clock(), False))
        self._prune()
        calls = len(self._window)
        failed = sum(1 for _, ok in self._window if not ok)
        if self._consecutive >= self.policy.failures or (
            calls >= self.policy.min_calls and failed / calls >= self.policy.error_rate
        ):
            self._open()

    def _open(self) -> None:
        self._state = "open"
        self._opened_at = self._clock()
        self._probes = 0
        self.opens_total += 1

    def _close(self) -> None:
        self._state = "closed"
        self._opened_at = None
        self._probes = 0
        self._consecutive = 0
        # Failures from before the outage must not re-open a server that just recovered.
        self._window.clear()
