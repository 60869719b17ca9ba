"""One call to instrument any discord.py bot: ``handle = await instrument(bot)``.

What a bot that is not ``CometBot`` would otherwise wire by hand, with safe defaults:

* the command instrumentation (prefix, hybrid and slash commands, each invocation counted once,
  DMs included) with the flight recorder of slow and failed invocations;
* the gateway instrumentation (events by type, shard state, latency, readiness, cache sizes);
* the runtime collectors (``process_*``, ``python_gc_*``) and the event-loop lag monitor;
* the Discord REST metrics: every call (``bot.http`` and the webhook adapter's interaction
  responses) is timed, and each HTTP *attempt* (429s and their scope, retries, the waits) is
  observed, whether ``instrument()`` runs before ``start`` or in ``setup_hook``
  (:mod:`instrumentation.discord_api` says how, and why not with aiohttp's ``http_trace``);
* the metrics server: ``/metrics``, ``/healthz``, ``/readyz`` (200 while the bot is ready, not
  closed and its gateway connections are up) and ``/debug/invocations/<id>`` (only on a loopback
  host or with basic auth; see :class:`~instrumentation.server.MetricsServer`).

``await handle.close()`` undoes it all, in order (server, loop monitor, instrumentation, REST
wrapping, collectors); it is idempotent and leaves no task, thread or listening socket of its own.
The metric families stay on the registry with their values (like any prometheus_client metric).

Call it once the bot's own tree error handler is set (``@bot.tree.error``): the instrumentation
wraps whatever handler is there. ``CometBot`` is instrumented by this same call (its launcher makes
it); a bot class with ``dispatch_taps`` (:mod:`instrumentation.taps`) gets plain calls instead of
listener tasks, a plain bot gets listeners: the series are the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import Callable
from typing import Any

import discord
from discord.ext import commands
from prometheus_client import CollectorRegistry

from instrumentation.bot_monitor import BotMonitor
from instrumentation.collectors import (
    has_runtime_collectors,
    register_runtime_collectors,
    unregister_runtime_collectors,
)
from instrumentation.commands import CommandInstrumentation
from instrumentation.discord_api import install_request_metrics, uninstall_webhook_metrics
from instrumentation.gateway import GatewayInstrumentation
from instrumentation.loop import LoopLagMonitor
from instrumentation.metrics import Metrics, default_registry
from instrumentation.recorder import FlightRecorder
from instrumentation.response_time import ResponseTimeMonitor
from instrumentation.server import MetricsServer, Readiness
from instrumentation.taps import AnyBot

__all__ = ["InstrumentationHandle", "handle_of", "instrument"]

log = logging.getLogger(__name__)

#: The rolling window of ``handle.response_times`` (the last N command durations).
RESPONSE_WINDOW = 100

#: The open handle of each instrumented bot (a bot is instrumented once at a time).
_handles: weakref.WeakKeyDictionary[discord.Client, InstrumentationHandle] = weakref.WeakKeyDictionary()


def handle_of(bot: discord.Client) -> InstrumentationHandle | None:
    """The open handle of ``bot`` (from :func:`instrument` or the ``instrumentation.ext`` extension)."""
    return _handles.get(bot)


async def instrument(
    bot: AnyBot,
    *,
    host: str = "127.0.0.1",
    port: int = 9108,
    registry: CollectorRegistry | None = None,
    basic_auth: tuple[str, str] | None = None,
    slow_threshold: float = 1.0,
    loop_block_threshold: float = 0.5,
    readiness: Readiness | None = None,
) -> InstrumentationHandle:
    """Instrument ``bot`` and serve its metrics; returns the handle to :meth:`~InstrumentationHandle.close`.

    Call from a coroutine on the bot's loop: before ``await bot.start(...)``, or in ``setup_hook``
    (``bot.run()`` users; or ``await bot.load_extension("instrumentation.ext")`` there); the
    result is the same.

    ``host``
        Where the server listens. ``127.0.0.1`` (default): only this machine can scrape, and
        ``/debug/invocations/<id>`` is served. ``0.0.0.0`` for a container; then set ``basic_auth``
        (or keep the port private), else invocation timelines are not served.
    ``port``
        The TCP port (default 9108). ``0`` picks a free one: read ``handle.port``. A port in use
        raises :class:`~instrumentation.server.PortInUseError`, never a silent move.
    ``registry``
        Where the metrics live; default :func:`~instrumentation.metrics.default_registry`, where
        ``@monitor_performance`` records too. Not prometheus_client's global ``REGISTRY``: it carries
        its own process/GC collectors, which would clash (``ValueError``).
    ``basic_auth``
        ``(user, password)`` for ``/metrics``, ``/readyz`` and ``/debug/*`` (``/healthz`` stays
        open for liveness probes). Default: none. TLS belongs to a reverse proxy.
    ``slow_threshold``
        Seconds from which a command counts as slow and its timeline is kept (default 1.0).
    ``loop_block_threshold``
        Seconds of event-loop blocking after which the blocking stack is logged (default 0.5).
    ``readiness``
        What ``/readyz`` reports, if not :meth:`InstrumentationHandle.readiness` (a bot that drains
        before it stops, say, reports itself not ready meanwhile); a dict with ``status``.
    """
    if not isinstance(bot, (commands.Bot, commands.AutoShardedBot)):
        raise TypeError(f"instrument() needs a discord.ext.commands.Bot, got {type(bot).__name__}")
    if not slow_threshold > 0:
        raise ValueError(f"slow_threshold must be > 0 seconds, got {slow_threshold!r}")
    if not loop_block_threshold > 0:
        raise ValueError(f"loop_block_threshold must be > 0 seconds, got {loop_block_threshold!r}")
    if handle_of(bot) is not None:
        raise RuntimeError("this bot is already instrumented; close its handle first")
    asyncio.get_running_loop()  # RuntimeError outside a coroutine, before anything is installed
    handle = InstrumentationHandle(
        bot,
        registry if registry is not None else default_registry(),
        host=host,
        port=port,
        basic_auth=basic_auth,
        slow_threshold=slow_threshold,
        loop_block_threshold=loop_block_threshold,
        readiness=readiness,
    )
    _handles[bot] = handle
    try:
        await handle._open()
    except BaseException:
        with contextlib.suppress(Exception):  # logged by close(); the caller sees the first error
            await handle.close()
        raise
    return handle


class InstrumentationHandle:
    """What :func:`instrument` installed on one bot; :meth:`close` undoes it."""

    def __init__(
        self,
        bot: AnyBot,
        registry: CollectorRegistry,
        *,
        host: str,
        port: int,
        basic_auth: tuple[str, str] | None,
        slow_threshold: float,
        loop_block_threshold: float,
        readiness: Readiness | None = None,
    ) -> None:
        self.bot = bot
        self.registry = registry
        self.metrics = Metrics.for_registry(registry)
        #: The recent command durations (for an in-Discord ``health`` command).
        self.response_times = ResponseTimeMonitor(window_size=RESPONSE_WINDOW)
        #: The kept slow and failed invocations (``/debug/invocations/<id>``).
        self.recorder = FlightRecorder(slow_threshold=slow_threshold)
        self.commands = CommandInstrumentation(bot, self.metrics, self.response_times, recorder=self.recorder)
        self.gateway = GatewayInstrumentation(bot, self.metrics)
        self.monitor = BotMonitor(
            bot, metrics=self.metrics, shards_up=self.gateway.shards_up, before_read=self.flush
        )
        self.loop_monitor = LoopLagMonitor(self.metrics, block_threshold=loop_block_threshold)
        self.server = MetricsServer(
            registry,
            host=host,
            port=port,
            readiness=readiness if readiness is not None else self.readiness,
            basic_auth=basic_auth,
            invocations=self.invocation_json,
        )
        self._owns_collectors = False  # whether this handle registered the runtime collectors
        self._http_request: Callable[..., Any] | None = None  # the wrapper installed on bot.http
        self._saved_request: Any = None  # bot.http's own ``request`` instance attribute, if any
        self._close_lock = asyncio.Lock()
        self._closed = False

    # -- what it serves ------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The port the server listens on (``port=0`` resolved)."""
        return self.server.port

    @property
    def url(self) -> str:
        """``http://host:port`` of the metrics server."""
        return self.server.url

    @property
    def closed(self) -> bool:
        return self._closed

    async def readiness(self) -> dict[str, Any]:
        """``/readyz``: status ``healthy`` while the bot is ready, not closed and connected."""
        return await self.monitor.health_check()

    def invocation_json(self, trace_id: str) -> dict[str, Any] | None:
        """A kept invocation's timeline (``last`` for the latest), or None."""
        trace = self.recorder.last() if trace_id == "last" else self.recorder.get(trace_id)
        return trace.as_dict() if trace is not None else None

    def flush(self) -> None:
        """Write the pending batch of command and gateway observations now (else within 0.1 s)."""
        self.commands.flush()
        self.gateway.flush()

    # -- install / close -----------------------------------------------------------------------------

    async def _open(self) -> None:
        self._install_rest_metrics()
        self._owns_collectors = not has_runtime_collectors(self.registry)
        register_runtime_collectors(self.registry)
        self.commands.install()
        self.gateway.install()
        self.gateway.adopt_connected_shards()
        self.loop_monitor.start()
        await self.server.start()
        if not self.server.serves_invocations:  # neither loopback nor basic auth
            log.warning(
                "Metrics on %s are open to anyone who can reach it: pass basic_auth or keep the port "
                "private (invocation timelines are not served there)",
                self.server.url,
            )

    def _install_rest_metrics(self) -> None:
        http = self.bot.http
        self._saved_request = http.__dict__.get("request")
        install_request_metrics(http, self.metrics.discord_api)
        self._http_request = http.__dict__.get("request")

    def _uninstall_rest_metrics(self) -> None:
        http = self.bot.http
        uninstall_webhook_metrics(http)
        ours, self._http_request = self._http_request, None
        if ours is None:
            return
        if http.__dict__.get("request") is ours:
            if self._saved_request is None:
                del http.__dict__["request"]
            else:
                http.request = self._saved_request  # type: ignore[method-assign]
        else:
            log.warning("bot.http.request was wrapped again after instrument(): its timing stays in place")
        self._saved_request = None

    async def close(self) -> None:
        """Stop the server and the loop monitor, uninstall everything; safe to call again."""
        async with self._close_lock:
            if self._closed:
                return
            self._closed = True
            errors: list[BaseException] = []

            async def step(what: str, action: Callable[[], Any]) -> None:
                try:
                    result = action()
                    if asyncio.iscoroutine(result):
                        await result
                except Exception as exc:
                    log.exception("instrumentation close: %s failed", what)
                    errors.append(exc)

            await step("stopping the metrics server", self.server.stop)
            await step("stopping the loop monitor", self.loop_monitor.stop)
            await step("uninstalling the command instrumentation", self.commands.uninstall)
            await step("uninstalling the gateway instrumentation", self.gateway.close)
            await step("unwrapping the REST requests", self._uninstall_rest_metrics)
            if self._owns_collectors:
                await step(
                    "unregistering the runtime collectors",
                    lambda: unregister_runtime_collectors(self.registry),
                )
            if _handles.get(self.bot) is self:
                del _handles[self.bot]
            if errors:
                raise errors[0]

    async def __aenter__(self) -> InstrumentationHandle:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
