"""A bot process owning some shards of a sharded bot (used by test_emu_processes.py).

usage: python emu_shard_bot.py API_BASE GATEWAY_URL SHARD_COUNT SHARD_ID[,SHARD_ID...]
"""

from __future__ import annotations

import asyncio
import os
import sys

import discord
from discord.ext import commands

from discord_emulator.endpoints import point_discord_at
from discord_emulator.testing.client import TEST_TOKEN, fast_ready


async def main(api_base: str, gateway_url: str, shard_count: int, shard_ids: list[int]) -> None:
    point_discord_at(api_base, gateway_url)
    intents = discord.Intents.default()
    intents.message_content = True
    bot = commands.AutoShardedBot(
        command_prefix="!", intents=intents, shard_count=shard_count, shard_ids=shard_ids
    )
    fast_ready(bot)

    @bot.command()
    async def who(ctx: commands.Context[commands.AutoShardedBot]) -> None:
        shard = ctx.guild.shard_id if ctx.guild else None
        await ctx.send(f"pid {os.getpid()} shard {shard}")

    await bot.start(TEST_TOKEN)


if __name__ == "__main__":
    api, gateway, count, ids = sys.argv[1:5]
    asyncio.run(main(api, gateway, int(count), [int(i) for i in ids.split(",")]))
