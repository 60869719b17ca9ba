"""The bot's command tree: every slash/autocomplete invocation runs as tracked work.

discord.py's ``CommandTree._from_interaction`` starts each invocation as an untracked task. Here the
same body runs through the bot's :class:`comet.core.shutdown.WorkTracker`, so a shutdown can wait for it;
while the bot drains, a new slash command gets a short "restarting" answer instead of Discord's
"the application did not respond", and an invocation cancelled at the end of the grace period is
counted with ``outcome="cancelled"``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands

if TYPE_CHECKING:
    from comet.core.bot import CometBot

log = logging.getLogger(__name__)


class CometTree(app_commands.CommandTree[Any]):
    @property
    def bot(self) -> CometBot:
        return self.client  # type: ignore[no-any-return]

    def _from_interaction(self, interaction: discord.Interaction[Any]) -> None:
        work = self.bot.work
        if work.admits_new():
            work.spawn(self._invoke(interaction), name="CommandTree-invoker")
        elif interaction.type is discord.InteractionType.application_command:
            work.spawn(self._answer_restarting(interaction), name="CommandTree-restarting")
        # An autocomplete request while draining gets no suggestions; Discord shows none.

    async def _invoke(self, interaction: discord.Interaction[Any]) -> None:
        # The body of discord.py's own wrapper, plus the count of a cancelled invocation.
        try:
            await self._call(interaction)
        except app_commands.AppCommandError as error:
            await self._dispatch_error(interaction, error)
        except asyncio.CancelledError:
            self.bot.command_instrumentation.record_cancelled(interaction=interaction)
            raise

    async def _answer_restarting(self, interaction: discord.Interaction[Any]) -> None:
        try:
            await interaction.response.send_message(
                self.bot.i18n.t("core.shutdown.restarting"),
                ephemeral=True,
                allowed_mentions=discord.AllowedMentions.none(),
            )
        except Exception as exc:  # the gateway or the session may already be going away
            log.debug("Could not answer an interaction during shutdown: %s", type(exc).__name__)
