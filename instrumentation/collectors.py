"""Runtime collectors read at scrape time: the process (psutil) and the garbage collector.

Both are ``Collector`` objects that build metric families when Prometheus scrapes, so nothing is
updated in the background. They only read cheap counters — ``getrusage(2)``, ``/proc/<pid>/{statm,
status,fd}`` through psutil, ``gc.get_stats()`` — never ``gc.get_objects()`` or
``net_connections()``, which scan the whole heap or host and belong to the on-demand debug commands.

CPU time and context switches of this process come from ``resource.getrusage(RUSAGE_SELF)``: one
system call, microsecond CPU times, and the context switches of *every* thread. psutil's
``num_ctx_switches()`` reads ``/proc/<pid>/status`` on Linux, which holds the main thread's alone
(a thread sleeping 2,000 times added 2 there, 2,001 in getrusage): the metrics server's threads,
the loop watchdog and discord.py's heartbeat thread would be missing. Where ``resource`` does not
exist (Windows), or for a process given to :class:`ProcessCollector`, psutil reads them.

Names follow the standard ``process_*`` / ``python_gc_*`` series so common dashboards work; the
CPU user/system split and the context switches, which the standard set lacks, are ``comet_*``.
We register on a registry we create ourselves (never prometheus_client's global ``REGISTRY``,
which already carries its own process and GC collectors), so nothing is registered twice.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator

import psutil
from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from instrumentation.metrics import PREFIX

try:
    import resource
except ImportError:  # Windows
    resource = None  # type: ignore[assignment]

__all__ = ["GCCollector", "ProcessCollector", "register_runtime_collectors"]

logger = logging.getLogger(__name__)

#: psutil errors that make one group of process readings unavailable, not the whole scrape.
PSUTIL_ERRORS = (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess)

_Group = Callable[[psutil.Process], list[Metric]]


class ProcessCollector(Collector):
    """The process's CPU, memory, file descriptors, threads, context switches and start time.

    Every group of readings is taken under ``Process.oneshot()`` (one read of each ``/proc`` file)
    and fails on its own: a group psutil cannot read is left out of this scrape, the others are
    still exported.
    """

    def __init__(self, process: psutil.Process | None = None) -> None:
        """``process``: another process to read, all through psutil (default: this process)."""
        self._process = process if process is not None else psutil.Process()
        usage: tuple[tuple[str, _Group], ...] = (
            (("cpu_and_context_switches", self._own_usage),)  # one getrusage() for both
            if process is None and resource is not None
            else (("cpu", self._cpu), ("context_switches", self._context_switches))
        )
        self._groups: tuple[tuple[str, _Group], ...] = (
            *usage,
            ("memory", self._memory),
            ("fds", self._fds),
            ("threads", self._threads),
            ("start_time", self._start_time),
        )
        self._reported: set[str] = set()  # groups whose failure was logged already

    def describe(self) -> Iterable[Metric]:
        # Names only, so registering never has to read the process (or fail because of it).
        return [
            CounterMetricFamily("process_cpu_seconds", _CPU_HELP),
            CounterMetricFamily(f"{PREFIX}_process_cpu_seconds", _CPU_MODE_HELP, labels=["mode"]),
            GaugeMetricFamily("process_resident_memory_bytes", _RSS_HELP),
            GaugeMetricFamily("process_virtual_memory_bytes", _VMS_HELP),
            GaugeMetricFamily("process_open_fds", _OPEN_FDS_HELP),
            GaugeMetricFamily("process_max_fds", _MAX_FDS_HELP),
            GaugeMetricFamily("process_threads", _THREADS_HELP),
            CounterMetricFamily(f"{PREFIX}_process_context_switches", _CTX_HELP, labels=["kind"]),
            GaugeMetricFamily("process_start_time_seconds", _START_HELP),
        ]

    def collect(self) -> Iterator[Metric]:
        process = self._process
        families: list[Metric] = []
        with process.oneshot():
            for group, read in self._groups:
                try:
                    families.extend(read(process))
                except PSUTIL_ERRORS as exc:
                    self._report(group, exc)
        return iter(families)

    def _report(self, group: str, exc: BaseException) -> None:
        # Once per group: a permanently unreadable value must not flood the log every scrape.
        if group not in self._reported:
            self._reported.add(group)
            logger.warning("process metrics: %s unavailable (%s); left out of the scrape", group, exc)

    @staticmethod
    def _cpu(process: psutil.Process) -> list[Metric]:
        times = process.cpu_times()
        return _cpu_families(times.user, times.system)

    @staticmethod
    def _own_usage(process: psutil.Process) -> list[Metric]:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return [
            *_cpu_families(usage.ru_utime, usage.ru_stime),
            *_context_switch_families(usage.ru_nvcsw, usage.ru_nivcsw),
        ]

    @staticmethod
    def _memory(process: psutil.Process) -> list[Metric]:
        info = process.memory_info()
        return [
            GaugeMetricFamily("process_resident_memory_bytes", _RSS_HELP, value=info.rss),
            GaugeMetricFamily("process_virtual_memory_bytes", _VMS_HELP, value=info.vms),
        ]

    @staticmethod
    def _fds(process: psutil.Process) -> list[Metric]:
        # POSIX only; Windows has handles, not descriptors, and no standard series for them.
        num_fds = getattr(process, "num_fds", None)
        if num_fds is None:
            return []
        families: list[Metric] = [GaugeMetricFamily("process_open_fds", _OPEN_FDS_HELP, value=num_fds())]
        rlimit = getattr(process, "rlimit", None)
        if rlimit is not None and hasattr(psutil, "RLIMIT_NOFILE"):
            soft, _hard = rlimit(psutil.RLIMIT_NOFILE)
            if soft >= 0:  # RLIM_INFINITY is -1: no limit to report
                families.append(GaugeMetricFamily("process_max_fds", _MAX_FDS_HELP, value=soft))
        return families

    @staticmethod
    def _threads(process: psutil.Process) -> list[Metric]:
        return [GaugeMetricFamily("process_threads", _THREADS_HELP, value=process.num_threads())]

    @staticmethod
    def _context_switches(process: psutil.Process) -> list[Metric]:
        switches = process.num_ctx_switches()
        return _context_switch_families(switches.voluntary, switches.involuntary)

    @staticmethod
    def _start_time(process: psutil.Process) -> list[Metric]:
        return [GaugeMetricFamily("process_start_time_seconds", _START_HELP, value=process.create_time())]


def _cpu_families(user: float, system: float) -> list[Metric]:
    total = CounterMetricFamily("process_cpu_seconds", _CPU_HELP, value=user + system)
    by_mode = CounterMetricFamily(f"{PREFIX}_process_cpu_seconds", _CPU_MODE_HELP, labels=["mode"])
    by_mode.add_metric(["user"], user)
    by_mode.add_metric(["system"], system)
    return [total, by_mode]


def _context_switch_families(voluntary: int, involuntary: int) -> list[Metric]:
    family = CounterMetricFamily(f"{PREFIX}_process_context_switches", _CTX_HELP, labels=["kind"])
    family.add_metric(["voluntary"], voluntary)
    family.add_metric(["involuntary"], involuntary)
    return [family]


class GCCollector(Collector):
    """``python_gc_*`` per generation, from ``gc.get_stats()`` (a few integers; no heap walk)."""

    def describe(self) -> Iterable[Metric]:
        return self._families()

    def collect(self) -> Iterable[Metric]:
        collected, uncollectable, collections = families = self._families()
        for generation, stats in enumerate(gc.get_stats()):
            label = [str(generation)]
            collected.add_metric(label, stats["collected"])
            uncollectable.add_metric(label, stats["uncollectable"])
            collections.add_metric(label, stats["collections"])
        return families

    @staticmethod
    def _families() -> list[CounterMetricFamily]:
        return [
            CounterMetricFamily("python_gc_objects_collected", _GC_COLLECTED_HELP, labels=["generation"]),
            CounterMetricFamily(
                "python_gc_objects_uncollectable", _GC_UNCOLLECTABLE_HELP, labels=["generation"]
            ),
            CounterMetricFamily("python_gc_collections", _GC_COLLECTIONS_HELP, labels=["generation"]),
        ]


_registered: weakref.WeakKeyDictionary[CollectorRegistry, list[Collector]] = weakref.WeakKeyDictionary()
_registered_lock = threading.Lock()


def register_runtime_collectors(registry: CollectorRegistry) -> list[Collector]:
    """Register the process and GC collectors on ``registry`` once; later calls return the same ones.

    Raises ``ValueError`` (prometheus_client's "Duplicated timeseries") if ``registry`` already
    carries other collectors of these names, e.g. prometheus_client's own on its global REGISTRY.
    """
    with _registered_lock:
        existing = _registered.get(registry)
        if existing is not None:
            return list(existing)
        collectors: list[Collector] = [ProcessCollector(), GCCollector()]
        done: list[Collector] = []
        try:
            for collector in collectors:
                registry.register(collector)
                done.append(collector)
        except ValueError:
            for collector in done:  # leave the registry as it was
                registry.unregister(collector)
            raise
        _registered[registry] = collectors
        return list(collectors)


def has_runtime_collectors(registry: CollectorRegistry) -> bool:
    """Whether :func:`register_runtime_collectors` registered them on ``registry`` (none unregistered)."""
    with _registered_lock:
        return registry in _registered


def unregister_runtime_collectors(registry: CollectorRegistry) -> None:
    """Take the process and GC collectors off ``registry`` again; a later
    :func:`register_runtime_collectors` registers new ones. Nothing happens if there are none."""
    with _registered_lock:
        collectors = _registered.pop(registry, [])
        for collector in collectors:
            with contextlib.suppress(KeyError):
                registry.unregister(collector)


_CPU_HELP = "Total user and system CPU time spent in seconds."
_CPU_MODE_HELP = "CPU time spent by the process in seconds, by mode (user or system)."
_RSS_HELP = "Resident memory size in bytes."
_VMS_HELP = "Virtual memory size in bytes."
_OPEN_FDS_HELP = "Number of open file descriptors."
_MAX_FDS_HELP = "Maximum number of open file descriptors."
_THREADS_HELP = "Number of OS threads in the process."
_CTX_HELP = "Context switches of the process, all threads, by kind (voluntary or involuntary)."
_START_HELP = "Start time of the process since unix epoch in seconds."
_GC_COLLECTED_HELP = "Objects collected during gc."
_GC_UNCOLLECTABLE_HELP = "Uncollectable objects found during GC."
_GC_COLLECTIONS_HELP = "Number of times this generation was collected."
