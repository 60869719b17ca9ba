"""``MemoryTracker``: the tool an owner uses to find a leak.

* ``track(obj)`` keeps a weak reference, so tracking never keeps anything alive;
  ``tracked_by_kind()`` counts what is still alive by type.
* ``get_memory_usage()`` keeps the keys (``tracked_objects``, ``gc_objects``) and adds the
  RSS and the collector's state. ``gc_objects`` walks the whole heap (``gc.get_objects()``): it is
  computed here, on demand, for the owner's command — never on a scrape.
* ``start_tracing()`` / ``growth_since_last()`` / ``stop_tracing()``: tracemalloc snapshot diffs
  naming the allocation sites (``file:line``) that grew most since the previous look. tracemalloc
  slows the whole process down 5-25x, so it runs only between an explicit start and stop.
* ``cpu_percent()`` reads one long-lived ``psutil.Process``: on a fresh object psutil has no
  earlier reading to compare with and always answers 0.0 (a bug of the first version).
"""

from __future__ import annotations

import gc
import threading
import tracemalloc
import weakref
from collections import Counter
from dataclasses import dataclass

import psutil

__all__ = ["AllocationGrowth", "MemoryTracker"]

#: Frames that are the tracer's or the import system's own allocations, not the program's.
_NOISE_FILTERS = (
    tracemalloc.Filter(False, tracemalloc.__file__),
    tracemalloc.Filter(False, "<frozen importlib._bootstrap>"),
    tracemalloc.Filter(False, "<frozen importlib._bootstrap_external>"),
    tracemalloc.Filter(False, "<unknown>"),
)


@dataclass(frozen=True, slots=True)
class AllocationGrowth:
    """One allocation site that grew between two snapshots."""

    site: str  # "path/to/file.py:123"
    size_diff_bytes: int
    count_diff: int

    def __str__(self) -> str:
        return f"{self.site}: +{self.size_diff_bytes / 1024:.1f} KiB in {self.count_diff:+d} blocks"


class MemoryTracker:
    """Weakly tracked objects, memory figures, and on-demand allocation diffs."""

    def __init__(self, process: psutil.Process | None = None) -> None:
        self.tracked_objects: weakref.WeakSet[object] = weakref.WeakSet()
        self._process = process if process is not None else psutil.Process()
        # Prime the CPU reading: the first call on a Process has nothing to compare with.
        self._safe_cpu_percent()
        self._lock = threading.Lock()
        self._baseline: tracemalloc.Snapshot | None = None
        self._started_tracing = False

    # -- the public API -----------------------------------------------------------------------

    def track(self, obj: object) -> None:
        """Track ``obj`` weakly (it must support weak references, as class instances do)."""
        try:
            self.tracked_objects.add(obj)
        except TypeError:
            raise TypeError(
                f"cannot track a {type(obj).__name__}: it does not support weak references"
            ) from None

    def get_memory_usage(self) -> dict[str, object]:
        """Memory figures now. Walks the heap once for ``gc_objects`` (seconds on a big bot)."""
        usage: dict[str, object] = {
            "tracked_objects": len(self.tracked_objects),
            "gc_objects": len(gc.get_objects()),
            "gc_counts": gc.get_count(),
            "gc_collections": [stats["collections"] for stats in gc.get_stats()],
            "gc_uncollectable": len(gc.garbage),
        }
        try:
            info = self._process.memory_info()
            usage["rss_bytes"] = info.rss
            usage["vms_bytes"] = info.vms
        except (psutil.AccessDenied, psutil.NoSuchProcess):
            usage["rss_bytes"] = None
            usage["vms_bytes"] = None
        usage["tracing"] = tracemalloc.is_tracing()
        if tracemalloc.is_tracing():
            current, peak = tracemalloc.get_traced_memory()
            usage["traced_current_bytes"] = current
            usage["traced_peak_bytes"] = peak
        return usage

    def force_cleanup(self) -> dict[str, object]:
        """Run a full collection, then report memory usage plus how many objects it freed."""
        collected = gc.collect()
        usage = self.get_memory_usage()
        usage["collected"] = collected
        return usage

    # -- additions ----------------------------------------------------------------------------

    def tracked_by_kind(self) -> dict[str, int]:
        """Live tracked objects by type name, most numerous first."""
        counts = Counter(type(obj).__qualname__ for obj in list(self.tracked_objects))
        return dict(counts.most_common())

    def cpu_percent(self) -> float:
        """Process CPU use since the previous call (100.0 = one full core)."""
        return self._safe_cpu_percent()

    def _safe_cpu_percent(self) -> float:
        try:
            return float(self._process.cpu_percent(interval=None))
        except (psutil.AccessDenied, psutil.NoSuchProcess):
            return 0.0

    @property
    def is_tracing(self) -> bool:
        return tracemalloc.is_tracing()

    def start_tracing(self, frames: int = 10) -> None:
        """Start tracemalloc (if not already running) and take the baseline snapshot."""
        if frames < 1:
            raise ValueError(f"frames must be >= 1, got {frames!r}")
        with self._lock:
            if not tracemalloc.is_tracing():
                tracemalloc.start(frames)
                self._started_tracing = True
            self._baseline = self._snapshot()

    def stop_tracing(self) -> None:
        """Stop tracemalloc if this tracker started it, and forget the baseline."""
        with self._lock:
            if self._started_tracing and tracemalloc.is_tracing():
                tracemalloc.stop()
            self._started_tracing = False
            self._baseline = None

    def growth_since_last(self, limit: int = 10) -> list[AllocationGrowth]:
        """The ``limit`` allocation sites that grew most since the previous call (or the start).

        Sites are the innermost frame of each allocation (``compare_to(..., "lineno")``), without
        tracemalloc's and the import system's own frames. Each call moves the baseline forward.
        """
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit!r}")
        with self._lock:
            if self._baseline is None or not tracemalloc.is_tracing():
                raise RuntimeError("tracemalloc is not running: call start_tracing() first")
            snapshot = self._snapshot()
            stats = snapshot.compare_to(self._baseline, "lineno")
            self._baseline = snapshot
        grown = [stat for stat in stats if stat.size_diff > 0]
        grown.sort(key=lambda stat: stat.size_diff, reverse=True)
        result = []
        for stat in grown[:limit]:
            frame = stat.traceback[0]
            result.append(
                AllocationGrowth(f"{frame.filename}:{frame.lineno}", stat.size_diff, stat.count_diff)
            )
        return result

    @staticmethod
    def _snapshot() -> tracemalloc.Snapshot:
        return tracemalloc.take_snapshot().filter_traces(_NOISE_FILTERS)
