"""Fixtures for the emulator's own tests: an answering bot, plain or auto-sharded (2 shards)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import discord
import pytest
import pytest_asyncio
from discord.ext import commands
from processes import children  # noqa: F401 (the fixture)

from discord_emulator import Emulator
from discord_emulator.testing.client import fast_ready, start_client, stop_client
from discord_emulator.testing.pytest_plugin import test_intents


def make_answering_bot(kind: str, **options: object) -> commands.Bot:
    cls = commands.AutoShardedBot if kind == "sharded" else commands.Bot
    bot = cls(command_prefix="!", intents=test_intents(), **options)
    fast_ready(bot)

    @bot.command()
    async def ping(ctx: commands.Context[commands.Bot]) -> None:
        await ctx.send("pong")

    @bot.tree.command(description="hello")
    async def hello(interaction: discord.Interaction) -> None:
        await interaction.response.send_message(f"hi {interaction.user.display_name}")

    return bot


@pytest.fixture
def bot_factory() -> Callable[..., commands.Bot]:
    """``bot_factory("bot" | "sharded", **client_options)`` -> an unstarted bot with !ping and /hello."""
    return make_answering_bot


@pytest_asyncio.fixture(params=["bot", "sharded"])
async def answering_bot(request: pytest.FixtureRequest, emulator: Emulator) -> AsyncIterator[commands.Bot]:
    """A running bot with ``!ping`` and ``/hello``; heartbeats every 0.25 s, 1.5 s heartbeat timeout
    (so a silent gateway is noticed quickly)."""
    if request.param == "sharded":
        emulator.shard_count = 2
    emulator.gateway.heartbeat_interval = 0.25
    bot = make_answering_bot(request.param, heartbeat_timeout=1.5)
    task = await start_client(bot, emulator)
    try:
        yield bot
    finally:
        await stop_client(bot, task)
