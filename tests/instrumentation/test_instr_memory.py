"""MemoryTracker: weak tracking, memory figures, a tracemalloc diff that finds a leak's line."""

from __future__ import annotations

import gc
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

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
    assert isinstance(rss, int) and rss > 0
    assert usage["tracing"] is False
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
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
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
    tracker = MemoryTracker()
    # Burn a measurable amount of CPU (this is the condition measured, not a wait).
    start = time.process_time()
    while time.process_time() - start < 0.1:
        pass
    assert tracker.cpu_percent() > 0.0
    # The seed's pattern, a fresh Process per call, has nothing to compare with: always 0.0.
    assert psutil.Process().cpu_percent() == 0.0
