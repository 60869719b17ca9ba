"""A test extension with a deliberately CPU-heavy command, for the profiler's test."""

from __future__ import annotations

import asyncio
from typing import Any

from discord.ext import commands


def spin_the_cpu(rounds: int) -> int:
    total = 0
    for i in range(rounds):
        total += i * i % 7
    return total


class Spin(commands.Cog):
    @commands.command(name="spin")
    async def spin(self, ctx: commands.Context[Any]) -> None:
        for _ in range(10):  # busy for a while, yielding to the loop between rounds like real work
            spin_the_cpu(200_000)
            await asyncio.sleep(0)
        await ctx.send("spun")


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(Spin())
