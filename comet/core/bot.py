"""CometBot: the discord.py bot, wired to the instrumentation so nothing is measured by hand.

The bot takes its settings, its telemetry (metrics, memory tracker, scrubber — built once by the
launcher) and its store in the constructor; extensions only use them, so a hot reload loses no
count. The launcher instruments it with the library's one call, ``instrumentation.instrument(bot)``,
as any discord.py bot would be; the bot's ``dispatch_taps`` make that instrumentation plain calls
instead of listener tasks (``instrumentation.taps``). It is an
``AutoShardedBot`` always (one shard unless ``COMET_SHARD_COUNT`` / ``COMET_SHARD_IDS`` say otherwise).

Every failure of a command is answered here, in the configured language, with a short clear message
— never a traceback or an internal detail; the exception itself goes to the log.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Callable, Coroutine
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from comet.core.config import Settings
from comet.core.error_replies import describe_error, echo, log_failure
from comet.core.i18n import Translator, translator_for
from comet.core.member_lookup import install_rest_member_lookup
from comet.core.secure_http import install_http_scrubber
from comet.core.shutdown import WorkTracker
from comet.core.telemetry import Telemetry
from comet.core.tree import CometTree
from instrumentation.bot_monitor import BotMonitor
from instrumentation.commands import CommandInstrumentation
from instrumentation.gateway import GatewayInstrumentation
from instrumentation.install import InstrumentationHandle, handle_of
from instrumentation.invocations import unwrap_error
from instrumentation.recorder import FlightRecorder
from instrumentation.taps import DispatchTaps

log = logging.getLogger(__name__)


def bot_intents() -> discord.Intents:
    intents = discord.Intents.default()
    intents.message_content = True  # prefix commands read message text
    intents.members = True  # moderation, oshi roles, member counts
    return intents


class LocalizedHelpCommand(commands.DefaultHelpCommand):
    """discord.py's default help, with its headings and messages from the catalogue."""

    async def prepare_help_command(self, ctx: commands.Context[Any], command: str | None = None, /) -> None:
        t = translator_for(ctx)
        self.no_category = t("core.help.no_category")
        self.commands_heading = t("core.help.commands_heading")
        self.arguments_heading = t("core.help.arguments_heading")
        self.default_argument_description = t("core.help.default_argument")
        await super().prepare_help_command(ctx, command)

    def get_ending_note(self) -> str:
        return translator_for(self.context)("core.help.ending_note", prefix=self.context.clean_prefix)

    def command_not_found(self, string: str, /) -> str:
        return translator_for(self.context)("core.help.not_found", command=echo(string))

    def subcommand_not_found(self, command: commands.Command[Any, ..., Any], string: str, /) -> str:
        return translator_for(self.context)(
            "core.help.subcommand_not_found", command=command.qualified_name, subcommand=echo(string)
        )


