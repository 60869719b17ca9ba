"""Owner commands for hot reload: ``reload``, ``load``, ``unload`` (and ``reload watch``).

``reload`` takes extension names (``comet.features.cogs.debug`` or just ``debug``), plain helper modules
(``comet.something``), or ``~`` for every loaded extension. Each gets its own line in the report,
with its error when it failed; discord.py's reload is atomic, so a failed reload leaves the old
code running. Hot reload is owner-only but not gated by debug mode (docs/debugging.md); the file
watcher (``reload watch on``) is debug mode only.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from discord.ext import commands

from comet.core.reloader import HotReloader, Operation, ReloadResult
from comet.features.base import NO_MENTIONS, CometCog, comet_bot, subcommand
from comet.features.owner_gate import OwnerGate
from comet.features.paging import PAGE_LIMIT, fence, paginate

if TYPE_CHECKING:
    from comet.core.bot import CometBot

log = logging.getLogger(__name__)

ALL_LOADED = "~"


class ReloadCog(OwnerGate, CometCog, name="Reload"):
    """The HotReloader, driven from Discord."""

    #: ``reload watch`` refused outside debug mode is logged at INFO, only refusals at WARNING.
    audit_warning_outcomes = frozenset({"denied"})

    def __init__(self, bot: CometBot) -> None:
        super().__init__(bot)
        self.reloader = HotReloader(bot)

    async def cog_load(self) -> None:
        if self.bot.settings.reload_watch:
            self.reloader.start_watching()

    async def cog_unload(self) -> None:
        await self.reloader.stop_watching()

    # -- commands ------------------------------------------------------------------------------

    @commands.group(name="reload", invoke_without_command=True)
    async def reload_command(self, ctx: commands.Context[Any], *names: str) -> None:
        """Reload extensions (``~`` = all loaded) and plain helper modules."""
        started = time.perf_counter()
        targets = self._targets(names)
        if not targets:
            await ctx.send(self.t("reload.usage", command="reload"))
            self.record(ctx, "reload", "error", started)
            return
        extensions = [self.reloader.resolve_extension(n) for n in targets if self._is_extension_name(n)]
        modules = [n for n in targets if not self._is_extension_name(n)]
        results = await self.reloader.reload_modules([*modules, *extensions])
        await self._report(ctx, "reload", results, started)

    @subcommand(reload_command, name="watch")
    async def reload_watch(self, ctx: commands.Context[Any], state: str = "on") -> None:
        """``reload watch on|off``: reload an extension when its file changes (debug mode only)."""
        started = time.perf_counter()
        if state.lower() == "off":
            await self.reloader.stop_watching()
            await ctx.send(self.t("reload.watch_off"))
        elif self.reloader.start_watching():
            await ctx.send(self.t("reload.watch_on", seconds=f"{self.reloader.watch_interval:g}"))
        else:
            await ctx.send(self.t("debug.disabled"))
            self.record(ctx, "reload", "disabled", started)
            return
        self.record(ctx, "reload", "ok", started)

    @commands.command(name="load")
    async def load_command(self, ctx: commands.Context[Any], *names: str) -> None:
        """Load extensions."""
        await self._operate(ctx, "load", names)

    @commands.command(name="unload")
    async def unload_command(self, ctx: commands.Context[Any], *names: str) -> None:
        """Unload extensions (``~`` = all loaded, except this one)."""
        await self._operate(ctx, "unload", names)

    # -- helpers -------------------------------------------------------------------------------

    def _targets(self, names: tuple[str, ...]) -> list[str]:
        targets: list[str] = []
        for name in names:
            if name == ALL_LOADED:
                targets.extend(self.bot.extensions)
            else:
                targets.append(name)
        return list(dict.fromkeys(targets))

    def _is_extension_name(self, name: str) -> bool:
        """Loaded extensions and short names are extensions; other dotted names are modules."""
        return name in self.bot.extensions or self.reloader.resolve_extension(name) in self.bot.extensions

    async def _operate(
        self, ctx: commands.Context[Any], operation: Operation, names: tuple[str, ...]
    ) -> None:
        started = time.perf_counter()
        targets = self._targets(names)
        if operation == "unload" and ALL_LOADED in names:
            targets = [n for n in targets if n != __name__]
        if not targets:
            await ctx.send(self.t("reload.usage", command=operation))
            self.record(ctx, operation, "error", started)
            return
        results = [await self.reloader.extension(operation, name) for name in targets]
        await self._report(ctx, operation, results, started)

    async def _report(
        self, ctx: commands.Context[Any], command: str, results: list[ReloadResult], started: float
    ) -> None:
        lines = [("✅ " if r.ok else "❌ ") + r.message for r in results]
        ok = sum(r.ok for r in results)
        lines.append(self.t("reload.summary", ok=ok, total=len(results)))
        self.record(ctx, command, "ok" if ok == len(results) else "error", started)
        for page in paginate("\n".join(lines), PAGE_LIMIT - len(fence(""))):
            await ctx.send(page, allowed_mentions=NO_MENTIONS)


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(ReloadCog(comet_bot(bot)))
