"""Time and count every command and gateway event of a discord.py bot through its own hooks.

Nothing is decorated by hand and no command callback is wrapped (discord.py resolves slash-command
annotations from the callback's module globals; a wrapper defined here would break them). Instead:

Prefix commands (plain and hybrid)
    The clock starts when ``Bot.invoke`` dispatches ``command``, before checks, cooldowns and argument
    parsing, so failures there are timed too, and stops when ``command_completion`` or
    ``command_error`` is dispatched.
Slash commands (app commands, and hybrids used as slash)
    A slash command has no before-invoke hook, so the clock starts when the interaction reaches the
    tree: ``CommandTree.interaction_check`` is the first thing ``CommandTree._call`` awaits (it runs
    even for unknown commands). It stops at ``on_app_command_completion`` or in the tree's ``on_error``.
    A hybrid used as a slash command fires ``command_completion`` *and* ``app_command_completion``;
    the first recording marks ``interaction.extras`` so it counts once, as ``kind="slash"``.

Dispatch taps versus listeners
    discord.py runs every listener of every event as a new task; for the two gateway events and the
    completion of each command that is most of the instrumentation's cost. A bot that exposes
    ``dispatch_taps`` (a :class:`DispatchTaps`, called synchronously from its ``dispatch`` override,
    as ``CometBot`` does) gets plain function calls instead, at the exact moment of the event. Any
    other bot gets the same measurements through listeners, with the prefix clock started by a global
    *check-once* (``Bot.invoke`` runs it synchronously right after dispatching ``command``).

Batched writes
    A handler only notes what happened (name, kind, outcome, the duration measured at the event);
    the Prometheus series are written in one batch ``flush_interval`` (0.1 s) after the first pending
    note, and on ``flush()`` / ``uninstall()``. Writing 100 observations in a row costs a fraction of
    writing them one by one between other work (cold caches, locks), which is what keeps the
    end-to-end cost near 1 %; a scrape sees data at most ``flush_interval`` old.
    ``flush_interval=0`` writes immediately.

Instrumentation fails open: every hook body catches its exceptions, logs them and counts them in
``comet_instrumentation_errors_total{hook}``; a command never sees them.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol

import discord
from discord import app_commands
from discord.ext import commands

from instrumentation.failures import failure_label
from instrumentation.metrics import UNKNOWN, Metrics, gateway_event_label

log = logging.getLogger(__name__)

_START = "_comet_started_at"  # attribute on a prefix Context / key in Interaction.extras
_RECORDED = "_comet_recorded"  # key in Interaction.extras: this invocation is already counted

PREFIX = "prefix"
SLASH = "slash"

Context = commands.Context[Any]
Interaction = discord.Interaction[Any]
AnyBot = commands.Bot | commands.AutoShardedBot


class ResponseTimeSink(Protocol):
    """What the hooks need of a ``ResponseTimeMonitor``."""

    def record_response_time(self, response_time: float) -> None: ...


# -- classifying failures ----------------------------------------------------------------------------

_WRAPPERS: tuple[type[BaseException], ...] = (
    commands.CommandInvokeError,
    commands.HybridCommandError,
    app_commands.CommandInvokeError,
)


def unwrap_error(error: BaseException) -> BaseException:
    """The exception behind discord.py's invoke wrappers (CommandInvokeError, HybridCommandError, ...)."""
    for _ in range(8):  # wrappers nest at most a few levels; the bound guards against cycles
        if not isinstance(error, _WRAPPERS):
            break
        original = getattr(error, "original", None)
        if not isinstance(original, BaseException):
            break
        error = original
    return error


def outcome_of(error: BaseException) -> str:
    """The ``outcome`` label of a failed invocation (the error already unwrapped)."""
    if isinstance(error, commands.CommandNotFound | app_commands.CommandNotFound):
        return "not_found"
    if isinstance(
        error, commands.CommandOnCooldown | app_commands.CommandOnCooldown | commands.MaxConcurrencyReached
    ):
        return "cooldown"
    if isinstance(error, commands.CheckFailure | app_commands.CheckFailure | commands.DisabledCommand):
        return "check_failed"
    if isinstance(error, commands.UserInputError | commands.ConversionError | app_commands.TransformerError):
        return "bad_argument"
    return "error"


# -- shared plumbing -----------------------------------------------------------------------------------


