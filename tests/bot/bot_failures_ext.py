"""A test-only extension: commands whose failure paths the global error handler must answer.

Loaded into the real CometBot by the bot tests (never shipped in COMET_EXTENSIONS).
"""

from __future__ import annotations

from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from comet.features.checks import is_moderator, is_owner


class Failures(commands.Cog):
    def __init__(self, bot: commands.Bot) -> None:
        self.bot = bot

    @commands.hybrid_command(name="modonly", description="moderators only")
    @is_moderator()
    async def modonly(self, ctx: commands.Context[Any]) -> None:
        await ctx.send("mod ok")

    @commands.command(name="owneronly")
    @is_owner()
    async def owneronly(self, ctx: commands.Context[Any]) -> None:
        await ctx.send("owner ok")

    @commands.command(name="add")
    async def add(self, ctx: commands.Context[Any], a: int, b: int) -> None:
        await ctx.send(str(a + b))

    @app_commands.command(name="slashonly", description="a plain slash command")
    async def slashonly(self, interaction: discord.Interaction[Any], times: int = 1) -> None:
        if times < 0:
            raise ValueError("negative")
        await interaction.response.send_message("slash ok " * max(1, min(times, 3)))

    @app_commands.command(name="slashadmin", description="needs manage_guild")
    @app_commands.checks.has_permissions(manage_guild=True)
    async def slashadmin(self, interaction: discord.Interaction[Any]) -> None:
        await interaction.response.send_message("admin ok")


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(Failures(bot))
