"""SpamDetector: triggers at the threshold, not below; sliding window; one trigger per burst."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from comet.features.automod import SpamDetector


def test_triggers_exactly_at_the_threshold() -> None:
    detector = SpamDetector(5, 5.0)
    results = [detector.hit(1, 42, now=100.0 + i * 0.1) for i in range(5)]
    assert results == [False, False, False, False, True]


def test_below_the_threshold_never_triggers() -> None:
    detector = SpamDetector(5, 5.0)
    # 4 messages per window, forever: never a trigger.
    results = [detector.hit(1, 42, now=i * 1.26) for i in range(200)]
    assert not any(results)


def test_messages_outside_the_window_do_not_count() -> None:
    detector = SpamDetector(3, 2.0)
    assert not detector.hit(1, 7, now=0.0)
    assert not detector.hit(1, 7, now=1.0)
    assert not detector.hit(1, 7, now=2.0)  # the first one is exactly 2 s old: out of the window
    assert detector.count(1, 7, now=2.0) == 2
    assert detector.hit(1, 7, now=2.5)


def test_members_and_guilds_are_counted_separately() -> None:
    detector = SpamDetector(2, 10.0)
    assert not detector.hit(1, 7, now=0.0)
    assert not detector.hit(1, 8, now=0.1)
    assert not detector.hit(2, 7, now=0.2)
    assert detector.hit(1, 7, now=0.3)


def test_one_trigger_per_burst_and_forget() -> None:
    detector = SpamDetector(3, 10.0)
    hits = [detector.hit(1, 7, now=i * 0.01) for i in range(9)]
    assert hits == [False, False, True] * 3
    detector.hit(1, 7, now=1.0)
    detector.forget(1, 7)
    assert detector.count(1, 7, now=1.0) == 0


def test_sweep_bounds_memory() -> None:
    clock = [0.0]
    detector = SpamDetector(5, 1.0, clock=lambda: clock[0])
    for user in range(500):
        detector.hit(1, user)
    assert len(detector) == 500
    clock[0] = 10.0
    detector.sweep()
    assert len(detector) == 0


def test_invalid_configuration_is_refused() -> None:
    with pytest.raises(ValueError):
        SpamDetector(0, 1.0)
    with pytest.raises(ValueError):
        SpamDetector(3, 0)


@given(
    threshold=st.integers(min_value=1, max_value=8),
    gaps=st.lists(st.floats(min_value=0.0, max_value=3.0, allow_nan=False), min_size=1, max_size=60),
)
def test_matches_a_brute_force_reference(threshold: int, gaps: list[float]) -> None:
    window = 2.0
    detector = SpamDetector(threshold, window)
    now = 0.0
    since_reset: list[float] = []
    for gap in gaps:
        now += gap
        since_reset.append(now)
        recent = [t for t in since_reset if t > now - window]
        expected = len(recent) >= threshold
        assert detector.hit(1, 1, now=now) is expected
        if expected:
            since_reset = []
