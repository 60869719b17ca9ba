"""Start and stop the whole bot process: registry → Telemetry → Store → MetricsServer → bot.

Order matters: the metrics server starts before the bot logs in, so a port already in use stops
start-up with a clear error (never a silent move to another port) before anything talks to Discord;
the loop-lag monitor starts on the running loop.

Shutdown (SIGINT/SIGTERM, or :meth:`Runtime.close`), in this order:

1. drain the bot (:mod:`comet.core.shutdown`): new commands are refused while the gateway and the HTTP
   session stay up, running ones get ``COMET_SHUTDOWN_GRACE_SECONDS`` to finish and reply, the rest
   is cancelled (a second signal cancels at once);
2. flush what is batched: the command and gateway counters, and the database's write-ahead log
   (every acknowledged write is already committed);
3. close the bot (gateway, HTTP session), then the metrics server (so a last scrape still sees the
   final counts while the bot closes), then the database.

The process then exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import discord
from prometheus_client import CollectorRegistry

from comet.core.bot import CometBot
from comet.core.config import Settings
from comet.core.telemetry import Telemetry
from discord_emulator.endpoints import point_discord_at
from instrumentation.install import InstrumentationHandle, instrument
from instrumentation.logging import setup_debug_logging
from instrumentation.metrics import default_registry
from instrumentation.server import MetricsServer, PortInUseError

log = logging.getLogger(__name__)


class StartupError(Exception):
    """Start-up cannot go on; the message says why and what to change. ``exit_code`` for the CLI."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass
class Runtime:
    """Everything one bot process runs, started by :func:`start_runtime`."""

    settings: Settings
    telemetry: Telemetry
    bot: CometBot
    #: What ``instrumentation.instrument(bot)`` installed: the metrics server, the loop monitor, ...
    instrumentation: InstrumentationHandle
    store: Any = None
    bot_task: asyncio.Task[None] | None = None
    _closed: bool = field(default=False, repr=False)

    @property
    def server(self) -> MetricsServer:
        return self.instrumentation.server

    def endpoints(self) -> dict[str, str]:
        base = self.server.url
        return {"metrics": f"{base}/metrics", "healthz": f"{base}/healthz", "readyz": f"{base}/readyz"}

    def start_bot(self, token: str) -> asyncio.Task[None]:
        """Log in and connect in a task (reconnects are discord.py's job)."""
        self.bot_task = asyncio.get_running_loop().create_task(self.bot.start(token), name="comet-bot")
        return self.bot_task

    async def close(self, *, hurry: asyncio.Event | None = None) -> None:
        """Drain, flush, then close the bot, the metrics server and the store; safe to call twice.

        ``hurry``, once set, ends the drain's grace period (a second SIGTERM/SIGINT).
        """
        if self._closed:
            return
        self._closed = True
        await self.bot.work.drain(self.settings.shutdown_grace_seconds, hurry=hurry)
        self.bot.flush_metrics()
        if self.store is not None:
            await self.store.flush()
        try:
            await self.bot.close()
        except Exception:
            log.exception("Closing the Discord connection failed")
        if self.bot_task is not None and not self.bot_task.done():
            self.bot_task.cancel()
            with contextlib.suppress(BaseException):
                await self.bot_task
        try:
            await self.instrumentation.close()  # the server, the loop monitor, every hook
        except Exception:
            log.exception("Closing the instrumentation failed")
        if self.store is not None:
            try:
                await self.store.close()
            except Exception:
                log.exception("Closing the database failed")


def path_problem(path: str | Path, error: BaseException | None = None) -> str | None:
    """Why a file cannot be created or opened at ``path``, in words, or None if the path looks fine.

    Looks at the path itself rather than trusting the error: creating ``<a file>/comet.log``'s folder
    fails with "File exists" (EEXIST), which does not tell an operator what to change.
    """
    target = Path(path)
    try:
        if target.is_dir():
            return "it is a directory"
        for parent in target.parents:
            if parent.exists():
                if not parent.is_dir():
                    return f"{parent} is a file, not a directory"
                break
    except (OSError, ValueError):  # a parent we may not look into: fall back to the error itself
        pass
    if isinstance(error, OSError):
        if error.errno in (errno.EACCES, errno.EPERM):
            return "permission denied"
        if error.errno == errno.EROFS:
            return "the file system is read-only"
        if error.errno == errno.ENOSPC:
            return "no space left on the device"
        if error.strerror:
            return error.strerror.lower()
    return None


def setup_logging(settings: Settings, telemetry: Telemetry) -> None:
    """Log to the console and ``COMET_LOG_PATH``; StartupError if that file cannot be written."""
    try:
        setup_debug_logging(
            settings.log_path,
            console_level=settings.log_level,
            scrubber=telemetry.scrubber,
            metrics=telemetry.metrics,
        )
    except OSError as exc:
        reason = path_problem(settings.log_path, exc) or str(exc)
        raise StartupError(
            f"COMET_LOG_PATH: cannot write the log file {settings.log_path}: {reason}; "
            "set COMET_LOG_PATH to a file in a writable directory"
        ) from exc


async def open_store(settings: Settings, registry: CollectorRegistry) -> Any:
    """The SQLite store, or None when this build has no storage module."""
    try:
        from comet.core.storage import Store
    except ImportError:
        log.info("comet.core.storage is not available; community features run without a database")
        return None
    try:
        return await Store.open(settings.database_path, registry=registry)
    except Exception as exc:
        cause = exc.__cause__ if exc.__cause__ is not None else exc
        reason = path_problem(settings.database_path, cause) or str(cause)
        raise StartupError(
            f"COMET_DATABASE_PATH: cannot open the database at {settings.database_path}: {reason}; "
            "set COMET_DATABASE_PATH to a database file in a writable directory"
        ) from exc


