"""The owner gate and audit line shared by the owner-only cogs (``debug`` tools and hot ``reload``).

Every attempt at an owner command, refused or not, is counted in
``comet_debug_invocations_total{command,outcome}`` and written to the ``comet.audit`` log (who,
which command, outcome, duration; never the code or its output).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, ClassVar

from discord.ext import commands

from comet.features.checks import is_owner

if TYPE_CHECKING:
    from comet.core.bot import CometBot

audit_log = logging.getLogger("comet.audit")


def invoked_directly(ctx: commands.Context[Any]) -> bool:
    """True when ``ctx.command`` is what the user typed (not a command the help page is checking).

    ``Command.can_run`` sets ``ctx.command`` to the command being checked, so the help command's
    filtering looks like an invocation of every command it lists; the typed name tells them apart.
    """
    command = ctx.command
    if command is None:
        return False
    root = command.root_parent or command
    typed = ctx.invoked_parents[0] if ctx.invoked_parents else ctx.invoked_with
    return typed in (root.name, *root.aliases)


class OwnerGate:
    """Mixin for a ``commands.Cog`` whose every command is owner only (put it before ``Cog``).

    Provides the cog-wide owner check (a refused, directly typed invocation is counted as
    ``denied``, audit-logged and answered with ``commands.NotOwner``) and :meth:`record`.
    """

    bot: CometBot
    #: Read by CometBot.add_cog, which pre-initialises the cog's ``debug_invocations`` series.
    owner_only: ClassVar[bool] = True
    #: Outcomes audit-logged at WARNING; every other outcome is logged at INFO.
    audit_warning_outcomes: ClassVar[frozenset[str]] = frozenset({"denied", "disabled"})

    def denied_label(self, ctx: commands.Context[Any]) -> str:
        """The ``command`` label a refused invocation is counted under (its top-level name)."""
        command = ctx.command
        assert command is not None
        return (command.root_parent or command).name

    def record(
        self,
        ctx: commands.Context[Any],
        command: str,
        outcome: str,
        started: float | None = None,
        *,
        detail: str = "",
    ) -> None:
        """Count the attempt and write the audit line (never the code or its output)."""
        self.bot.telemetry.metrics.debug_invocations.labels(command, outcome).inc()
        duration = "" if started is None else f" duration_ms={(time.perf_counter() - started) * 1000:.1f}"
        level = logging.WARNING if outcome in self.audit_warning_outcomes else logging.INFO
        audit_log.log(
            level,
            "owner-command command=%s outcome=%s user=%s user_name=%r guild=%s channel=%s%s%s",
            command,
            outcome,
            ctx.author.id,
            str(ctx.author),
            ctx.guild.id if ctx.guild else None,
            ctx.channel.id,
            duration,
            f" {detail}" if detail else "",
        )

    async def cog_check(self, ctx: commands.Context[Any]) -> bool:
        """Owner only. A refused invocation is counted and audit-logged, then refused as usual."""
        predicate = is_owner().predicate  # type: ignore[attr-defined]
        try:
            allowed = bool(await predicate(ctx))
        except commands.CheckFailure:
            allowed = False
        # The help command runs this check for every command it lists: only real attempts count.
        if not allowed and ctx.command is not None and ctx.command.cog is self and invoked_directly(ctx):
            self.record(ctx, self.denied_label(ctx), "denied")
            raise commands.NotOwner("owner only")
        return allowed
