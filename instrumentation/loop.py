"""Event-loop lag monitor: how late the loop runs a scheduled wake-up, and who blocks it.

A blocked loop is what lies behind discord.py's "Shard ID None heartbeat blocked for more than
N seconds" warnings: some coroutine ran synchronous code (a blocking HTTP call, a heavy loop, a
``time.sleep``) and nothing else could run, heartbeats included.

Two parts:

* a **sampler task** on the loop sleeps ``interval`` seconds, measures how late it woke up with
  ``loop.time()`` and observes that into ``comet_event_loop_lag_seconds``;
* a **watchdog thread** checks, off the loop, whether the sampler's wake-up is overdue by more than
  ``block_threshold``. While the loop is still blocked it reads the loop thread's current frame
  (``sys._current_frames()``) and logs that stack at WARNING — the code doing the blocking — once per
  block, and increments ``comet_event_loop_blocked_total``.

A block too short for the watchdog's polling to catch is still counted by the sampler when it
finally wakes (then without a stack). Each block is counted once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import threading
import time
import traceback
from types import FrameType

from instrumentation.metrics import Metrics

__all__ = ["LoopLagMonitor"]

#: Most recent frames of the blocking stack written to the log.
STACK_LIMIT = 30


class LoopLagMonitor:
    """Measure event-loop lag and log the stack of whatever blocks the loop."""

    def __init__(
        self,
        metrics: Metrics,
        *,
        interval: float = 0.25,
        block_threshold: float = 0.5,
        logger: logging.Logger | None = None,
    ) -> None:
        if not interval > 0:
            raise ValueError(f"interval must be > 0 seconds, got {interval!r}")
        if not block_threshold > 0:
            raise ValueError(f"block_threshold must be > 0 seconds, got {block_threshold!r}")
        self._metrics = metrics
        self.interval = interval
        self.block_threshold = block_threshold
        self._logger = logger if logger is not None else logging.getLogger(__name__)
        self.max_lag = 0.0
        self.last_lag = 0.0

        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread_id: int | None = None
        self._task: asyncio.Task[None] | None = None
        self._watchdog: threading.Thread | None = None
        self._stopping = threading.Event()

        # Shared with the watchdog thread, under ``_lock``: the monotonic time the sampler should
        # wake up at (``_due``) and the one wake-up whose block was already counted.
        self._lock = threading.Lock()
        self._due = 0.0
        self._counted_due = -1.0
        # How often the watchdog looks: often enough to catch a block while it lasts.
        self._poll = min(0.1, max(0.005, block_threshold / 5))

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Start sampling; call from a coroutine running on the loop to watch."""
        if self.running:
            return
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._loop_thread_id = threading.get_ident()
        self._stopping.clear()
        with self._lock:
            self._due = time.monotonic() + self.interval
        self._task = loop.create_task(self._sample(), name="comet-loop-lag-sampler")
        self._watchdog = threading.Thread(target=self._watch, name="comet-loop-watchdog", daemon=True)
        self._watchdog.start()

    async def stop(self) -> None:
        """Stop the sampler and the watchdog thread."""
        self._stopping.set()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        watchdog, self._watchdog = self._watchdog, None
        if watchdog is not None:
            await asyncio.to_thread(watchdog.join, 5.0)

    # -- on the loop --------------------------------------------------------------------------

    async def _sample(self) -> None:
        loop = asyncio.get_running_loop()
        histogram = self._metrics.loop_lag
        while True:
            with self._lock:
                self._due = time.monotonic() + self.interval
            expected = loop.time() + self.interval
            await asyncio.sleep(self.interval)
            lag = max(0.0, loop.time() - expected)
            histogram.observe(lag)
            self.last_lag = lag
            if lag > self.max_lag:
                self.max_lag = lag
            if lag > self.block_threshold and self._count_block():
                # The watchdog missed this one (it was short): count it, without a stack.
                self._logger.warning(
                    "Event loop was blocked for %.3fs (over %.3fs); too short to capture the stack",
                    lag,
                    self.block_threshold,
                )

    # -- on the watchdog thread ---------------------------------------------------------------

    def _watch(self) -> None:
        while not self._stopping.wait(self._poll):
            loop = self._loop
            if loop is None or not loop.is_running() or loop.is_closed():
                continue
            with self._lock:
                overdue = time.monotonic() - self._due
            if overdue > self.block_threshold and self._count_block():
                self._log_stack(overdue)

    def _count_block(self) -> bool:
        """Count the block of the current wake-up, unless it was counted already."""
        with self._lock:
            if self._counted_due == self._due:
                return False
            self._counted_due = self._due
        self._metrics.loop_blocked.inc()
        return True

    def _log_stack(self, overdue: float) -> None:
        frame = sys._current_frames().get(self._loop_thread_id) if self._loop_thread_id else None
        stack = (
            _format_loop_stack(frame) if frame is not None else "  (the loop thread's frame is unavailable)"
        )
        del frame  # do not keep the loop thread's frames alive
        self._logger.warning(
            "Event loop blocked: a wake-up is %.3fs late (threshold %.3fs); the loop thread is at:\n%s",
            overdue,
            self.block_threshold,
            stack,
        )


def _format_loop_stack(frame: FrameType) -> str:
    """The stack of the callback the loop is running, innermost last, without the loop's own frames.

    Frames are collected from the innermost outwards up to ``Handle._run`` (where the loop calls a
    callback or steps a task); what lies outside it is the event loop and whoever started it.
    """
    frames: list[FrameType] = []
    current: FrameType | None = frame
    while current is not None and current.f_code is not _HANDLE_RUN_CODE:
        frames.append(current)
        current = current.f_back
    omitted = len(frames) > STACK_LIMIT
    summary = traceback.StackSummary.extract(
        ((f, f.f_lineno) for f in reversed(frames[:STACK_LIMIT])), lookup_lines=True
    )
    lines = "".join(summary.format()).rstrip("\n")
    if omitted:
        lines = f"  ... {len(frames) - STACK_LIMIT} outer frames omitted\n{lines}"
    return lines


_HANDLE_RUN_CODE = asyncio.events.Handle._run.__code__
