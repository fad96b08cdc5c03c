"""The circuit breaker state machine, driven by a fake clock (no sleeping)."""

from __future__ import annotations

from core.tools.breaker import BreakerPolicy, CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def breaker(**policy: float) -> tuple[CircuitBreaker, Clock]:
    clock = Clock()
    defaults: dict[str, float] = {
        "failures": 3,
        "error_rate": 0.5,
        "window_s": 30.0,
        "min_calls": 10,
        "cooldown_s": 5.0,
    }
    defaults.update(policy)
    return (
        CircuitBreaker(
            BreakerPolicy(
                failures=int(defaults["failures"]),
                error_rate=defaults["error_rate"],
                window_s=defaults["window_s"],
                min_calls=int(defaults["min_calls"]),
                cooldown_s=defaults["cooldown_s"],
            ),
            clock,
        ),
        clock,
    )


def test_opens_after_consecutive_failures_and_refuses_until_the_cool_down() -> None:
    b, clock = breaker()
    for _ in range(2):
        assert b.allow()
        b.record_failure()
    assert b.state == "closed"
    assert b.allow()
    b.record_failure()
    assert b.state == "open"
    assert not b.allow()
    clock.now += 4.9
    assert not b.allow()
    assert b.snapshot()["rejected_total"] == 2
    assert b.snapshot()["retry_in_s"] == 0.1


def test_a_success_resets_the_consecutive_count() -> None:
    b, _ = breaker(error_rate=1.0)  # only the consecutive rule can open it here
    for _ in range(5):
        b.record_failure()
        b.record_failure()
        b.record_success()
    assert b.state == "closed"
    assert b.snapshot()["consecutive_failures"] == 0


def test_opens_on_the_error_rate_over_the_window_without_consecutive_failures() -> None:
    b, _ = breaker(failures=100, min_calls=10, error_rate=0.5)
    for _ in range(4):
        b.record_failure()
        b.record_success()
    assert b.state == "closed"  # 4 of 8: not enough calls to judge yet
    b.record_failure()
    assert b.state == "closed"  # 5 of 9
    b.record_failure()
    assert b.state == "open"  # 6 of 10 >= 50%


def test_failures_older_than_the_window_do_not_count() -> None:
    b, clock = breaker(failures=100, min_calls=4, error_rate=0.5, window_s=10.0)
    b.record_failure()
    b.record_failure()
    b.record_failure()
    clock.now += 11
    b.record_success()
    b.record_success()
    b.record_success()
    b.record_failure()
    assert b.state == "closed"  # 1 of 4 inside the window
    assert b.snapshot()["window_calls"] == 4


def test_half_open_lets_one_probe_through_and_its_success_closes() -> None:
    b, clock = breaker(failures=1)
    b.record_failure()
    clock.now += 5
    assert b.state == "half_open"
    assert b.allow()  # the probe
    assert not b.allow()  # everyone else still hears the fallback
    b.record_success()
    assert b.state == "closed"
    assert b.allow() and b.allow()
    assert b.snapshot()["window_calls"] == 0  # the outage's failures are forgotten


def test_a_failed_probe_opens_again_for_a_full_cool_down() -> None:
    b, clock = breaker(failures=1)
    b.record_failure()
    clock.now += 5
    assert b.allow()
    b.record_failure()
    assert b.state == "open"
    assert b.opens_total == 2
    clock.now += 4
    assert not b.allow()
    clock.now += 1
    assert b.allow()


def test_release_frees_the_probe_slot_of_a_cancelled_call() -> None:
    b, clock = breaker(failures=1)
    b.record_failure()
    clock.now += 5
    assert b.allow()
    b.release()
    assert b.allow()