#: The ``hook`` label values (pre-initialised, so a dashboard shows 0 rather than nothing).
COMMAND_HOOKS = (
    "register_commands", "prefix_start", "slash_start", "command_completion", "command_error",
    "app_command_completion", "app_command_error", "interaction_check", "cancelled", "flush",
)  # fmt: skip
GATEWAY_HOOKS = (
    "ready", "cache_guilds", "cache_users", "cache_channels", "socket_event_type", "shard_up",
    "shard_resumed", "shard_disconnect", "gateway_latency",
)  # fmt: skip


class _FailOpen:
    """Counts and logs exceptions raised inside hooks instead of letting them reach the bot."""

    def __init__(self, metrics: Metrics, hooks: tuple[str, ...]) -> None:
        self._metrics = metrics
        self._children: dict[str, Any] = {hook: metrics.instrumentation_errors.labels(hook) for hook in hooks}

    def __call__(self, hook: str) -> None:
        log.exception("instrumentation hook %s failed (the command goes on)", hook)
        try:
            child = self._children.get(hook)
            if child is None:
                child = self._children[hook] = self._metrics.instrumentation_errors.labels(hook)
            child.inc()
        except Exception:  # the counter itself must never take the bot down either
            log.exception("could not count the failure of hook %s", hook)


class _CommandSeries:
    """Cached label children of one (command, kind): no ``.labels()`` lookup on the hot path."""

    __slots__ = ("_metrics", "duration", "kind", "label", "outcomes")

    def __init__(self, metrics: Metrics, command: str, kind: str) -> None:
        self._metrics = metrics
        self.label = command
        self.kind = kind
        self.duration = metrics.command_duration.labels(command, kind)
        self.outcomes: dict[str, Any] = {}

    def counter(self, outcome: str) -> Any:
        child = self.outcomes.get(outcome)
        if child is None:
            child = self.outcomes[outcome] = self._metrics.commands.labels(self.label, self.kind, outcome)
        return child


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


class _Hooks:
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


class _BatchedInstrumentation:
    """What both instrumentations share: their hooks, fail-open counting, install state, batching."""

    def __init__(self, bot: AnyBot, metrics: Metrics, hooks: tuple[str, ...], flush_interval: float) -> None:
        if flush_interval < 0:
            raise ValueError("flush_interval must be >= 0")
        self.bot = bot
        self.metrics = metrics
        self.flush_interval = flush_interval
        self._fail = _FailOpen(metrics, hooks)
        self._flush_handle: asyncio.TimerHandle | None = None
        self._installed = False
        self._hooks = _Hooks(bot)

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


# -- commands --------------------------------------------------------------------------------------------


