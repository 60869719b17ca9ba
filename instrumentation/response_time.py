"""``ResponseTimeMonitor``: a rolling window of the last N response times.

Memory is fixed (a ``deque(maxlen=window_size)``). The command hooks record here the same
duration, measured between the same clock points, that they observe into
``comet_command_duration_seconds``, so the in-Discord ``health`` command and Grafana agree.

Percentiles are *exact over the window*, computed the way ``histogram_quantile`` estimates them
from buckets: the value at rank ``q * n`` among the sorted samples, interpolated linearly between
the neighbouring samples (Prometheus interpolates linearly inside the bucket that holds the rank).
With fine buckets over the same observations, ``histogram_quantile`` converges to this number.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Sequence

__all__ = ["ResponseTimeMonitor", "quantile_of_sorted"]


def quantile_of_sorted(values: Sequence[float], q: float) -> float:
    """The ``q``-quantile (``0 <= q <= 1``) of ascending ``values``; 0.0 for no values.

    Rank ``r = q * n``; samples ``v1..vn`` sit at ranks 1..n and the value is interpolated linearly
    between ``v[ceil(r) - 1]`` and ``v[ceil(r)]``, the lowest sample standing for everything at or
    below rank 1 — what ``histogram_quantile`` does with one bucket per sample, the minimum being
    the lower edge of the first bucket.
    """
    n = len(values)
    if n == 0:
        return 0.0
    rank = q * n
    if rank <= 1:
        return float(values[0])
    upper = math.ceil(rank)  # 1-based rank of the sample at or above ``rank``
    below = float(values[upper - 2])
    above = float(values[upper - 1])
    # Clamped: with a fraction of 1, ``below + (above - below)`` can round past ``above``.
    return min(above, below + (above - below) * (rank - (upper - 1)))


class ResponseTimeMonitor:
    """Response times over the last ``window_size`` commands (seconds)."""

    def __init__(self, window_size: int = 100) -> None:
        if isinstance(window_size, bool) or not isinstance(window_size, int) or window_size < 1:
            raise ValueError(f"window_size must be a positive integer, got {window_size!r}")
        self.window_size = window_size
        self.response_times: deque[float] = deque(maxlen=window_size)
        # Records come from the loop thread, reads may come from a scrape thread: copy under a lock.
        self._lock = threading.Lock()

    def record_response_time(self, response_time: float) -> None:
        if math.isnan(response_time) or response_time < 0:
            raise ValueError(f"response_time must be >= 0 seconds, got {response_time!r}")
        with self._lock:
            self.response_times.append(float(response_time))

    def get_average_response_time(self) -> float:
        """Mean over the window; 0 when nothing was recorded."""
        with self._lock:
            if not self.response_times:
                return 0.0
            return sum(self.response_times) / len(self.response_times)

    def is_slow_response(self, threshold: float = 1.0) -> bool:
        """Whether the window's mean (not a percentile) is over ``threshold`` seconds."""
        return self.get_average_response_time() > threshold

    def percentile(self, q: float) -> float:
        """The ``q``-quantile of the window, ``q`` in [0, 1]; 0.0 when empty."""
        _check_q(q)
        return quantile_of_sorted(self._sorted(), q)

    def percentiles(self) -> dict[str, float]:
        """p50, p95 and p99 of the window (one sort for the three)."""
        ordered = self._sorted()
        return {
            "p50": quantile_of_sorted(ordered, 0.50),
            "p95": quantile_of_sorted(ordered, 0.95),
            "p99": quantile_of_sorted(ordered, 0.99),
        }

    def _sorted(self) -> list[float]:
        with self._lock:
            snapshot = list(self.response_times)
        snapshot.sort()
        return snapshot

    def __len__(self) -> int:
        return len(self.response_times)


def _check_q(q: float) -> None:
    if not 0.0 <= q <= 1.0:  # also rejects NaN
        raise ValueError(f"q must be within [0, 1], got {q!r}")
