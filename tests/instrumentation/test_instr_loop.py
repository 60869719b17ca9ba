"""LoopLagMonitor: lag histogram, block counter, and the blocking stack in the log.

The monitor's clocks are virtual here (``virtual_time``): with real clocks "the loop was not blocked"
is a claim about the machine's load, and "blocked for 0.5 s" depends on when the scheduler runs the
watchdog thread. With the test moving time, an on-time wake-up is exactly on time and a block lasts
exactly as long as the test makes it, on any machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from prometheus_client import CollectorRegistry

from instrumentation.loop import LoopLagMonitor
from instrumentation.metrics import Metrics


def lag_count(registry: CollectorRegistry) -> float:
    return registry.get_sample_value("comet_event_loop_lag_seconds_count") or 0.0


def lag_at_most(registry: CollectorRegistry, bound: str) -> float:
    return registry.get_sample_value("comet_event_loop_lag_seconds_bucket", {"le": bound}) or 0.0


def blocked(registry: CollectorRegistry) -> float:
    return registry.get_sample_value("comet_event_loop_blocked_total") or 0.0


class VirtualClock:
    """The monitor's clocks — the loop's ``time()`` (which also schedules its sleeps) and the
    ``time.monotonic()`` its watchdog thread reads — moved by the test alone."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@contextlib.contextmanager
def virtual_time(monkeypatch: pytest.MonkeyPatch) -> Iterator[VirtualClock]:
    clock = VirtualClock()
    with monkeypatch.context() as patch:  # undone inside the test, before its event loop is closed
        patch.setattr(asyncio.get_running_loop(), "time", clock)
        patch.setattr("instrumentation.loop.time", SimpleNamespace(monotonic=clock))
        yield clock


async def next_sample(registry: CollectorRegistry, clock: VirtualClock, seconds: float) -> None:
    """Let ``seconds`` of virtual time pass, then wait until the sampler has observed its wake-up."""
    count = lag_count(registry)
    clock.advance(seconds)
    for _ in range(1000):  # loop iterations, not time: the sampler's timer is due, it runs next
        if lag_count(registry) > count:
            return
        await asyncio.sleep(0)
    raise AssertionError("the sampler did not wake up once its sleep was over")


async def start(monitor: LoopLagMonitor) -> None:
    monitor.start()
    # One turn of the loop: the sampler's first step (queued before this task's) starts its first
    # sleep at the current virtual time.
    await asyncio.sleep(0)


class CountingEvent(threading.Event):
    """The monitor's stop event, counting the watchdog's polls (each poll is a timed-out ``wait``)."""

    def __init__(self) -> None:
        super().__init__()
        self.polls = 0
        self._polled = threading.Condition()

    def wait(self, timeout: float | None = None) -> bool:
        result = super().wait(timeout)
        with self._polled:
            self.polls += 1
            self._polled.notify_all()
        return result

    def wait_for_polls(self, count: int) -> bool:
        with self._polled:
            return self._polled.wait_for(lambda: self.polls >= count, timeout=30)


async def watchdog_looked(stopping: CountingEvent) -> None:
    """Until the watchdog has checked the wake-up at least once from now on (two more polls)."""
    assert await asyncio.to_thread(stopping.wait_for_polls, stopping.polls + 2)


class ReportWatcher(logging.Handler):
    """Sets ``reported`` when a record naming ``culprit`` (the blocking stack) is logged."""

    def __init__(self, culprit: str) -> None:
        super().__init__(logging.WARNING)
        self.culprit = culprit
        self.reported = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.culprit in record.getMessage():
            self.reported.set()


def parse_the_whole_archive_synchronously(clock: VirtualClock, watcher: ReportWatcher) -> bool:
    """The culprit: synchronous work inside a coroutine (a blocking call, as a bug would). 1 s passes
    while it holds the loop, until the watchdog thread has reported it (a bounded wait)."""
    clock.advance(1.0)  # the sampler's wake-up was due 0.25 s after the last one: now 0.75 s late
    return watcher.reported.wait(timeout=30)


