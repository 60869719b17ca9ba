"""How an instrumentation sees a bot's events, and how it writes what it saw in batches.

Dispatch taps versus listeners
    discord.py runs every listener of every event as a new task; for the two gateway events and the
    completion of each command that is most of the instrumentation's cost. A bot that exposes
    ``dispatch_taps`` (a :class:`DispatchTaps`, called synchronously from its ``dispatch`` override,
    as ``CometBot`` does) gets plain function calls instead, at the exact moment of the event. Any
    other bot gets the same measurements through listeners (:class:`EventHandlers` picks).

Batched writes
    A handler only notes what happened (name, kind, outcome, the duration measured at the event);
    the Prometheus series are written in one batch ``flush_interval`` (0.1 s) after the first pending
    note, and on ``flush()`` / ``uninstall()``. Writing 100 observations in a row costs a fraction of
    writing them one by one between other work (cold caches, locks), which is what keeps the
    end-to-end cost near 1 %; a scrape sees data at most ``flush_interval`` old.
    ``flush_interval=0`` writes immediately.

Handlers fail open (:mod:`instrumentation.fail_open`): a command never sees their exceptions.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import Any

from discord.ext import commands

from instrumentation.fail_open import HookFailures
from instrumentation.metrics import Metrics

__all__ = ["AnyBot", "BatchedInstrumentation", "DispatchTaps", "EventHandlers", "dispatch_taps_of"]

log = logging.getLogger(__name__)

AnyBot = commands.Bot | commands.AutoShardedBot


class DispatchTaps:
    """Synchronous observers of a bot's events, run by the bot's ``dispatch`` (no task per event).

    A bot class opts in with ``self.dispatch_taps = DispatchTaps()`` (set before ``super().__init__``)
    and a ``dispatch`` override that calls ``self.dispatch_taps.run(event_name, args)`` first. Taps
    must be quick and must not await; an exception in one is logged and never reaches the bot.
    """

    def __init__(self) -> None:
        self._by_event: dict[str, tuple[Callable[..., None], ...]] = {}

    def add(self, event: str, tap: Callable[..., None]) -> None:
        current = self._by_event.get(event, ())
        if tap not in current:
            self._by_event[event] = (*current, tap)

    def remove(self, event: str, tap: Callable[..., None]) -> None:
        remaining = tuple(t for t in self._by_event.get(event, ()) if t != tap)
        if remaining:
            self._by_event[event] = remaining
        else:
            self._by_event.pop(event, None)

    def count(self, event: str) -> int:
        return len(self._by_event.get(event, ()))

    def run(self, event: str, args: tuple[Any, ...]) -> None:
        taps = self._by_event.get(event)
        if taps:
            for tap in taps:
                try:
                    tap(*args)
                except Exception:
                    log.exception("dispatch tap for %s failed", event)


def dispatch_taps_of(bot: object) -> DispatchTaps | None:
    taps = getattr(bot, "dispatch_taps", None)
    return taps if isinstance(taps, DispatchTaps) else None


class EventHandlers:
    """Where one instrumentation's handlers are attached: taps when the bot has them, else listeners."""

    def __init__(self, bot: AnyBot) -> None:
        self.bot = bot
        self.taps = dispatch_taps_of(bot)
        self._attached: list[tuple[str, Callable[..., Any]]] = []

    def attach(self, event: str, handler: Callable[..., None]) -> None:
        if self.taps is not None:
            self.taps.add(event, handler)
            self._attached.append((event, handler))
            return

        async def listener(*args: Any) -> None:
            handler(*args)

        self.bot.add_listener(listener, f"on_{event}")
        self._attached.append((event, listener))

    def detach_all(self) -> None:
        for event, handler in self._attached:
            if self.taps is not None:
                self.taps.remove(event, handler)
            else:
                self.bot.remove_listener(handler, f"on_{event}")
        self._attached.clear()


class BatchedInstrumentation:
    """What every instrumentation shares: its handlers, fail-open counting, install state, batching.

    ``hooks`` are the labels its hooks can fail under (its registry's names), pre-initialised here.
    """

    def __init__(self, bot: AnyBot, metrics: Metrics, hooks: Iterable[str], flush_interval: float) -> None:
        if flush_interval < 0:
            raise ValueError("flush_interval must be >= 0")
        self.bot = bot
        self.metrics = metrics
        self.flush_interval = flush_interval
        self.hook_failures = HookFailures(metrics.instrumentation_errors, hooks)
        self._flush_handle: asyncio.TimerHandle | None = None
        self._installed = False
        self._handlers = EventHandlers(bot)

    def flush(self) -> None:
        raise NotImplementedError

    def _schedule_flush(self) -> None:
        """Flush ``flush_interval`` from now (at once when it is 0 or outside a running loop).

        Callers check ``self._flush_handle is None`` first: a flush already scheduled takes the note.
        """
        if self.flush_interval == 0:
            self.flush()
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()
            return
        self._flush_handle = loop.call_later(self.flush_interval, self.flush)

    def _cancel_scheduled_flush(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