class CommandInstrumentation(_BatchedInstrumentation):
    """Times and counts every prefix, hybrid and slash command of ``bot`` exactly once."""

    def __init__(
        self,
        bot: AnyBot,
        metrics: Metrics,
        response_times: ResponseTimeSink | None = None,
        *,
        clock: Callable[[], float] = time.perf_counter,
        flush_interval: float = 0.1,
    ) -> None:
        super().__init__(bot, metrics, COMMAND_HOOKS, flush_interval)
        self.response_times = response_times
        self._clock = clock
        self._pending: list[tuple[str, str | None, str, str, float, BaseException | None]] = []
        self._series: dict[tuple[str, str], _CommandSeries] = {}
        self._series_by_name: dict[tuple[str | None, str], _CommandSeries] = {}
        self._error_children: dict[tuple[str, str], Any] = {}
        self._check_once_added = False
        self._tree: app_commands.CommandTree[Any] | None = None
        self._saved_tree_attrs: dict[str, Any] = {}

    # install / uninstall ------------------------------------------------------------------------------

    def install(self) -> None:
        """Attach the hooks (idempotent). Call after the bot's own tree error handler is set."""
        if self._installed:
            return
        bot = self.bot
        hooks = self._hooks
        if hooks.taps is not None:
            hooks.attach("command", self._on_command)
        else:
            bot.add_check(self._start_prefix_clock, call_once=True)
            self._check_once_added = True
        hooks.attach("command_completion", self._on_command_completion)
        hooks.attach("command_error", self._on_command_error)
        hooks.attach("app_command_completion", self._on_app_command_completion)
        tree = bot.tree
        self._tree = tree
        # Shadow the tree's bound methods with instance attributes, remembering any that were set.
        for name in ("interaction_check", "on_error"):
            self._saved_tree_attrs[name] = tree.__dict__.get(name)
        previous_check = tree.interaction_check
        previous_on_error = tree.on_error

        async def interaction_check(interaction: Interaction, /) -> bool:
            self._start_slash_clock(interaction)
            allowed = await previous_check(interaction)
            if not allowed:
                self._record_tree_refusal(interaction)
            return allowed

        async def on_error(interaction: Interaction, error: app_commands.AppCommandError, /) -> None:
            self._record_app_error(interaction, error)
            await previous_on_error(interaction, error)

        tree.interaction_check = interaction_check  # type: ignore[method-assign]
        tree.on_error = on_error  # type: ignore[method-assign]
        self._installed = True
        self.refresh_command_labels()

    def uninstall(self) -> None:
        """Detach every hook; the metrics keep their values."""
        if not self._installed:
            return
        self.flush()
        if self._check_once_added:
            self.bot.remove_check(self._start_prefix_clock, call_once=True)
            self._check_once_added = False
        self._hooks.detach_all()
        tree = self._tree
        if tree is not None:
            for name, saved in self._saved_tree_attrs.items():
                if saved is None:
                    tree.__dict__.pop(name, None)
                else:
                    setattr(tree, name, saved)
        self._saved_tree_attrs.clear()
        self._tree = None
        self._installed = False

    def refresh_command_labels(self) -> list[str]:
        """Register every command's qualified name (prefix, hybrid, slash) as a label value."""
        names = sorted(command_names(self.bot))
        try:
            self.metrics.register_commands(names)
        except Exception:
            self._fail("register_commands")
        return names

    # clocks ------------------------------------------------------------------------------------------

    def _on_command(self, ctx: Context) -> None:
        # The ``command`` event, as a tap: dispatched first thing in Bot.invoke.
        try:
            if ctx.interaction is None:
                setattr(ctx, _START, self._clock())
        except Exception:
            self._fail("prefix_start")

    def _start_prefix_clock(self, ctx: Context) -> bool:
        # Without taps: a global check-once, run synchronously right after ``command``; never refuses.
        self._on_command(ctx)
        return True

    def _start_slash_clock(self, interaction: Interaction) -> None:
        try:
            if interaction.type is discord.InteractionType.application_command:
                interaction.extras[_START] = self._clock()
        except Exception:
            self._fail("slash_start")

    # event handlers (taps, or bodies of listeners) -------------------------------------------------

    def _on_command_completion(self, ctx: Context) -> None:
        try:
            # discord.py swallows a CancelledError raised in a command's callback, marks the context
            # failed and still dispatches ``command_completion``: that is a cancelled invocation.
            outcome = "cancelled" if ctx.command_failed else "success"
            self._record_context("command_completion", ctx, outcome, None)
        except Exception:
            self._fail("command_completion")

    def _on_command_error(self, ctx: Context, error: BaseException) -> None:
        try:
            original = unwrap_error(error)
            self._record_context("command_error", ctx, outcome_of(original), original)
        except Exception:
            self._fail("command_error")

    def _on_app_command_completion(
        self,
        interaction: Interaction,
        command: app_commands.Command[Any, ..., Any] | app_commands.ContextMenu,
    ) -> None:
        try:
            self._record_interaction(
                "app_command_completion", interaction, command.qualified_name, "success", None
            )
        except Exception:
            self._fail("app_command_completion")

    def _record_app_error(self, interaction: Interaction, error: BaseException) -> None:
        try:
            original = unwrap_error(error)
            command = interaction.command
            name = (
                None
                if command is None or isinstance(original, app_commands.CommandNotFound)
                else (command.qualified_name)
            )
            self._record_interaction("app_command_error", interaction, name, outcome_of(original), original)
        except Exception:
            self._fail("app_command_error")

    def _record_tree_refusal(self, interaction: Interaction) -> None:
        # The tree's global interaction_check said no: the command never ran; count it as refused.
        try:
            if interaction.type is not discord.InteractionType.application_command:
                return
            command = interaction.command
            name = command.qualified_name if command is not None else None
            self._record_interaction(
                "interaction_check", interaction, name, "check_failed", app_commands.CheckFailure()
            )
        except Exception:
            self._fail("interaction_check")

    def record_cancelled(self, *, ctx: Context | None = None, interaction: Interaction | None = None) -> None:
        """Count an invocation that was cancelled before it ended (a shutdown's grace ran out).

        discord.py dispatches no event for it, so the bot calls this from where it sees the
        ``CancelledError``: around ``Bot.invoke`` (prefix) and its tree's invoker task (slash).
        """
        try:
            if ctx is not None:
                self._record_context("cancelled", ctx, "cancelled", None)
            elif interaction is not None and interaction.type is discord.InteractionType.application_command:
                command = interaction.command
                name = command.qualified_name if command is not None else None
                self._record_interaction("cancelled", interaction, name, "cancelled", None)
        except Exception:
            self._fail("cancelled")

    # recording ---------------------------------------------------------------------------------------

    def _record_context(self, hook: str, ctx: Context, outcome: str, error: BaseException | None) -> None:
        name = ctx.command.qualified_name if ctx.command is not None else None
        interaction = ctx.interaction
        if interaction is not None:  # a hybrid command used as a slash command
            self._record_interaction(hook, interaction, name, outcome, error)
            return
        started = getattr(ctx, _START, None)
        if started is None:
            # A check-once registered before ours refused, so ours never ran; count without a duration.
            duration = 0.0
        else:
            duration = self._clock() - started
        self._note(hook, name, PREFIX, outcome, duration, error)

    def _record_interaction(
        self, hook: str, interaction: Interaction, name: str | None, outcome: str, error: BaseException | None
    ) -> None:
        extras = interaction.extras
        if extras.get(_RECORDED):
            return
        extras[_RECORDED] = True
        started = extras.get(_START)
        duration = 0.0 if started is None else self._clock() - started
        self._note(hook, name, SLASH, outcome, duration, error)

    def _note(
        self,
        hook: str,
        name: str | None,
        kind: str,
        outcome: str,
        duration: float,
        error: BaseException | None,
    ) -> None:
        """Keep one invocation for the next batch (the duration is already measured)."""
        self._pending.append((hook, name, kind, outcome, duration, error))
        if self._flush_handle is None:
            self._schedule_flush()

    def flush(self) -> None:
        """Write every pending invocation to the metrics now (also runs by itself after a batch)."""
        self._cancel_scheduled_flush()
        pending, self._pending = self._pending, []
        # Counters are added once per (command, kind, outcome) of the batch; each duration is observed.
        counts: dict[tuple[_CommandSeries, str], int] = {}
        for hook, name, kind, outcome, duration, error in pending:
            try:
                series = self._series_for(name, kind)
                counts[(series, outcome)] = counts.get((series, outcome), 0) + 1
                self._observe(series, duration, error)
            except Exception:
                self._fail(hook)
        for (series, outcome), count in counts.items():
            try:
                series.counter(outcome).inc(count)
            except Exception:
                self._fail("flush")

    def _observe(self, series: _CommandSeries, duration: float, error: BaseException | None) -> None:
        if duration < 0 or not math.isfinite(duration):
            duration = 0.0
        series.duration.observe(duration)
        if error is not None:
            key = (series.label, failure_label(error))
            child = self._error_children.get(key)
            if child is None:
                child = self._error_children[key] = self.metrics.command_errors.labels(*key)
            child.inc()
        if self.response_times is not None:
            self.response_times.record_response_time(duration)

    def _series_for(self, name: str | None, kind: str) -> _CommandSeries:
        # name -> label is stable (a name is registered on first sight), so cache by name too.
        series = self._series_by_name.get((name, kind))
        if series is None:
            label = self._label(name)
            series = self._series.get((label, kind))
            if series is None:
                series = self._series[(label, kind)] = _CommandSeries(self.metrics, label, kind)
            self._series_by_name[(name, kind)] = series
        return series

    def _label(self, name: str | None) -> str:
        if name is None:
            return UNKNOWN
        label = self.metrics.command_label(name)
        if label == UNKNOWN and name != UNKNOWN:
            # The name comes from a command object the bot holds (added after the last refresh), so it
            # is bounded by the code, not by users: register it now instead of losing it to `unknown`.
            self.metrics.register_commands([name])
            label = name
        return label