@pytest.mark.asyncio
async def test_blocking_call_is_counted_and_its_stack_logged(
    registry: CollectorRegistry,
    metrics: Metrics,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    logger = logging.getLogger("test.looplag")
    watcher = ReportWatcher("parse_the_whole_archive_synchronously")
    logger.addHandler(watcher)
    try:
        with virtual_time(monkeypatch) as clock, caplog.at_level(logging.WARNING, logger="test.looplag"):
            monitor = LoopLagMonitor(metrics, interval=0.25, block_threshold=0.5, logger=logger)
            await start(monitor)
            try:
                for _ in range(2):  # sampling runs, on time
                    await next_sample(registry, clock, 0.25)
                assert blocked(registry) == 0

                async def handler() -> bool:
                    return parse_the_whole_archive_synchronously(clock, watcher)

                reported_while_blocked = await handler()
                await next_sample(registry, clock, 0)  # the late wake-up was due: it runs now
            finally:
                await monitor.stop()  # joins the watchdog: its log call is complete
    finally:
        logger.removeHandler(watcher)

    assert reported_while_blocked, "the watchdog did not report the block while it lasted"
    # Counted once: by the watchdog during the block, not again by the sampler when it woke.
    assert blocked(registry) == 1
    records = [r for r in caplog.records if r.name == "test.looplag"]
    assert len(records) == 1
    message = records[0].getMessage()
    assert records[0].levelno == logging.WARNING
    assert message.startswith(
        "Event loop blocked: a wake-up is 0.750s late (threshold 0.500s); the loop thread is at:\n"
    )
    assert "return watcher.reported.wait(timeout=30)" in message  # the very line that blocks
    assert "in parse_the_whole_archive_synchronously" in message
    assert "in handler" in message  # and the coroutine that called it
    # The sampler woke exactly 0.75 s late; the histogram saw it, above the 0.5 s bucket.
    assert monitor.max_lag == monitor.last_lag == 0.75
    assert lag_count(registry) == 3
    assert lag_at_most(registry, "0.001") == 2 and lag_at_most(registry, "0.5") == 2
    assert lag_at_most(registry, "1.0") == 3


@pytest.mark.asyncio
async def test_idle_loop_is_not_blocked(
    registry: CollectorRegistry, metrics: Metrics, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A threshold below the sampling interval: a monitor that took its own sleep for lag, or timed
    # the watchdog from the start of the sleep, would count a block on every wake-up.
    with virtual_time(monkeypatch) as clock:
        monitor = LoopLagMonitor(metrics, interval=0.25, block_threshold=0.1)
        stopping = monitor._stopping = CountingEvent()
        await start(monitor)
        try:
            for n in range(10):
                clock.advance(0.1875)  # most of the sleep: not due yet, so no wake-up is observed
                await watchdog_looked(stopping)  # (and the watchdog saw this moment)
                assert lag_count(registry) == n
                await next_sample(registry, clock, 0.0625)  # due exactly now
        finally:
            await monitor.stop()
    assert lag_count(registry) == 10
    assert lag_at_most(registry, "0.001") == 10  # every wake-up exactly on time
    assert blocked(registry) == 0
    assert monitor.last_lag == 0.0 and monitor.max_lag == 0.0


@pytest.mark.asyncio
async def test_stop_ends_the_sampler_and_the_watchdog(metrics: Metrics) -> None:
    # This monitor's own thread (another test's leftover watchdog would share the name).
    before = set(threading.enumerate())
    monitor = LoopLagMonitor(metrics, interval=0.01, block_threshold=0.5)
    monitor.start()
    monitor.start()  # idempotent while running
    assert monitor.running
    started = [t for t in set(threading.enumerate()) - before if t.name == "comet-loop-watchdog"]
    assert len(started) == 1
    await monitor.stop()
    assert not monitor.running
    assert not started[0].is_alive()


def test_invalid_settings(metrics: Metrics) -> None:
    with pytest.raises(ValueError, match="interval"):
        LoopLagMonitor(metrics, interval=0)
    with pytest.raises(ValueError, match="block_threshold"):
        LoopLagMonitor(metrics, block_threshold=-1)
