"""Gateway events by type, latency and connection state per shard, readiness, and cache sizes.

Gateway events are counted in a plain dict and written in batches (:mod:`instrumentation.taps`);
readiness and the cache sizes are read when Prometheus scrapes; latency is sampled on connect and
every ``latency_interval``. Every handler fails open (:mod:`instrumentation.fail_open`).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Iterable
from typing import Any

import discord

from instrumentation import cache_sizes
from instrumentation.fail_open import HookRegistry
from instrumentation.metrics import Metrics, gateway_event_label
from instrumentation.taps import AnyBot, BatchedInstrumentation

__all__ = ["GatewayInstrumentation", "finite_or_none"]

#: The ``hook`` labels of GatewayInstrumentation; the rest are declared by their ``@HOOKS.fail_open``.
HOOKS = HookRegistry()
SOCKET_EVENT_TYPE = HOOKS.declare("socket_event_type")  # the tap, and the batch it feeds


def finite_or_none(value: float | None) -> float | None:
    """discord.py's latency is NaN before connecting and inf before the first heartbeat ACK."""
    if value is None or not math.isfinite(value):
        return None
    return value


class GatewayInstrumentation(BatchedInstrumentation):
    """Gateway events by type, latency and connection state per shard, ready, cache sizes."""

    hooks = HOOKS

    def __init__(
        self, bot: AnyBot, metrics: Metrics, *, latency_interval: float = 5.0, flush_interval: float = 0.1
    ) -> None:
        if latency_interval <= 0:
            raise ValueError("latency_interval must be > 0")
        # The cache sizes are bound to the bot here, so their failures are this instrumentation's too.
        super().__init__(bot, metrics, (*HOOKS.names, *cache_sizes.HOOKS.names), flush_interval)
        self.latency_interval = latency_interval
        self._event_children: dict[str, Any] = {}
        self._pending_events: dict[str, int] = {}
        self._shard_up: dict[int, bool] = {}
        self._latency_task: asyncio.Task[None] | None = None
        self._sharded = isinstance(bot, discord.AutoShardedClient)

    def install(self) -> None:
        if self._installed:
            return
        handlers = self._handlers
        handlers.attach("socket_event_type", self._on_socket_event_type)
        if self._sharded:
            handlers.attach("shard_connect", self._on_shard_up)
            handlers.attach("shard_ready", self._on_shard_up)
            handlers.attach("shard_resumed", self._on_shard_resumed)
            handlers.attach("shard_disconnect", self._on_shard_disconnect)
        else:
            handlers.attach("connect", self._on_connect)
            handlers.attach("ready", self._on_connect)
            handlers.attach("resumed", self._on_resumed)
            handlers.attach("disconnect", self._on_disconnect)
        self.register_known_shards()
        self.metrics.ready.set_function(self.ready_value)
        self.metrics.cache_sizes.read_from(self.bot, self.hook_failures)
        self.metrics.gateway_budget.read_from(self.bot)
        self._installed = True
        self._ensure_latency_task()

    def uninstall(self) -> None:
        if not self._installed:
            return
        self._handlers.detach_all()
        self.flush()
        if self._latency_task is not None:
            self._latency_task.cancel()
            self._latency_task = None
        self._installed = False

    def register_known_shards(self) -> list[int]:
        ids = self.shard_ids()
        self.metrics.register_shards(i for i in ids if i not in self._shard_up)
        for i in ids:
            self._shard_up.setdefault(i, False)
        return ids

    def shard_ids(self) -> list[int]:
        """The shards this process runs (known once configured or connected)."""
        bot = self.bot
        if self._sharded:
            ids: Iterable[int] | None = getattr(bot, "shard_ids", None)
            if ids is None and bot.shard_count is not None:
                ids = range(bot.shard_count)
            return sorted(ids) if ids is not None else sorted(self._shard_up)
        return [bot.shard_id or 0]

    # readings (also used by the scrape thread: read-only, never raise) -------------------------------

    @HOOKS.fail_open("ready", fallback=0.0)
    def ready_value(self) -> float:
        """1 when the bot is ready and every one of its shards is connected."""
        bot = self.bot
        if not bot.is_ready() or bot.is_closed():
            return 0.0
        states = tuple(self._shard_up.values())  # one atomic copy: the loop may add a shard meanwhile
        if states and not all(states):
            return 0.0
        return 1.0

    def shards_up(self) -> dict[int, bool]:
        return dict(self._shard_up)

    def sample_latency(self) -> None:
        """Set the latency gauge of every shard that has a real (finite) heartbeat latency."""
        bot = self.bot
        if isinstance(bot, discord.AutoShardedClient):
            pairs = bot.latencies
        else:
            pairs = [(bot.shard_id or 0, bot.latency)]
        for shard, latency in pairs:
            value = finite_or_none(latency)
            if value is not None and self._shard_up.get(shard, True):
                self.metrics.gateway_latency.labels(str(shard)).set(value)

    # event handlers (taps, or bodies of listeners) -------------------------------------------------
    # Parameters are positional-only, as discord.py passes them, so they get the cheap fail-open wrapper.

    @HOOKS.fail_open(SOCKET_EVENT_TYPE)
    def _on_socket_event_type(self, event_type: str, /) -> None:
        # Counted in a plain dict; written to the counter in batches (see instrumentation.taps).
        pending = self._pending_events
        pending[event_type] = pending.get(event_type, 0) + 1
        if self._flush_handle is None:
            self._schedule_flush()

    def flush(self) -> None:
        """Write the pending gateway event counts to the metrics now."""
        self._cancel_scheduled_flush()
        pending, self._pending_events = self._pending_events, {}
        for event_type, count in pending.items():
            try:
                child = self._event_children.get(event_type)
                if child is None:
                    child = self.metrics.gateway_events.labels(gateway_event_label(event_type))
                    if len(self._event_children) < 512:  # the cache is bounded like the label set
                        self._event_children[event_type] = child
                child.inc(count)
            except Exception:
                self.hook_failures.record(SOCKET_EVENT_TYPE)

    @HOOKS.fail_open("shard_up")
    def _on_shard_up(self, shard_id: int, /) -> None:
        self._set_up(shard_id, True)
        self.metrics.gateway_budget.adopt()  # a new connection has a new send limiter
        self.sample_latency()
        self._ensure_latency_task()

    @HOOKS.fail_open("shard_resumed")
    def _on_shard_resumed(self, shard_id: int, /) -> None:
        self.metrics.gateway_resumes.labels(str(shard_id)).inc()
        self._set_up(shard_id, True)
        self.metrics.gateway_budget.adopt()

    @HOOKS.fail_open("shard_disconnect")
    def _on_shard_disconnect(self, shard_id: int, /) -> None:
        self.metrics.gateway_disconnects.labels(str(shard_id)).inc()
        self._set_up(shard_id, False)

    def adopt_connected_shards(self) -> None:
        """Mark the shards already connected as up: for an instrumentation installed after they
        connected, whose connect events are past."""
        bot = self.bot
        if bot.is_closed():
            return
        if isinstance(bot, discord.AutoShardedClient):
            up = [info.id for info in bot.shards.values() if not info.is_closed()]
        else:
            ws: Any = getattr(bot, "ws", None)
            up = [bot.shard_id or 0] if ws is not None and getattr(ws, "open", False) else []
        for shard_id in up:
            self._on_shard_up(shard_id)

    async def close(self) -> None:
        """:meth:`uninstall`, and wait until the periodic latency task has ended."""
        task = self._latency_task
        self.uninstall()
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _on_connect(self) -> None:
        self._on_shard_up(self.bot.shard_id or 0)

    def _on_resumed(self) -> None:
        self._on_shard_resumed(self.bot.shard_id or 0)

    def _on_disconnect(self) -> None:
        self._on_shard_disconnect(self.bot.shard_id or 0)

    def _set_up(self, shard_id: int, up: bool) -> None:
        if shard_id not in self._shard_up:
            self.metrics.register_shards([shard_id])
        self._shard_up[shard_id] = up
        self.metrics.shard_up.labels(str(shard_id)).set(1 if up else 0)

    # periodic latency --------------------------------------------------------------------------------

    def _ensure_latency_task(self) -> None:
        if self._latency_task is not None and not self._latency_task.done():
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # not in the loop yet: started by the first connect event
        self._latency_task = loop.create_task(self._latency_loop(), name="comet-gateway-latency")

    async def _latency_loop(self) -> None:
        while True:
            self._sample_latency_periodically()
            await asyncio.sleep(self.latency_interval)

    @HOOKS.fail_open("gateway_latency")
    def _sample_latency_periodically(self) -> None:
        # A failed sample is counted; the loop goes on and the next interval tries again.
        self.sample_latency()
