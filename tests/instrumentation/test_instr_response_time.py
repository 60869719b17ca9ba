"""ResponseTimeMonitor: the seed's API, fixed memory, and percentiles that match histogram_quantile."""

from __future__ import annotations

import math

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from instrumentation.response_time import ResponseTimeMonitor, quantile_of_sorted


def histogram_quantile(q: float, buckets: list[tuple[float, float]]) -> float:
    """Prometheus' ``bucketQuantile`` (promql/quantile.go), for (upper bound, cumulative count)."""
    observations = buckets[-1][1]
    rank = q * observations
    b = next(i for i, (_, count) in enumerate(buckets) if count >= rank)
    if b == len(buckets) - 1:
        return buckets[-2][0]
    if b == 0 and buckets[0][0] <= 0:
        return buckets[0][0]
    start, end, count = 0.0, buckets[b][0], buckets[b][1]
    if b > 0:
        start = buckets[b - 1][0]
        count -= buckets[b - 1][1]
        rank -= buckets[b - 1][1]
    return start + (end - start) * (rank / count)


def test_seed_api_empty_average_is_zero() -> None:
    monitor = ResponseTimeMonitor()
    assert monitor.get_average_response_time() == 0
    assert not monitor.is_slow_response()
    assert monitor.percentile(0.95) == 0.0
    assert monitor.percentiles() == {"p50": 0.0, "p95": 0.0, "p99": 0.0}
    assert len(monitor) == 0


def test_seed_api_average_and_slowness() -> None:
    monitor = ResponseTimeMonitor()
    for value in (0.5, 1.0, 2.1):
        monitor.record_response_time(value)
    assert monitor.get_average_response_time() == pytest.approx(1.2)
    assert monitor.is_slow_response()  # the seed's default threshold: 1.0 s
    assert not monitor.is_slow_response(threshold=1.5)


def test_window_is_fixed_size() -> None:
    monitor = ResponseTimeMonitor(window_size=10)
    for i in range(1000):
        monitor.record_response_time(float(i))
    assert len(monitor) == 10
    assert monitor.response_times.maxlen == 10
    assert list(monitor.response_times) == [float(i) for i in range(990, 1000)]
    assert monitor.get_average_response_time() == pytest.approx(994.5)


def test_percentiles_of_a_known_window() -> None:
    monitor = ResponseTimeMonitor()
    for value in reversed(range(1, 101)):  # 100 .. 1, in any order
        monitor.record_response_time(value / 100)
    # rank q*n falls exactly on a sample: p50 is the 50th value, p95 the 95th, p99 the 99th.
    assert monitor.percentiles() == pytest.approx({"p50": 0.50, "p95": 0.95, "p99": 0.99})
    assert monitor.percentile(1.0) == pytest.approx(1.0)
    assert monitor.percentile(0.0) == pytest.approx(0.01)
    # Between samples the value is interpolated linearly: rank 50.5 -> halfway between 0.50 and 0.51.
    assert monitor.percentile(0.505) == pytest.approx(0.505)


@pytest.mark.parametrize("q", [-0.1, 1.5, math.nan])
def test_percentile_rejects_q_outside_unit_interval(q: float) -> None:
    with pytest.raises(ValueError, match="q"):
        ResponseTimeMonitor().percentile(q)


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_window_size_must_be_positive_int(bad: object) -> None:
    with pytest.raises(ValueError, match="window_size"):
        ResponseTimeMonitor(window_size=bad)  # type: ignore[arg-type]


def test_negative_or_nan_response_time_rejected() -> None:
    monitor = ResponseTimeMonitor()
    with pytest.raises(ValueError):
        monitor.record_response_time(-0.1)
    with pytest.raises(ValueError):
        monitor.record_response_time(math.nan)
    assert len(monitor) == 0


@given(
    samples=st.lists(
        st.floats(min_value=0.001, max_value=30.0, allow_nan=False), min_size=2, max_size=200, unique=True
    ),
    q=st.floats(min_value=0.0, max_value=1.0),
)
def test_percentile_equals_histogram_quantile_with_a_bucket_per_sample(
    samples: list[float], q: float
) -> None:
    """Exact over the window: what histogram_quantile computes when every sample has its own bucket."""
    monitor = ResponseTimeMonitor(window_size=len(samples))
    for value in samples:
        monitor.record_response_time(value)
    ordered = sorted(samples)
    buckets = [(upper, float(i + 1)) for i, upper in enumerate(ordered)] + [(math.inf, float(len(ordered)))]
    ours = monitor.percentile(q)
    if q * len(samples) > 1:
        assert ours == pytest.approx(histogram_quantile(q, buckets), rel=1e-9, abs=1e-12)
    else:
        # Within the first sample's rank Prometheus interpolates from 0 (it does not know the
        # minimum); the exact window answers the minimum itself.
        assert ours == ordered[0]


@given(st.lists(st.floats(min_value=0, max_value=100, allow_nan=False), min_size=1, max_size=50))
@example([1.4389061594107417, 66.09195768307238])  # once rounded past the maximum at q=1
def test_quantiles_are_monotonic_and_within_range(samples: list[float]) -> None:
    ordered = sorted(samples)
    values = [quantile_of_sorted(ordered, q / 20) for q in range(21)]
    assert values == sorted(values)
    assert ordered[0] <= values[0] and values[-1] <= ordered[-1]
