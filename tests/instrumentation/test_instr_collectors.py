"""Process and GC collectors: real readings of this process, failure isolation, registration."""

from __future__ import annotations

import gc
import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client import ProcessCollector as ClientProcessCollector

from instrumentation.collectors import GCCollector, ProcessCollector, register_runtime_collectors

try:
    import resource
except ImportError:  # Windows
    resource = None  # type: ignore[assignment]

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def scrape(collector: ProcessCollector | GCCollector) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """All samples of one collect(), keyed by (name, sorted labels)."""
    samples = {}
    for family in collector.collect():
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def usage() -> tuple[float, float, int, int]:
    """This process's CPU seconds (user, system) and context switches (voluntary, involuntary)."""
    if resource is None:  # Windows: what the collector reads there
        times, switches = psutil.Process().cpu_times(), psutil.Process().num_ctx_switches()
        return times.user, times.system, switches.voluntary, switches.involuntary
    own = resource.getrusage(resource.RUSAGE_SELF)
    return own.ru_utime, own.ru_stime, own.ru_nvcsw, own.ru_nivcsw


def test_process_metrics_read_this_process() -> None:
    # Each figure against a reading of this process: the counters lie between a reading taken
    # just before the scrape and one just after (a separate Process object, nothing cached).
    reader = psutil.Process()
    before, threads_before = usage(), reader.num_threads()
    samples = scrape(ProcessCollector())
    after, threads_after = usage(), reader.num_threads()
    rss = samples[("process_resident_memory_bytes", ())]
    assert rss == pytest.approx(reader.memory_info().rss, rel=0.05)  # bytes of this process, not KiB
    assert samples[("process_virtual_memory_bytes", ())] >= rss
    assert samples[("process_start_time_seconds", ())] == pytest.approx(reader.create_time())
    threads = samples[("process_threads", ())]
    assert min(threads_before, threads_after) <= threads <= max(threads_before, threads_after)
    user = samples[("comet_process_cpu_seconds_total", (("mode", "user"),))]
    system = samples[("comet_process_cpu_seconds_total", (("mode", "system"),))]
    assert samples[("process_cpu_seconds_total", ())] == pytest.approx(user + system)
    voluntary = samples[("comet_process_context_switches_total", (("kind", "voluntary"),))]
    involuntary = samples[("comet_process_context_switches_total", (("kind", "involuntary"),))]
    for reading, value in zip(before, (user, system, voluntary, involuntary), strict=True):
        assert reading <= value
    for reading, value in zip(after, (user, system, voluntary, involuntary), strict=True):
        assert value <= reading


@pytest.mark.skipif(resource is None, reason="psutil reads them where getrusage does not exist")
def test_context_switches_count_every_thread_not_only_the_main_one() -> None:
    # A thread that sleeps blocks, and each block is a voluntary switch of that thread. psutil's
    # num_ctx_switches() (the main thread's, on Linux) barely moved for this; the process's must.
    collector = ProcessCollector()
    key = ("comet_process_context_switches_total", (("kind", "voluntary"),))
    before = scrape(collector)[key]

    def sleeper() -> None:
        for _ in range(200):
            time.sleep(0.0001)

    thread = threading.Thread(target=sleeper)
    thread.start()
    thread.join()
    assert scrape(collector)[key] - before >= 200


