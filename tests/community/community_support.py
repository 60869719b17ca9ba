"""Shared pieces of the community tests (imported as ``community_support``; fixtures are in conftest)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from comet.core.bot import CometBot
from comet.core.demo_guild import DEMO
from comet.core.storage import Store
from discord_emulator import BotMessage, Emulator

EXTENSIONS = (
    "comet.features.cogs.community",
    "comet.features.cogs.moderation",
    "comet.features.cogs.omikuji",
)
CHANNEL = DEMO.general_channel_id
MOD_LOG = DEMO.mod_log_channel_id
MOD = DEMO.moderator_id
OWNER = DEMO.owner_id
MEMBERS = DEMO.member_ids


@dataclasses.dataclass
class Harness:
    emu: Emulator
    bot: CometBot
    store: Store
    registry: CollectorRegistry
    db_path: Path

    async def say(self, author_id: int, content: str, channel_id: int = CHANNEL) -> BotMessage:
        """Send a prefix command as a member; the bot's answer as users see it."""
        message = await self.emu.send_message(channel_id, author_id, content)
        return await self.emu.wait_for_reply(channel_id, after=message, timeout=5.0)

    async def slash(
        self,
        author_id: int,
        name: str,
        options: dict[str, Any] | None = None,
        subcommand: str | None = None,
        channel_id: int = CHANNEL,
    ) -> BotMessage:
        interaction = await self.emu.send_slash(channel_id, author_id, name, options, subcommand)
        return await self.emu.wait_for_reply(channel_id, after=interaction, timeout=5.0)

    def mod_log(self) -> list[str]:
        return [m.content for m in self.emu.bot_messages(MOD_LOG)]

    def member_role_names(self, user_id: int) -> set[str]:
        guild = self.emu.world.guilds[DEMO.guild_id]
        return {guild.roles[r].name for r in guild.members[user_id].roles if r in guild.roles}

    def sample(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0


async def stop(harness: Harness) -> None:
    """Stop a harness's bot and close its store (for restart tests)."""
    await harness.bot.close()
    await harness.store.close()
