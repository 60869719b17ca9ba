"""A ``TestEnvironment`` for cog authors: a dict (``bot``, ``guild``, ``channel``, ``user``,
``emulator``) of real discord.py objects from a bot logged in to an emulator seeded with the example
guild (ids 123456789, 987654321, 555666777), so a command is tested the way users will use it.

    async with setup_test_environment() as env:
        env["bot"].add_command(my_command)
        msg = await env["emulator"].send_message(env["channel"].id, env["user"].id, "!my_command")
        reply = await env["emulator"].wait_for_reply(env["channel"].id, after=msg)

or, with explicit set-up and teardown: ``env = await TestEnvironment().setup_test_environment()`` ...
``await TestEnvironment.teardown()``.
"""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Any

import discord
from discord.ext import commands

from discord_emulator.endpoints import current_endpoints, point_discord_at
from discord_emulator.seeds import EXAMPLE, seed_example_guild
from discord_emulator.server import Emulator
from discord_emulator.testing.client import fast_ready, start_client, stop_client, test_intents


class TestEnvironment:
    __test__ = False  # not a pytest test class

    def __init__(
        self,
        bot: commands.Bot | None = None,
        *,
        emulator: Emulator | None = None,
        intents: discord.Intents | None = None,
        command_prefix: str = "!",
        user_id: int = EXAMPLE.member_id,
    ) -> None:
        self.bot: commands.Bot = bot or commands.Bot(
            command_prefix=command_prefix, intents=intents or test_intents()
        )
        self.emulator = emulator
        self.user_id = user_id
        self._own_emulator = emulator is None
        self._task: asyncio.Task[None] | None = None
        self._previous_endpoints: tuple[str, str] | None = None

    async def setup_test_environment(self) -> dict[str, Any]:
        """Start the emulator (unless given), log the bot in, and return the environment's dict."""
        if self.emulator is None:
            self.emulator = await Emulator(seed=seed_example_guild).start()
        self._previous_endpoints = current_endpoints()
        fast_ready(self.bot)
        self._task = await start_client(self.bot, self.emulator)  # points discord.py at the emulator
        guild = self.bot.get_guild(EXAMPLE.guild_id)
        if guild is None:
            raise RuntimeError("the example guild did not arrive (is the emulator seeded with it?)")
        channel = guild.get_channel(EXAMPLE.general_channel_id)
        user = guild.get_member(self.user_id)
        if user is None:
            user = await guild.fetch_member(self.user_id)
        return {
            "bot": self.bot,
            "guild": guild,
            "channel": channel,
            "user": user,
            "emulator": self.emulator,
        }

    async def teardown(self) -> None:
        await stop_client(self.bot, self._task)
        self._task = None
        if self._own_emulator and self.emulator is not None:
            await self.emulator.stop()
            self.emulator = None
        if self._previous_endpoints is not None:
            point_discord_at(*self._previous_endpoints)
            self._previous_endpoints = None

    async def __aenter__(self) -> dict[str, Any]:
        try:
            return await self.setup_test_environment()
        except BaseException:
            await self.teardown()
            raise

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.teardown()


def setup_test_environment(
    bot: commands.Bot | None = None, *, emulator: Emulator | None = None, **kwargs: Any
) -> TestEnvironment:
    """``async with setup_test_environment() as env:`` -> {"bot", "guild", "channel", "user", "emulator"}."""
    return TestEnvironment(bot, emulator=emulator, **kwargs)
