"""Drift detectors: they alarm on a clear shift, stay quiet on clean calls, survive a JSON
round trip mid-stream, and reject bad input naming the metric."""

from __future__ import annotations

import json
import math
import random

import pytest

from core.monitoring.drift import (
    FALSE_ALARMS_PER_CALL,
    SHARES,
    DriftAlarm,
    DriftMonitor,
)
from core.monitoring.drift_calibration import (
    bernoulli_cusum_arl,
    llr_steps,
    mean_cusum_arl,
    mean_cusum_threshold,
)


def _call(rng: random.Random, words_scale: float = 1.0, grounded_p: float = 0.9) -> dict:
    return {
        "quality": min(100.0, max(0.0, rng.gauss(75.0, 12.0))),
        "grounded": rng.random() < grounded_p,
        "words_per_turn": rng.gammavariate(4.0, 7.5) * words_scale,
        "context_latency_ms": rng.lognormvariate(math.log(120.0), 0.6),
    }


def _run(
    mon: DriftMonitor, rng: random.Random, n: int, **kw: float
) -> list[tuple[int, DriftAlarm]]:
    out = []
    for _ in range(n):
        for alarm in mon.update(_call(rng, **kw)):
            out.append((mon.calls, alarm))
    return out


def test_the_shares_spend_exactly_the_budget() -> None:
    assert sum(SHARES.values()) == pytest.approx(1.0)
    assert FALSE_ALARMS_PER_CALL == 1e-4


def test_words_per_turn_rising_half_again_alarms_up_within_a_few_hundred_calls() -> None:
    rng = random.Random(1)
    mon = DriftMonitor("a", 1, metrics=("words_per_turn",))
    assert _run(mon, rng, 1000) == []
    alarms = _run(mon, rng, 400, words_scale=1.5)
    assert alarms, "no alarm on a +50% shift"
    call, alarm = alarms[0]
    assert (alarm.metric, alarm.direction, alarm.detector) == ("words_per_turn", "up", "cusum")
    assert call - 1000 <= 150
    assert alarm.statistic >= alarm.threshold
    assert alarm.recent > alarm.baseline * 1.2
    assert 0 < alarm.calls_since_change <= call - 1000 + 100


def test_words_per_turn_falling_alarms_down() -> None:
    rng = random.Random(2)
    mon = DriftMonitor("a", 1, metrics=("words_per_turn",))
    _run(mon, rng, 600)
    alarms = _run(mon, rng, 400, words_scale=0.6)
    assert alarms and alarms[0][1].direction == "down"


def test_grounded_share_falling_alarms_down() -> None:
    rng = random.Random(3)
    mon = DriftMonitor("a", 1, metrics=("grounded",))
    assert _run(mon, rng, 600) == []
    alarms = _run(mon, rng, 600, grounded_p=0.6)
    assert alarms
    _, alarm = alarms[0]
    assert (alarm.metric, alarm.direction) == ("grounded", "down")
    assert alarm.baseline == pytest.approx(0.9, abs=0.05)
    assert alarm.recent < 0.85


def test_a_clean_seeded_stream_stays_quiet() -> None:
    rng = random.Random(4)
    mon = DriftMonitor("a", 1, metrics=("quality", "grounded", "words_per_turn"))
    assert _run(mon, rng, 3000) == []
    summary = mon.summary()
    assert summary["quality"]["phase"] == "watching"
    assert summary["quality"]["reference_calls"] > 200  # the reference grew
    assert all(0 <= c["fraction"] < 1 for c in summary["words_per_turn"]["cusum"].values())


def test_nothing_is_watched_until_the_reference_is_complete() -> None:
    rng = random.Random(5)
    mon = DriftMonitor("a", 1, metrics=("words_per_turn",), reference_size=200)
    _run(mon, rng, 150, words_scale=3.0)
    assert mon.summary()["words_per_turn"] == {
        "phase": "reference",
        "reference_calls": 150,
        "needed": 200,
    }


def test_an_alarm_latches_until_acknowledged() -> None:
    rng = random.Random(6)
    mon = DriftMonitor("a", 1, metrics=("words_per_turn",))
    _run(mon, rng, 300)
    alarms = _run(mon, rng, 1500, words_scale=2.0)
    ups = [a for _, a in alarms if a.detector == "cusum"]
    assert len(ups) == 1  # latched: no flood
    assert mon.summary()["words_per_turn"]["phase"] == "alarmed"
    mon.acknowledge("words_per_turn")
    assert mon.summary()["words_per_turn"]["cusum"]["up"]["statistic"] == 0.0
    assert _run(mon, rng, 300, words_scale=2.0)  # still shifted: alarms again