class CometBot(commands.AutoShardedBot):
    """The C.O.M.E.T. bot: ``settings``, ``telemetry``, ``store``, ``i18n`` (translator), ``monitor``."""

    def __init__(self, settings: Settings, telemetry: Telemetry, store: Any = None) -> None:
        # Before super().__init__: discord.py's connection state keeps a reference to self.dispatch.
        self.dispatch_taps = DispatchTaps()
        # Everything run for Discord events, so that a shutdown can let it finish (comet.core.shutdown).
        self.work = WorkTracker()
        # This process runs COMET_SHARD_IDS (of COMET_SHARD_COUNT) when set, else every shard.
        sharding: dict[str, Any] = {"shard_count": settings.shard_count or 1}
        if settings.shard_ids is not None:
            sharding["shard_ids"] = list(settings.shard_ids)
        super().__init__(
            command_prefix=commands.when_mentioned_or(settings.prefix),
            intents=bot_intents(),
            allowed_mentions=discord.AllowedMentions(everyone=False, roles=False, users=True),
            description="C.O.M.E.T. — Community of Oshilove, Moderation & Enjoyment, Together",
            help_command=LocalizedHelpCommand(),
            tree_cls=CometTree,
            **sharding,
        )
        self._started = False
        self.settings = settings
        self.telemetry = telemetry
        self.store = store
        self.debug_mode: bool = settings.debug_mode  # the owner's debug cog reads it (and !reload watch)
        self.i18n = Translator(settings.locale)
        # Every REST body to Discord (messages, files, webhooks, interaction replies) is scrubbed.
        install_http_scrubber(self, telemetry.scrubber)  # the REST metrics, installed later, wrap it
        # The tree's error handler first: the instrumentation wraps whatever handler is set.
        self.tree.error(self.on_app_command_error)

    # -- the instrumentation (``instrumentation.instrument(bot)``, called by the launcher) -----------

    @property
    def instrumentation(self) -> InstrumentationHandle:
        handle = handle_of(self)
        if handle is None:
            raise RuntimeError(
                "CometBot is not instrumented: start it with comet.core.launcher.start_runtime"
            )
        return handle

    @property
    def instrumented(self) -> bool:
        return handle_of(self) is not None

    @property
    def command_instrumentation(self) -> CommandInstrumentation:
        return self.instrumentation.commands

    @property
    def gateway_instrumentation(self) -> GatewayInstrumentation:
        return self.instrumentation.gateway

    @property
    def recorder(self) -> FlightRecorder:
        """The recent slow and failed invocations (``!trace``, ``/debug/invocations/<id>``)."""
        return self.instrumentation.recorder

    @property
    def monitor(self) -> BotMonitor:
        return self.instrumentation.monitor

    def dispatch(self, event_name: str, /, *args: Any, **kwargs: Any) -> None:
        # The instrumentation observes events synchronously here instead of as one task per listener.
        self.dispatch_taps.run(event_name, args)
        super().dispatch(event_name, *args, **kwargs)

    def _schedule_event(
        self,
        coro: Callable[..., Coroutine[Any, Any, Any]],
        event_name: str,
        *args: Any,
        **kwargs: Any,
    ) -> asyncio.Task[Any]:
        # Every listener task (on_message runs the prefix commands) is tracked work. While draining,
        # only work already running may start more (a failed command's on_command_error).
        wrapped = self._run_event(coro, event_name, *args, **kwargs)
        if not self.work.admits_new():
            wrapped.close()
            return None  # type: ignore[return-value]  # discord.py ignores the value
        return self.work.spawn(wrapped, name=f"discord.py: {event_name}")

    async def invoke(self, ctx: commands.Context[Any], /) -> None:
        try:
            await super().invoke(ctx)
        except asyncio.CancelledError:
            # Cancelled at the end of a shutdown's grace period: the user got no answer. (A cancel in
            # the callback itself is swallowed by discord.py and counted at command_completion; this
            # is one that landed in the checks or the argument converters.)
            if ctx.command is not None:
                self.command_instrumentation.record_cancelled(ctx=ctx)
            raise

    async def readiness(self) -> dict[str, Any]:
        """``/readyz``: the monitor's health fields; ``draining`` (not ready) once shutdown began."""
        result = await self.monitor.health_check()
        if not self.work.accepting:
            result["status"] = "draining"
        return result

    # -- set-up -------------------------------------------------------------------------------------

    def invocation_json(self, trace_id: str) -> dict[str, Any] | None:
        """A kept invocation's timeline (``/debug/invocations/<id>``, ``!trace``), or None."""
        return self.instrumentation.invocation_json(trace_id)

    async def setup_hook(self) -> None:
        install_rest_member_lookup()  # name and id lookups over REST, not the shard's gateway budget
        self.add_listener(self._freeze_startup_heap, "on_ready")
        for name in self.settings.extensions:
            await self._load_at_start(name)
        self.refresh_command_labels()
        self.gateway_instrumentation.register_known_shards()
        if self.settings.sync_commands:
            try:
                synced = await self.tree.sync()
                log.info("Synced %d application commands", len(synced))
            except discord.HTTPException as exc:
                # The prefix forms keep working; slash commands appear once a later sync succeeds.
                log.warning(
                    "Could not sync application commands: %s (HTTP %s)", type(exc).__name__, exc.status
                )

    async def _freeze_startup_heap(self) -> None:
        # What start-up built (modules, cogs, the first cache) mostly lives as long as the process:
        # moving it out of the collector's generations keeps full collections short, and those, not
        # rendering, are the worst event-loop stalls left during a scrape (bench/bench_instrumentation.py).
        # Frozen objects are never collected, so what of it dies later in a cycle (a guild replaced by
        # a re-IDENTIFY, a reloaded cog) stays: bounded by the start-up heap, because the freeze is done
        # once per process (gc state is process-wide; a second bot in the process, as in tests, must
        # not freeze the first one's garbage-to-be again).
        if gc.get_freeze_count() == 0:
            gc.collect()
            gc.freeze()

    async def _load_at_start(self, name: str) -> None:
        metrics = self.telemetry.metrics
        try:
            await self.load_extension(name)
        except commands.ExtensionError as exc:
            # One broken extension must not keep the others (and the monitoring) from starting.
            cause = exc.__cause__ or exc
            log.error(
                "Could not load extension %s: %s: %s", name, type(cause).__name__, cause, exc_info=cause
            )
            metrics.extension_reloads.labels("load", "error").inc()
        else:
            metrics.extension_reloads.labels("load", "success").inc()

    def flush_metrics(self) -> None:
        """Write the instrumentation's pending batch now (it also does so by itself within 0.1 s)."""
        if self.instrumented:
            self.instrumentation.flush()

    def refresh_command_labels(self) -> list[str]:
        """Register every command name as a metric label (call after commands change)."""
        return self.command_instrumentation.refresh_command_labels() if self.instrumented else []

    async def add_cog(self, cog: commands.Cog, /, *args: Any, **kwargs: Any) -> None:
        await super().add_cog(cog, *args, **kwargs)
        self.refresh_command_labels()
        if getattr(cog, "owner_only", False):  # duck-typed: comet.features.owner_gate may be hot-reloaded
            self.telemetry.metrics.register_owner_commands(c.name for c in cog.get_commands())

    async def load_extension(self, name: str, *, package: str | None = None) -> None:
        await super().load_extension(name, package=package)
        self.refresh_command_labels()

    async def reload_extension(self, name: str, *, package: str | None = None) -> None:
        await super().reload_extension(name, package=package)
        self.refresh_command_labels()

    def set_locale(self, locale: str) -> None:
        """Switch the language of every reply (``ja`` or ``en``)."""
        self.i18n = self.i18n.with_locale(locale)

    # -- owners ---------------------------------------------------------------------------------------

    async def is_owner(self, user: discord.abc.User, /) -> bool:
        """The application's owner or team members, plus ``COMET_OWNER_IDS``."""
        if user.id in self.settings.owner_ids:
            return True
        return await super().is_owner(user)

    # -- shutdown ------------------------------------------------------------------------------------

    async def start(self, token: str, *, reconnect: bool = True) -> None:
        self._started = True
        await super().start(token, reconnect=reconnect)

    async def close(self) -> None:
        # A deliberate shutdown is not a gateway disconnect to alert on: stop counting first.
        if self.instrumented:
            self.gateway_instrumentation.uninstall()
            self.command_instrumentation.flush()
        try:
            await super().close()
        except AttributeError:
            # AutoShardedClient.close() of a bot that never started trips over its missing event
            # queue (created on login); there is nothing else to close then.
            if self._started:
                raise

    # -- errors ---------------------------------------------------------------------------------------

    async def on_command_error(self, ctx: commands.Context[Any], error: commands.CommandError, /) -> None:
        """Answer every failed prefix or hybrid command in the configured language."""
        command = ctx.command
        if (command is not None and command.has_error_handler()) or (
            ctx.cog is not None and ctx.cog.has_error_handler()
        ):
            return  # the command or its cog answers its own errors
        original = unwrap_error(error)
        log_failure(ctx.command.qualified_name if ctx.command else None, original)
        text = describe_error(self.i18n, original, ctx=ctx)
        try:
            await ctx.reply(
                text, mention_author=False, ephemeral=True, allowed_mentions=discord.AllowedMentions.none()
            )
        except Exception as exc:  # an error handler that raises would only be logged by discord.py
            self._log_unsent_error_reply("command", exc)

    async def on_app_command_error(
        self, interaction: discord.Interaction[Any], error: app_commands.AppCommandError, /
    ) -> None:
        """Answer every failed slash command (hybrids used as slash go through on_command_error)."""
        command = interaction.command
        if command is not None and _has_own_app_error_handler(command):
            return
        original = unwrap_error(error)
        log_failure(command.qualified_name if command is not None else None, original)
        text = describe_error(self.i18n, original, interaction=interaction)
        try:
            if interaction.response.is_done():
                await interaction.followup.send(
                    text, ephemeral=True, allowed_mentions=discord.AllowedMentions.none()
                )
            else:
                await interaction.response.send_message(
                    text, ephemeral=True, allowed_mentions=discord.AllowedMentions.none()
                )
        except Exception as exc:
            self._log_unsent_error_reply("slash command", exc)

    def _log_unsent_error_reply(self, what: str, exc: Exception) -> None:
        """One line for an error reply that could not be sent, at the level the cause deserves."""
        if isinstance(exc, discord.HTTPException):
            log.warning("Could not answer a failed %s: %s (HTTP %s)", what, type(exc).__name__, exc.status)
        elif self.is_closed() or not self.work.accepting:
            log.info("Could not answer a failed %s: the bot is shutting down (%s)", what, type(exc).__name__)
        else:
            log.warning("Could not answer a failed %s: %s: %s", what, type(exc).__name__, exc)


def _has_own_app_error_handler(command: Any) -> bool:
    check = getattr(command, "_has_any_error_handlers", None)
    return bool(check()) if callable(check) else False
