"""LoopLagMonitor: lag histogram, block counter, and the blocking stack in the log."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable

import pytest
from prometheus_client import CollectorRegistry

from instrumentation.loop import LoopLagMonitor
from instrumentation.metrics import Metrics


async def wait_until(predicate: Callable[[], bool], within: float = 5.0) -> None:
    """Re-check ``predicate`` every few milliseconds until it holds; fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.005)


def lag_count(registry: CollectorRegistry) -> float:
    return registry.get_sample_value("comet_event_loop_lag_seconds_count") or 0.0


def blocked(registry: CollectorRegistry) -> float:
    return registry.get_sample_value("comet_event_loop_blocked_total") or 0.0


def parse_the_whole_archive_synchronously() -> None:
    """The culprit: synchronous work inside a coroutine (a blocking call, as a bug would)."""
    time.sleep(0.5)


@pytest.mark.asyncio
async def test_blocking_call_is_counted_and_its_stack_logged(
    registry: CollectorRegistry, metrics: Metrics, caplog: pytest.LogCaptureFixture
) -> None:
    logger = logging.getLogger("test.looplag")
    monitor = LoopLagMonitor(metrics, interval=0.02, block_threshold=0.15, logger=logger)
    monitor.start()
    try:
        await wait_until(lambda: lag_count(registry) >= 2)  # sampling runs
        before = blocked(registry)

        async def handler() -> None:
            parse_the_whole_archive_synchronously()

        with caplog.at_level(logging.WARNING, logger="test.looplag"):
            await handler()
            await wait_until(lambda: lag_count(registry) >= 4)  # the sampler ticked after the block
    finally:
        await monitor.stop()

    assert blocked(registry) >= before + 1
    # The watchdog polls many times during the block but reports it once, with the culprit's stack.
    records = [r for r in caplog.records if "parse_the_whole_archive_synchronously" in r.getMessage()]
    assert len(records) == 1
    message = records[0].getMessage()
    assert records[0].levelno == logging.WARNING
    assert message.startswith("Event loop blocked")
    assert "time.sleep(0.5)" in message  # the very line that blocks
    assert "in handler" in message  # and the coroutine that called it
    # The sampler woke at least (block - interval) late; the histogram saw it.
    assert monitor.max_lag >= 0.5 - 0.02
    over_quarter = registry.get_sample_value("comet_event_loop_lag_seconds_bucket", {"le": "0.25"})
    assert over_quarter is not None and lag_count(registry) - over_quarter >= 1


@pytest.mark.asyncio
async def test_idle_loop_is_not_blocked(registry: CollectorRegistry, metrics: Metrics) -> None:
    monitor = LoopLagMonitor(metrics, interval=0.01, block_threshold=2.0)
    monitor.start()
    try:
        await wait_until(lambda: lag_count(registry) >= 10)
    finally:
        await monitor.stop()
    assert blocked(registry) == 0
    assert monitor.last_lag >= 0.0 and monitor.max_lag < 2.0


@pytest.mark.asyncio
async def test_stop_ends_the_sampler_and_the_watchdog(metrics: Metrics) -> None:
    before = {t.name for t in threading.enumerate()}
    assert "comet-loop-watchdog" not in before
    monitor = LoopLagMonitor(metrics, interval=0.01, block_threshold=0.5)
    monitor.start()
    monitor.start()  # idempotent while running
    assert monitor.running
    assert [t.name for t in threading.enumerate()].count("comet-loop-watchdog") == 1
    await monitor.stop()
    assert not monitor.running
    assert "comet-loop-watchdog" not in {t.name for t in threading.enumerate()}


def test_invalid_settings(metrics: Metrics) -> None:
    with pytest.raises(ValueError, match="interval"):
        LoopLagMonitor(metrics, interval=0)
    with pytest.raises(ValueError, match="block_threshold"):
        LoopLagMonitor(metrics, block_threshold=-1)