def test_another_process_is_read_through_psutil() -> None:
    # A child process, read from here: its CPU time is its own, not this process's.
    script = "import sys; sum(range(3_000_000)); print('summed', flush=True); sys.stdin.read()"
    child = subprocess.Popen(
        [sys.executable, "-c", script],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == b"summed\n"  # it has spent CPU time
        process = psutil.Process(child.pid)
        samples = scrape(ProcessCollector(process))
        mine = usage()
        theirs = process.cpu_times()
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(10)
    total = samples[("process_cpu_seconds_total", ())]
    assert 0 < total <= theirs.user + theirs.system
    assert total != pytest.approx(mine[0] + mine[1])
    assert samples[("process_start_time_seconds", ())] == pytest.approx(process.create_time())


@linux_only
def test_open_fds_follow_files_opened(tmp_path: Path) -> None:
    collector = ProcessCollector()
    before = scrape(collector)[("process_open_fds", ())]
    handles = [open(tmp_path / f"f{i}", "w") for i in range(3)]
    try:
        during = scrape(collector)[("process_open_fds", ())]
    finally:
        for handle in handles:
            handle.close()
    assert during == before + 3
    max_fds = scrape(collector)[("process_max_fds", ())]
    assert max_fds >= during


def test_threads_follow_threads_started() -> None:
    collector = ProcessCollector()
    release = threading.Event()
    started = threading.Event()

    def park() -> None:
        started.set()
        release.wait()

    before = scrape(collector)[("process_threads", ())]
    thread = threading.Thread(target=park)
    thread.start()
    try:
        assert started.wait(5)
        during = scrape(collector)[("process_threads", ())]
    finally:
        release.set()
        thread.join()
    assert during == before + 1


class _PartlyDenied(psutil.Process):
    """The real process, except that psutil refuses some readings (as for another user's process)."""

    def num_ctx_switches(self):  # type: ignore[no-untyped-def]
        raise psutil.AccessDenied(self.pid, "num_ctx_switches")

    def num_fds(self) -> int:
        raise psutil.ZombieProcess(self.pid, "zombie")

    def num_threads(self) -> int:
        raise psutil.NoSuchProcess(self.pid, "gone")


def test_one_failing_group_does_not_break_the_scrape(caplog: pytest.LogCaptureFixture) -> None:
    collector = ProcessCollector(_PartlyDenied(os.getpid()))
    registry = CollectorRegistry()
    registry.register(collector)
    with caplog.at_level(logging.WARNING, logger="instrumentation.collectors"):
        first = scrape(collector)
        second = scrape(collector)
    for samples in (first, second):
        names = {name for name, _ in samples}
        assert not names & {"process_open_fds", "process_threads", "comet_process_context_switches_total"}
        assert {
            "process_cpu_seconds_total",
            "process_resident_memory_bytes",
            "process_start_time_seconds",
        } <= names
    # Through the registry too (what a scrape does).
    assert registry.get_sample_value("process_cpu_seconds_total") is not None
    # Each unavailable group is reported once, not on every scrape.
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 3
    assert any("context_switches unavailable" in m for m in messages)


def test_gc_collector_counts_collections() -> None:
    collector = GCCollector()
    before = scrape(collector)[("python_gc_collections_total", (("generation", "0"),))]
    gc.collect(0)
    after = scrape(collector)
    assert after[("python_gc_collections_total", (("generation", "0"),))] >= before + 1
    generations = {labels for name, labels in after if name == "python_gc_objects_collected_total"}
    assert generations == {(("generation", str(g)),) for g in range(len(gc.get_stats()))}


def test_scrape_does_not_walk_the_heap_or_the_host(monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("expensive call on a scrape")

    monkeypatch.setattr(gc, "get_objects", forbidden)
    monkeypatch.setattr(psutil.Process, "net_connections", forbidden)
    monkeypatch.setattr(psutil, "net_connections", forbidden)
    registry = CollectorRegistry()
    register_runtime_collectors(registry)
    names = {family.name for family in registry.collect()}
    assert {"process_cpu_seconds", "python_gc_collections"} <= names


def test_register_runtime_collectors_is_idempotent_per_registry() -> None:
    registry = CollectorRegistry()
    first = register_runtime_collectors(registry)
    second = register_runtime_collectors(registry)
    assert first == second and len(first) == 2
    other = register_runtime_collectors(CollectorRegistry())
    assert all(a is not b for a, b in zip(first, other, strict=True))
    assert registry.get_sample_value("process_resident_memory_bytes") is not None


def test_registry_with_the_clients_process_collector_is_refused_cleanly() -> None:
    registry = CollectorRegistry(auto_describe=True)  # as instrumentation.metrics.default_registry()
    ClientProcessCollector(registry=registry)
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        register_runtime_collectors(registry)
    # Nothing half-registered: no GC collector was left behind, and a retry still refuses.
    assert registry.get_sample_value("python_gc_collections_total", {"generation": "0"}) is None
    with pytest.raises(ValueError):
        register_runtime_collectors(registry)