def command_names(bot: AnyBot) -> set[str]:
    """Qualified names of every prefix/hybrid command and every app command of ``bot``'s tree."""
    names: set[str] = {command.qualified_name for command in bot.walk_commands()}
    tree = bot.tree
    guild_ids: list[discord.abc.Snowflake | None] = [None]
    guild_ids.extend(discord.Object(gid) for gid in getattr(tree, "_guild_commands", {}))
    for guild in guild_ids:
        for app_command in tree.walk_commands(guild=guild):
            names.add(app_command.qualified_name)
        for menu in tree.get_commands(guild=guild, type=discord.AppCommandType.message):
            names.add(menu.qualified_name)
        for menu in tree.get_commands(guild=guild, type=discord.AppCommandType.user):
            names.add(menu.qualified_name)
    return names


# -- gateway -----------------------------------------------------------------------------------------------


def finite_or_none(value: float | None) -> float | None:
    """discord.py's latency is NaN before connecting and inf before the first heartbeat ACK."""
    if value is None or not math.isfinite(value):
        return None
    return value


class GatewayInstrumentation(_BatchedInstrumentation):
    """Gateway events by type, latency and connection state per shard, ready, cache sizes."""

    def __init__(
        self, bot: AnyBot, metrics: Metrics, *, latency_interval: float = 5.0, flush_interval: float = 0.1
    ) -> None:
        if latency_interval <= 0:
            raise ValueError("latency_interval must be > 0")
        super().__init__(bot, metrics, GATEWAY_HOOKS, flush_interval)
        self.latency_interval = latency_interval
        self._event_children: dict[str, Any] = {}
        self._pending_events: dict[str, int] = {}
        self._shard_up: dict[int, bool] = {}
        self._latency_task: asyncio.Task[None] | None = None
        self._sharded = isinstance(bot, discord.AutoShardedClient)
        self._last_sizes: dict[str, float] = {"guilds": 0.0, "users": 0.0, "channels": 0.0}

    def install(self) -> None:
        if self._installed:
            return
        hooks = self._hooks
        hooks.attach("socket_event_type", self._on_socket_event_type)
        if self._sharded:
            hooks.attach("shard_connect", self._on_shard_up)
            hooks.attach("shard_ready", self._on_shard_up)
            hooks.attach("shard_resumed", self._on_shard_resumed)
            hooks.attach("shard_disconnect", self._on_shard_disconnect)
        else:
            hooks.attach("connect", self._on_connect)
            hooks.attach("ready", self._on_connect)
            hooks.attach("resumed", self._on_resumed)
            hooks.attach("disconnect", self._on_disconnect)
        self.register_known_shards()
        self.metrics.ready.set_function(self._safe("ready", self.ready_value))
        self.metrics.bind_cache_sizes(
            guilds=self._safe_size("guilds", lambda: len(self.bot.guilds)),
            users=self._safe_size("users", self._user_count),
            channels=self._safe_size("channels", self._channel_count),
        )
        self._installed = True
        self._ensure_latency_task()

    def uninstall(self) -> None:
        if not self._installed:
            return
        self._hooks.detach_all()
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

    def _user_count(self) -> int:
        # ``Client.users`` copies every cached user into a new list: too much for each scrape.
        return len(self.bot._connection._users)

    def _channel_count(self) -> int:
        # ``guilds`` is copied once (one C-level list(), safe against the loop adding a guild meanwhile);
        # ``len(guild.channels)`` is the size of the guild's dict, no copy.
        return sum(len(guild.channels) for guild in self.bot.guilds)

    def _safe(self, hook: str, func: Callable[[], float]) -> Callable[[], float]:
        def read() -> float:
            try:
                return float(func())
            except Exception:
                self._fail(hook)
                return 0.0

        return read

    def _safe_size(self, name: str, func: Callable[[], int]) -> Callable[[], float]:
        # Read at scrape time, from the server's worker thread while the loop mutates the cache (the
        # readers take sizes and one atomic copy, never iterate a live dict); a failure keeps the
        # previous value instead of failing the scrape.
        def read() -> float:
            try:
                value = float(func())
            except Exception:
                self._fail(f"cache_{name}")
                return self._last_sizes[name]
            self._last_sizes[name] = value
            return value

        return read

    # event handlers (taps, or bodies of listeners) -------------------------------------------------

    def _on_socket_event_type(self, event_type: str) -> None:
        # Counted in a plain dict; written to the counter in batches (see the module docstring).
        try:
            pending = self._pending_events
            pending[event_type] = pending.get(event_type, 0) + 1
            if self._flush_handle is None:
                self._schedule_flush()
        except Exception:
            self._fail("socket_event_type")

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
                self._fail("socket_event_type")

    def _on_shard_up(self, shard_id: int) -> None:
        try:
            self._set_up(shard_id, True)
            self.sample_latency()
            self._ensure_latency_task()
        except Exception:
            self._fail("shard_up")

    def _on_shard_resumed(self, shard_id: int) -> None:
        try:
            self.metrics.gateway_resumes.labels(str(shard_id)).inc()
            self._set_up(shard_id, True)
        except Exception:
            self._fail("shard_resumed")

    def _on_shard_disconnect(self, shard_id: int) -> None:
        try:
            self.metrics.gateway_disconnects.labels(str(shard_id)).inc()
            self._set_up(shard_id, False)
        except Exception:
            self._fail("shard_disconnect")

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
            try:
                self.sample_latency()
            except Exception:
                self._fail("gateway_latency")
            await asyncio.sleep(self.latency_interval)
