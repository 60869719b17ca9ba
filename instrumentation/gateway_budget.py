"""The gateway send budget: what is left of each shard's allowance of outgoing gateway commands, and
how long senders waited for it.

discord.py spaces outgoing gateway commands (presence updates, member requests, voice state; not
heartbeats) through a ``GatewayRatelimiter`` per connection: 110 per 60 s. A burst of member
queries spends it, and then every gateway command of that shard waits, up to a minute, with only
a warning in the log. The limiter is a new object on every connection, so:

* its state is read at scrape time from the bot's current websockets
  (``comet_gateway_send_budget_remaining`` / ``_limit``);
* ``GatewayRatelimiter.block`` is patched once per process, at class level, to time each wait; a
  limiter is tied to its bot's metrics when the bot becomes ready or resumes, and at every scrape.
  The patch fails open: an error in the bookkeeping is counted and the send goes on.

A wait can last a minute, so it is visible while it lasts, not only once it ended: a delayed send
is counted when it starts waiting (``comet_gateway_sends_delayed_total``), the senders waiting now
are a gauge (``comet_gateway_sends_waiting``), and ``comet_gateway_send_wait_seconds_total``
includes the time the waits in progress have waited so far (it still only grows: a wait's
final time replaces its running time when it ends).
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
import weakref
from collections.abc import Iterable, Iterator

import discord
from discord.gateway import GatewayRatelimiter
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

_MARK = "_comet_timed"
#: Each limiter, once seen, and the metrics its waits are counted in (its shard's label too).
_owners: weakref.WeakKeyDictionary[GatewayRatelimiter, tuple[GatewayBudget, str]] = (
    weakref.WeakKeyDictionary()
)


def _shard_ids(bot: discord.Client) -> list[int]:
    shards = getattr(bot, "shards", None)
    if isinstance(shards, dict) and shards:
        return sorted(shards)
    return [bot.shard_id or 0]


def current_limiters(bot: discord.Client) -> Iterator[tuple[int, GatewayRatelimiter]]:
    """(shard id, limiter) of every connected websocket of ``bot``."""
    for shard in _shard_ids(bot):
        try:
            ws = bot._get_websocket(shard_id=shard)
        except (AttributeError, KeyError):
            continue
        limiter = getattr(ws, "_rate_limiter", None)
        if isinstance(limiter, GatewayRatelimiter):
            yield shard, limiter


def budget_left(limiter: GatewayRatelimiter, now: float | None = None) -> int:
    """What the limiter would allow now: the whole budget once its window has passed."""
    current = time.time() if now is None else now
    return limiter.max if current > limiter.window + limiter.per else limiter.remaining


class GatewayBudget(Collector):
    """The send-budget metrics of one registry: gauges read at scrape time from the bot it reads
    from, and the wait counters the patched limiter writes."""

    def __init__(self, registry: CollectorRegistry, prefix: str = "comet") -> None:
        self._prefix = prefix
        self._bot: weakref.ref[discord.Client] | None = None
        self.delayed = Counter(
            f"{prefix}_gateway_sends_delayed",
            "Gateway commands that found the shard's send budget spent (or another sender waiting), "
            "counted when their wait starts.",
            ["shard"],
            registry=registry,
        )
        self.errors = Counter(
            f"{prefix}_gateway_budget_errors",
            "Failures of the send-budget bookkeeping (the send itself went on).",
            registry=registry,
        )
        # Written on the loop thread by the patched block(), read by the scrape's request thread.
        self._lock = threading.Lock()
        self._waited: dict[str, float] = {}  # shard -> seconds of the waits that ended
        self._waiting: dict[int, tuple[str, float]] = {}  # wait number -> (shard, perf_counter start)
        self._numbers = itertools.count()
        registry.register(self)

    def register_shards(self, shard_ids: Iterable[int]) -> None:
        with self._lock:
            for shard in shard_ids:
                self._waited.setdefault(str(shard), 0.0)
        for shard in shard_ids:
            self.delayed.labels(str(shard))

    def wait_started(self, shard: str) -> int:
        """Note a send that starts waiting; returns its number for :meth:`wait_ended`."""
        self.delayed.labels(shard).inc()
        number = next(self._numbers)
        with self._lock:
            self._waiting[number] = (shard, time.perf_counter())
        return number

    def wait_ended(self, number: int) -> None:
        with self._lock:
            shard, started = self._waiting.pop(number)
            self._waited[shard] = self._waited.get(shard, 0.0) + time.perf_counter() - started

    def read_from(self, bot: discord.Client) -> None:
        """Read ``bot``'s limiters from now on, and time their waits."""
        _patch_block()
        self._bot = weakref.ref(bot)
        self.adopt()

    def adopt(self) -> None:
        """Tie the bot's current limiters to these counters (a reconnect makes new ones): called
        when a shard connects, becomes ready or resumes, and at every scrape."""
        bot = self._bot() if self._bot is not None else None
        if bot is None:
            return
        try:
            for shard, limiter in current_limiters(bot):
                _owners[limiter] = (self, str(shard))
        except Exception:
            self.errors.inc()
            log.exception("gateway send budget: reading the limiters failed")

    def describe(self) -> list[Metric]:
        return [self._wait_family(), *self._budget_families()]

    def _wait_family(self) -> CounterMetricFamily:
        return CounterMetricFamily(
            f"{self._prefix}_gateway_send_wait_seconds",
            "Time gateway commands waited for the shard's send budget (110 per 60 s), in seconds; "
            "the waits in progress included.",
            labels=["shard"],
        )

    def _budget_families(self) -> tuple[GaugeMetricFamily, GaugeMetricFamily, GaugeMetricFamily]:
        return (
            GaugeMetricFamily(
                f"{self._prefix}_gateway_send_budget_remaining",
                "Gateway commands the shard may still send in its current 60 s window.",
                labels=["shard"],
            ),
            GaugeMetricFamily(
                f"{self._prefix}_gateway_send_budget_limit",
                "Gateway commands a shard may send per window (discord.py keeps 10 for heartbeats' sake).",
                labels=["shard"],
            ),
            GaugeMetricFamily(
                f"{self._prefix}_gateway_sends_waiting",
                "Gateway commands waiting for the shard's send budget now.",
                labels=["shard"],
            ),
        )

    def collect(self) -> Iterator[Metric]:
        waited = self._wait_family()
        remaining, limit, waiting = self._budget_families()
        clock = time.perf_counter()
        with self._lock:
            seconds = dict(self._waited)
            counts = dict.fromkeys(seconds, 0)
            for label, started in self._waiting.values():
                seconds[label] = seconds.get(label, 0.0) + clock - started
                counts[label] = counts.get(label, 0) + 1
        for label in sorted(seconds, key=int):
            waited.add_metric([label], seconds[label])
            waiting.add_metric([label], counts[label])
        yield waited
        yield waiting
        bot = self._bot() if self._bot is not None else None
        if bot is not None:
            try:
                now = time.time()
                for shard, limiter in current_limiters(bot):
                    _owners[limiter] = (self, str(shard))
                    remaining.add_metric([str(shard)], budget_left(limiter, now))
                    limit.add_metric([str(shard)], limiter.max)
            except Exception:  # a scrape never fails because of the bot's state
                self.errors.inc()
                log.exception("gateway send budget: reading the limiters failed")
        yield remaining
        yield limit


def _patch_block() -> None:
    original = GatewayRatelimiter.block
    if getattr(original, _MARK, False):
        return

    async def block(self: GatewayRatelimiter) -> None:
        owner = _owners.get(self)
        if owner is None:
            await original(self)
            return
        metrics, shard = owner
        number: int | None = None
        try:
            if self.lock.locked() or self.is_ratelimited():
                number = metrics.wait_started(shard)
        except Exception:
            metrics.errors.inc()
        try:
            await original(self)
        finally:
            if number is not None:
                try:
                    metrics.wait_ended(number)
                except Exception:
                    metrics.errors.inc()

    setattr(block, _MARK, True)
    GatewayRatelimiter.block = block  # type: ignore[method-assign]