async def start_runtime(
    settings: Settings,
    *,
    registry: CollectorRegistry | None = None,
    configure_logging: bool = True,
    store: Any = None,
) -> Runtime:
    """Build and start everything except the Discord connection (see :meth:`Runtime.start_bot`).

    ``store``: an already opened store to run with instead of opening ``COMET_DATABASE_PATH``
    (tests: a read-only file, a short busy timeout); the runtime owns it and closes it.
    """
    point_discord_at(settings.discord_api_base, settings.discord_gateway_url)
    registry = registry if registry is not None else default_registry()
    telemetry = Telemetry.create(registry, settings)
    if configure_logging:
        setup_logging(settings, telemetry)
    if store is None:
        store = await open_store(settings, registry)
    try:
        bot = CometBot(settings, telemetry, store)
        try:
            # Before the bot logs in: the REST calls of the login itself are timed too.
            handle = await instrument(
                bot,
                host=settings.metrics_host,
                port=settings.metrics_port,
                registry=registry,
                basic_auth=settings.metrics_basic_auth,
                slow_threshold=settings.slow_threshold,
                readiness=bot.readiness,
            )
        except PortInUseError as exc:
            raise StartupError(
                f"{exc}. Set COMET_METRICS_PORT to a free port (each shard process needs its own)."
            ) from exc
        except OSError as exc:
            raise StartupError(
                f"COMET_METRICS_HOST/COMET_METRICS_PORT: cannot listen on "
                f"{settings.metrics_host}:{settings.metrics_port}: {exc.strerror or exc}"
            ) from exc
    except BaseException:
        if store is not None:
            await store.close()
        raise
    return Runtime(settings=settings, telemetry=telemetry, bot=bot, instrumentation=handle, store=store)


@dataclass
class ShutdownSignals:
    """Set by SIGINT/SIGTERM: ``stop`` on the first, ``hurry`` (end the grace period) on the next."""

    stop: asyncio.Event = field(default_factory=asyncio.Event)
    hurry: asyncio.Event = field(default_factory=asyncio.Event)

    def received(self, sig: signal.Signals) -> None:
        if not self.stop.is_set():
            log.info("%s: shutting down (a second signal cancels running commands at once)", sig.name)
            self.stop.set()
        elif not self.hurry.is_set():
            log.info("%s again: cancelling running commands now", sig.name)
            self.hurry.set()


def install_signal_handlers(signals: ShutdownSignals) -> Callable[[], None]:
    """Route SIGINT/SIGTERM to ``signals``; returns the function that removes the handlers."""
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, signals.received, sig)
            installed.append(sig)
        except (NotImplementedError, RuntimeError):  # not the main thread, or not supported
            pass

    def remove() -> None:
        for sig in installed:
            loop.remove_signal_handler(sig)

    return remove


async def wait_until_stopped(
    runtime: Runtime, stop: asyncio.Event, *others: Awaitable[Any]
) -> BaseException | None:
    """Wait for a signal (``stop``), the bot task ending, or any of ``others``; return the bot's error."""
    waiters: list[asyncio.Future[Any]] = [asyncio.ensure_future(stop.wait())]
    if runtime.bot_task is not None:
        waiters.append(runtime.bot_task)
    waiters.extend(asyncio.ensure_future(o) for o in others)
    done, _ = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    for waiter in waiters:
        if waiter is not runtime.bot_task and not waiter.done():
            waiter.cancel()
    for finished in done:
        if finished.cancelled():
            continue
        error = finished.exception()
        if error is not None:
            return error
    return None


def explain_bot_error(error: BaseException) -> str:
    if isinstance(error, discord.LoginFailure):
        return "COMET_TOKEN: Discord refused the token (LoginFailure); check the bot token."
    if isinstance(error, discord.PrivilegedIntentsRequired):
        return (
            "Discord refused the privileged intents: enable MESSAGE CONTENT and SERVER MEMBERS "
            "for the bot in the Developer Portal."
        )
    if isinstance(error, discord.GatewayNotFound | OSError):
        return (
            f"Cannot reach Discord ({type(error).__name__}); check COMET_DISCORD_API_BASE / "
            "COMET_DISCORD_GATEWAY_URL and the network."
        )
    return f"The bot stopped: {type(error).__name__}: {error}"


async def serve(settings: Settings, *, announce: Callable[[str], None] = print) -> int:
    """``comet run`` with a token: run until SIGINT/SIGTERM; the exit code."""
    if not settings.token:
        raise StartupError("COMET_TOKEN: expected a bot token for `comet run` against Discord", exit_code=2)
    runtime = await start_runtime(settings)
    signals = ShutdownSignals()
    remove_handlers = install_signal_handlers(signals)
    try:
        for name, url in runtime.endpoints().items():
            announce(f"{name:>8}: {url}")
        runtime.start_bot(settings.token)
        error = await wait_until_stopped(runtime, signals.stop)
    finally:
        try:
            await runtime.close(hurry=signals.hurry)
        finally:
            remove_handlers()
    if error is not None:
        log.error("%s", explain_bot_error(error))
        announce(explain_bot_error(error))
        return 1
    return 0
