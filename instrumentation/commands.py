"""Time and count every command of a discord.py bot through its own hooks, each invocation once.

Nothing is decorated by hand and no command callback is wrapped (discord.py resolves slash-command
annotations from the callback's module globals; a wrapper defined here would break them). Instead:

Prefix commands (plain and hybrid)
    The clock starts when ``Bot.invoke`` dispatches ``command``, before checks, cooldowns and argument
    parsing, so failures there are timed too, and stops when ``command_completion`` or
    ``command_error`` is dispatched. Without dispatch taps the clock is started by a global
    *check-once* instead (``Bot.invoke`` runs it synchronously right after dispatching ``command``).
Slash commands (app commands, and hybrids used as slash)
    A slash command has no before-invoke hook, so the clock starts when the interaction reaches the
    tree: ``CommandTree.interaction_check`` is the first thing ``CommandTree._call`` awaits (it runs
    even for unknown commands). It stops at ``on_app_command_completion`` or in the tree's ``on_error``.
    A hybrid used as a slash command fires ``command_completion`` *and* ``app_command_completion``;
    the first recording marks ``interaction.extras`` so it counts once, as ``kind="slash"``.

Each handler only notes an :class:`~instrumentation.invocations.Invocation`; the series are written
in batches (:mod:`instrumentation.taps`), and every handler fails open (:mod:`instrumentation.fail_open`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any, Protocol

import discord
from discord import app_commands
from discord.ext import commands

from instrumentation.command_catalogue import command_names, commands_with_kinds
from instrumentation.fail_open import HookRegistry
from instrumentation.failures import failure_label
from instrumentation.invocations import Invocation, outcome_of, unwrap_error
from instrumentation.metrics import UNKNOWN, Metrics
from instrumentation.recorder import FlightRecorder, Trace
from instrumentation.taps import AnyBot, BatchedInstrumentation

__all__ = ["CommandInstrumentation", "command_names"]

_START = "_comet_started_at"  # attribute on a prefix Context / key in Interaction.extras
_RECORDED = "_comet_recorded"  # key in Interaction.extras: this invocation is already counted
_TRACE = "_comet_trace"  # attribute on a prefix Context / key in Interaction.extras: its Trace

PREFIX = "prefix"
SLASH = "slash"

Context = commands.Context[Any]
Interaction = discord.Interaction[Any]

#: The ``hook`` labels of CommandInstrumentation. Those declared here are carried by the invocations
#: they note too (writing one counts a failure under it); the rest are declared by ``@HOOKS.fail_open``.
HOOKS = HookRegistry()
COMMAND_COMPLETION = HOOKS.declare("command_completion")
COMMAND_ERROR = HOOKS.declare("command_error")
APP_COMMAND_COMPLETION = HOOKS.declare("app_command_completion")
APP_COMMAND_ERROR = HOOKS.declare("app_command_error")
INTERACTION_CHECK = HOOKS.declare("interaction_check")
CANCELLED = HOOKS.declare("cancelled")
FLUSH = HOOKS.declare("flush")


class ResponseTimeSink(Protocol):
    """What the instrumentation needs of a ``ResponseTimeMonitor``."""

    def record_response_time(self, response_time: float) -> None: ...


# -- where invocations are written -------------------------------------------------------------------


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


# -- the instrumentation -----------------------------------------------------------------------------


class CommandInstrumentation(BatchedInstrumentation):
    """Times and counts every prefix, hybrid and slash command of ``bot`` exactly once."""

    hooks = HOOKS

    def __init__(
        self,
        bot: AnyBot,
        metrics: Metrics,
        response_times: ResponseTimeSink | None = None,
        *,
        clock: Callable[[], float] = time.perf_counter,
        flush_interval: float = 0.1,
        recorder: FlightRecorder | None = None,
    ) -> None:
        super().__init__(bot, metrics, HOOKS.names, flush_interval)
        self.response_times = response_times
        #: Keeps the slow and failed invocations; their ids become the duration's exemplars.
        self.recorder = recorder
        self._clock = clock
        self._pending: list[Invocation] = []
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
        handlers = self._handlers
        if handlers.taps is not None:
            handlers.attach("command", self._on_command)
        else:
            bot.add_check(self._start_prefix_clock, call_once=True)
            self._check_once_added = True
        handlers.attach("command_completion", self._on_command_completion)
        handlers.attach("command_error", self._on_command_error)
        handlers.attach("app_command_completion", self._on_app_command_completion)
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
        self._handlers.detach_all()
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
        """Register every command's qualified name (prefix, hybrid, slash) as a label value, with the
        kinds it is invoked as: a prefix-only command gets no slash series, and the other way round."""
        commands_and_kinds = commands_with_kinds(self.bot)
        self._register_command_labels(commands_and_kinds)
        return [name for name, _ in commands_and_kinds]

    @HOOKS.fail_open("register_commands")
    def _register_command_labels(self, commands_and_kinds: list[tuple[str, tuple[str, ...]]], /) -> None:
        self.metrics.register_commands(commands_and_kinds)

    # clocks ------------------------------------------------------------------------------------------

    @HOOKS.fail_open("prefix_start")
    def _on_command(self, ctx: Context, /) -> None:
        # The ``command`` event, as a tap: dispatched first thing in Bot.invoke.
        if ctx.interaction is None:
            setattr(ctx, _START, self._clock())
            if self.recorder is not None:  # in Bot.invoke's own task: its REST calls find the trace
                setattr(ctx, _TRACE, self.recorder.begin(PREFIX))

    def _start_prefix_clock(self, ctx: Context) -> bool:
        # Without taps: a global check-once, run synchronously right after ``command``; never refuses.
        self._on_command(ctx)
        return True

    @HOOKS.fail_open("slash_start")
    def _start_slash_clock(self, interaction: Interaction, /) -> None:
        if interaction.type is discord.InteractionType.application_command:
            interaction.extras[_START] = self._clock()
            if self.recorder is not None:  # in the tree's invoker task, which runs the command
                interaction.extras[_TRACE] = self.recorder.begin(SLASH)

    # event handlers (taps, or bodies of listeners) -------------------------------------------------
    # Parameters are positional-only, as discord.py passes them, so they get the cheap fail-open wrapper.

    @HOOKS.fail_open(COMMAND_COMPLETION)
    def _on_command_completion(self, ctx: Context, /) -> None:
        # discord.py swallows a CancelledError raised in a command's callback, marks the context
        # failed and still dispatches ``command_completion``: that is a cancelled invocation.
        outcome = "cancelled" if ctx.command_failed else "success"
        self._record_context(COMMAND_COMPLETION, ctx, outcome, None)

    @HOOKS.fail_open(COMMAND_ERROR)
    def _on_command_error(self, ctx: Context, error: BaseException, /) -> None:
        original = unwrap_error(error)
        self._record_context(COMMAND_ERROR, ctx, outcome_of(original), original)

    @HOOKS.fail_open(APP_COMMAND_COMPLETION)
    def _on_app_command_completion(
        self,
        interaction: Interaction,
        command: app_commands.Command[Any, ..., Any] | app_commands.ContextMenu,
        /,
    ) -> None:
        self._record_interaction(APP_COMMAND_COMPLETION, interaction, command.qualified_name, "success", None)

    @HOOKS.fail_open(APP_COMMAND_ERROR)
    def _record_app_error(self, interaction: Interaction, error: BaseException, /) -> None:
        original = unwrap_error(error)
        command = None if isinstance(original, app_commands.CommandNotFound) else interaction.command
        name = command.qualified_name if command is not None else None
        self._record_interaction(APP_COMMAND_ERROR, interaction, name, outcome_of(original), original)

    @HOOKS.fail_open(INTERACTION_CHECK)
    def _record_tree_refusal(self, interaction: Interaction, /) -> None:
        # The tree's global interaction_check said no: the command never ran; count it as refused.
        if interaction.type is not discord.InteractionType.application_command:
            return
        command = interaction.command
        name = command.qualified_name if command is not None else None
        refused = app_commands.CheckFailure()
        self._record_interaction(INTERACTION_CHECK, interaction, name, "check_failed", refused)

    @HOOKS.fail_open(CANCELLED)
    def record_cancelled(self, *, ctx: Context | None = None, interaction: Interaction | None = None) -> None:
        """Count an invocation that was cancelled before it ended (a shutdown's grace ran out).

        discord.py dispatches no event for it, so the bot calls this from where it sees the
        ``CancelledError``: around ``Bot.invoke`` (prefix) and its tree's invoker task (slash).
        """
        if ctx is not None:
            self._record_context(CANCELLED, ctx, "cancelled", None)
        elif interaction is not None and interaction.type is discord.InteractionType.application_command:
            command = interaction.command
            name = command.qualified_name if command is not None else None
            self._record_interaction(CANCELLED, interaction, name, "cancelled", None)

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
        trace = getattr(ctx, _TRACE, None)
        if trace is not None:
            # A Context sits in reference cycles of discord.py's own (its StringView, ...), so it is
            # freed by the cycle collector, not at once: holding the trace it would drag it (and
            # its steps) into the older generations and make every collection longer.
            setattr(ctx, _TRACE, None)
        trace_id = self._finish_trace(trace, name, outcome, error, duration)
        self._note(Invocation(hook, name, PREFIX, outcome, duration, error, trace_id))

    def _record_interaction(
        self, hook: str, interaction: Interaction, name: str | None, outcome: str, error: BaseException | None
    ) -> None:
        extras = interaction.extras
        if extras.get(_RECORDED):
            return
        extras[_RECORDED] = True
        started = extras.get(_START)
        duration = 0.0 if started is None else self._clock() - started
        trace_id = self._finish_trace(extras.pop(_TRACE, None), name, outcome, error, duration)  # as above
        self._note(Invocation(hook, name, SLASH, outcome, duration, error, trace_id))

    def _finish_trace(
        self,
        trace: Trace | None,
        name: str | None,
        outcome: str,
        error: BaseException | None,
        duration: float,
    ) -> str | None:
        if trace is None or self.recorder is None:
            return None
        return self.recorder.finish(trace, name, outcome, error, duration)

    def _note(self, invocation: Invocation) -> None:
        """Keep one invocation for the next batch (the duration is already measured)."""
        self._pending.append(invocation)
        if self._flush_handle is None:
            self._schedule_flush()

    def flush(self) -> None:
        """Write every pending invocation to the metrics now (also runs by itself after a batch)."""
        self._cancel_scheduled_flush()
        pending, self._pending = self._pending, []
        # Counters are added once per (command, kind, outcome) of the batch; each duration is observed.
        counts: dict[tuple[_CommandSeries, str], int] = {}
        for invocation in pending:
            try:
                series = self._series_for(invocation.command, invocation.kind)
                key = (series, invocation.outcome)
                counts[key] = counts.get(key, 0) + 1
                self._observe(series, invocation.duration, invocation.error, invocation.trace_id)
            except Exception:
                self.hook_failures.record(invocation.hook)
        for (series, outcome), count in counts.items():
            try:
                series.counter(outcome).inc(count)
            except Exception:
                self.hook_failures.record(FLUSH)

    def _observe(
        self, series: _CommandSeries, duration: float, error: BaseException | None, trace_id: str | None
    ) -> None:
        if duration < 0 or not math.isfinite(duration):
            duration = 0.0
        # The id of a kept (slow or failed) invocation rides on its bucket as an exemplar.
        series.duration.observe(duration, {"trace_id": trace_id} if trace_id is not None else None)
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