def test_rebaseline_learns_the_new_normal() -> None:
    rng = random.Random(7)
    mon = DriftMonitor("a", 1, metrics=("words_per_turn",))
    _run(mon, rng, 300)
    assert _run(mon, rng, 300, words_scale=2.0)
    mon.acknowledge("words_per_turn", rebaseline=True)
    assert mon.summary()["words_per_turn"]["phase"] == "reference"
    assert _run(mon, rng, 1500, words_scale=2.0) == []


def test_state_round_trips_through_json_mid_stream_with_identical_alarms() -> None:
    rng = random.Random(8)
    mon = DriftMonitor("agent-1", 7, metrics=("quality", "grounded", "words_per_turn"))
    _run(mon, rng, 700)
    restored = DriftMonitor.from_state(json.loads(json.dumps(mon.state())))
    assert restored.state() == mon.state()
    calls = [_call(rng, words_scale=1.3, grounded_p=0.7) for _ in range(800)]
    a = [(i, x) for i, c in enumerate(calls) for x in mon.update(c)]
    b = [(i, x) for i, c in enumerate(calls) for x in restored.update(c)]
    assert a and a == b
    assert json.loads(json.dumps(restored.state())) == mon.state()


def test_a_baseline_from_the_previous_version_starts_watching_at_once() -> None:
    rng = random.Random(9)
    old = DriftMonitor("a", 1, metrics=("words_per_turn",))
    _run(old, rng, 1200)
    new = DriftMonitor("a", 2, metrics=("words_per_turn",), baseline=old.baseline())
    assert new.summary()["words_per_turn"]["phase"] == "watching"
    assert (
        new.summary()["words_per_turn"]["reference_calls"] == 950
    )  # 200 + three blocks (the fourth is held back)
    assert _run(new, rng, 300, words_scale=1.6)


@pytest.mark.parametrize(
    ("metrics", "name"),
    [
        ({"quality": float("nan")}, "quality"),
        ({"quality": 101.0}, "quality"),
        ({"quality": "80"}, "quality"),
        ({"quality": True}, "quality"),
        ({"words_per_turn": -1.0}, "words_per_turn"),
        ({"words_per_turn": float("inf")}, "words_per_turn"),
        ({"context_latency_ms": -5}, "context_latency_ms"),
        ({"grounded": 0.5}, "grounded"),
        ({"grounded": "yes"}, "grounded"),
        ({"tool_failed": 2}, "tool_failed"),
        ({"made_up": 1.0}, "made_up"),
    ],
)
def test_bad_input_is_a_value_error_naming_the_metric(metrics: dict, name: str) -> None:
    mon = DriftMonitor("a", 1)
    with pytest.raises(ValueError, match=name):
        mon.update(metrics)
    assert mon.calls == 0


def test_a_non_mapping_and_none_values() -> None:
    mon = DriftMonitor("a", 1)
    with pytest.raises(ValueError, match="mapping"):
        mon.update([1.0])  # type: ignore[arg-type]
    assert mon.update({"quality": None, "grounded": None}) == []
    assert mon.summary()["quality"]["reference_calls"] == 0


def test_the_markov_chain_matches_known_cusum_run_lengths() -> None:
    # One-sided normal CUSUM, k = 0.5: ARL0 ~ 336 at h = 4 and ~ 930 at h = 5 (two-sided
    # tables give half of these); Siegmund's approximation for the known-parameter threshold.
    assert mean_cusum_arl(4.0, 0.5) == pytest.approx(336, rel=0.02)
    assert mean_cusum_arl(5.0, 0.5) == pytest.approx(930, rel=0.02)
    assert mean_cusum_threshold(0.2, 1e-5, None) == pytest.approx(21.4, abs=0.3)


def test_the_bernoulli_chain_matches_a_simulation() -> None:
    up, down = llr_steps(0.1, 0.2)
    w = down / 40
    m = round(3.0 / w)
    arl = bernoulli_cusum_arl(m, w, up, down, 0.1)
    rng = random.Random(10)
    lengths = []
    for _ in range(2000):
        s, n = 0.0, 0
        while s < m * w - 1e-12:
            n += 1
            s = max(0.0, s + (up if rng.random() < 0.1 else -down))
        lengths.append(n)
    mean = sum(lengths) / len(lengths)
    assert arl == pytest.approx(mean, rel=0.07)
