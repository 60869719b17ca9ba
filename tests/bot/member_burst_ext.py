"""A test extension that sends a burst of gateway member queries (``!burst <count>``), for the
gateway send budget's test: each query is one REQUEST_GUILD_MEMBERS command through the shard's
real limiter. The queries run as tasks of the cog (the command answers at once), and unloading the
extension cancels the ones still waiting for the budget."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import discord
from discord.ext import commands


class MemberBurst(commands.Cog):
    def __init__(self) -> None:
        self.queries: set[asyncio.Task[list[discord.Member]]] = set()

    @commands.command(name="burst")
    async def burst(self, ctx: commands.Context[Any], count: int) -> None:
        assert ctx.guild is not None
        members = [m.id for m in ctx.guild.members] or [ctx.author.id]
        for i in range(count):
            query = ctx.guild.query_members(user_ids=[members[i % len(members)]], limit=1, cache=False)
            task = asyncio.create_task(query)
            self.queries.add(task)
            task.add_done_callback(self.queries.discard)
        await ctx.send(f"sent {count}")

    async def cog_unload(self) -> None:
        pending = list(self.queries)
        for task in pending:
            task.cancel()
        for task in pending:
            with contextlib.suppress(asyncio.CancelledError, asyncio.TimeoutError):
                await task


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(MemberBurst())
