"""MemoryTracker: weak tracking, memory figures, a tracemalloc diff that finds a leak's line."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from support import burn_cpu_past, cpu_percent_bounds, read_cpu

from instrumentation.memory import AllocationGrowth, MemoryTracker


class Session:
    pass


class Cache:
    pass


@pytest.fixture
def tracker() -> Iterator[MemoryTracker]:
    tracker = MemoryTracker()
    yield tracker
    tracker.stop_tracing()


def test_tracking_is_weak_and_counted_by_kind(tracker: MemoryTracker) -> None:
    sessions = [Session() for _ in range(3)]
    cache = Cache()
    for obj in (*sessions, cache):
        tracker.track(obj)
    assert tracker.get_memory_usage()["tracked_objects"] == 4
    assert tracker.tracked_by_kind() == {"Session": 3, "Cache": 1}
    del sessions
    gc.collect()
    assert tracker.tracked_by_kind() == {"Cache": 1}
    assert tracker.get_memory_usage()["tracked_objects"] == 1


def test_objects_without_weak_references_are_refused(tracker: MemoryTracker) -> None:
    with pytest.raises(TypeError, match="weak references"):
        tracker.track(42)


def test_memory_usage_keeps_the_seed_keys_and_adds_rss(tracker: MemoryTracker) -> None:
    usage = tracker.get_memory_usage()
    assert usage["tracked_objects"] == 0
    gc_objects = usage["gc_objects"]
    assert isinstance(gc_objects, int) and gc_objects > 1000
    rss = usage["rss_bytes"]
    assert isinstance(rss, int)
    assert rss == pytest.approx(psutil.Process().memory_info().rss, rel=0.05)  # this process's RSS, in bytes
    # What tracemalloc says right now (another tool, or PYTHONTRACEMALLOC, may have started it).
    assert usage["tracing"] is tracemalloc.is_tracing()
    assert ("traced_current_bytes" in usage) is tracemalloc.is_tracing()
    assert len(usage["gc_counts"]) == 3  # type: ignore[arg-type]


def test_force_cleanup_collects_unreachable_cycles(tracker: MemoryTracker) -> None:
    gc.collect()
    gc.disable()  # no automatic collection may take the cycles before force_cleanup does
    try:
        for _ in range(50):
            a, b = Session(), Session()
            a.other, b.other = b, a  # type: ignore[attr-defined]
        del a, b
        result = tracker.force_cleanup()
    finally:
        gc.enable()
    collected = result["collected"]
    assert isinstance(collected, int) and collected >= 100
    assert "gc_objects" in result and "tracked_objects" in result


def test_importing_and_building_does_not_start_tracemalloc() -> None:
    code = (
        "import tracemalloc, instrumentation, instrumentation.memory as m\n"
        "m.MemoryTracker().get_memory_usage()\n"
        "assert not tracemalloc.is_tracing()\n"
    )
    # PYTHONTRACEMALLOC in the environment would start tracing at interpreter start-up.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONTRACEMALLOC"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 0, result.stderr


def _leak(store: list[bytearray]) -> None:
    for _ in range(200):
        store.append(bytearray(4096))  # LEAK-SITE


def test_growth_names_the_leaking_line(tracker: MemoryTracker) -> None:
    already = tracemalloc.is_tracing()
    tracker.start_tracing(frames=5)
    assert tracker.is_tracing
    store: list[bytearray] = []
    _leak(store)
    growth = tracker.growth_since_last(limit=5)
    assert growth and all(isinstance(g, AllocationGrowth) for g in growth)
    source = Path(__file__).read_text().splitlines()
    line = next(i for i, text in enumerate(source, 1) if text.endswith("# LEAK-SITE"))
    top = growth[0]
    assert top.site == f"{__file__}:{line}"
    assert top.size_diff_bytes >= 200 * 4096
    assert top.count_diff >= 200
    assert not any("tracemalloc" in g.site or "importlib" in g.site for g in growth)
    assert "KiB" in str(top)

    # The baseline moved forward: without new allocations there, the site does not show up again.
    again = tracker.growth_since_last(limit=50)
    assert all(g.site != top.site for g in again)

    tracker.stop_tracing()
    assert tracemalloc.is_tracing() == already
    with pytest.raises(RuntimeError, match="start_tracing"):
        tracker.growth_since_last()


def test_growth_before_start_is_an_error(tracker: MemoryTracker) -> None:
    with pytest.raises(RuntimeError, match="start_tracing"):
        tracker.growth_since_last()


def test_cpu_percent_uses_one_process_object() -> None:
    # The tracker primes its Process when built; its next reading covers the CPU burnt since.
    before_prime = read_cpu()
    tracker = MemoryTracker()
    after_prime = read_cpu()
    burn_cpu_past(after_prime.cpu + 0.05)  # psutil itself shows the counter moved (5 ticks)
    before = read_cpu()
    percent = tracker.cpu_percent()
    after = read_cpu()
    low, high = cpu_percent_bounds((before_prime, after_prime), (before, after))
    assert low <= percent <= high, (low, percent, high)
    assert percent > 0.0
    # The seed's pattern, a fresh Process per call, has nothing to compare with: always 0.0.
    assert psutil.Process().cpu_percent() == 0.0
