"""The real discord.py client logs in to the emulator and answers users (prefix and slash commands)."""

from __future__ import annotations

import discord
import pytest
from discord.ext import commands

from comet.core.demo_guild import DEMO, seed_fan_server
from discord_emulator import Emulator
from discord_emulator.endpoints import restoring_endpoints
from discord_emulator.testing.client import fast_ready, start_client, stop_client
from discord_emulator.testing.pytest_plugin import test_intents

GENERAL = DEMO.general_channel_id
MEMBER = DEMO.member_ids[0]


@pytest.mark.asyncio
async def test_login_sees_demo_guild_and_application_owner(discord_bot: commands.Bot) -> None:
    guild = discord_bot.get_guild(DEMO.guild_id)
    assert guild is not None and guild.chunked
    assert discord_bot.user is not None and discord_bot.user.id == DEMO.bot_user_id
    assert {c.name for c in guild.text_channels} >= {"general", "oshi-talk", "bot-commands", "mod-log"}
    assert {r.name for r in guild.roles} >= {"@everyone", "Moderator", "Member", "Pekora", "Marine"}
    assert guild.get_member(DEMO.moderator_id).guild_permissions.moderate_members  # type: ignore[union-attr]
    owner = guild.get_member(DEMO.owner_id)
    assert owner is not None and await discord_bot.is_owner(owner)
    assert not await discord_bot.is_owner(guild.get_member(MEMBER))  # type: ignore[arg-type]


@pytest.mark.asyncio
async def test_prefix_command_answered(emulator: Emulator, discord_bot: commands.Bot) -> None:
    @discord_bot.command()
    async def oshi(ctx: commands.Context[commands.Bot], *, name: str) -> None:
        await ctx.reply(f"{ctx.author.display_name} の推しは {name}", embed=discord.Embed(title=name))

    msg = await emulator.send_message(GENERAL, MEMBER, "!oshi Pekora")
    reply = await emulator.wait_for_reply(GENERAL, after=msg)
    assert reply.content == "nousagi_fan の推しは Pekora"
    assert reply.embeds[0]["title"] == "Pekora"
    assert reply.reference_id == int(msg["id"])
    [create] = emulator.requests_to("/channels/{channel_id}/messages", "POST")
    assert create.status == 200 and create.json["content"].endswith("Pekora")


@pytest.mark.asyncio
async def test_slash_command_with_options_and_followup(emulator: Emulator, discord_bot: commands.Bot) -> None:
    @discord_bot.tree.command(description="add")
    async def add(interaction: discord.Interaction, a: int, b: int, who: discord.Member) -> None:
        await interaction.response.send_message(f"{a + b} for {who.display_name}", ephemeral=True)
        await interaction.followup.send("followup")
        await interaction.edit_original_response(content=f"edited {a + b}")

    synced = await discord_bot.tree.sync()
    assert [c.name for c in synced] == ["add"]
    inter = await emulator.send_slash(GENERAL, MEMBER, "add", {"a": 2, "b": 3, "who": DEMO.moderator_id})
    first = await emulator.wait_for_reply(GENERAL, after=inter)
    assert first.ephemeral and first.interaction_id == int(inter["id"])
    contents = lambda: [m.content for m in emulator.bot_messages(GENERAL)]  # noqa: E731
    await emulator.wait_for(lambda: contents() == ["edited 5", "followup"])
    assert emulator.bot_messages(GENERAL)[0].edited


@pytest.mark.asyncio
async def test_deferred_slash_command_first_followup_replaces_thinking(
    emulator: Emulator, discord_bot: commands.Bot
) -> None:
    @discord_bot.tree.command(description="slow")
    async def slow(interaction: discord.Interaction) -> None:
        await interaction.response.defer(thinking=True)
        await interaction.followup.send("done")

    inter = await emulator.send_slash(GENERAL, MEMBER, "slow")
    reply = await emulator.wait_for_reply(GENERAL, after=inter)
    assert reply.content == "done" and not reply.loading
    assert len(emulator.bot_messages(GENERAL)) == 1


@pytest.mark.asyncio
async def test_auto_sharded_bot_two_shards(emulator: Emulator) -> None:
    emulator.shard_count = 2  # /gateway/bot recommends 2 shards
    other = emulator.add_guild("shard-zero-or-one", members=3)
    bot = commands.AutoShardedBot(command_prefix="!", intents=test_intents())
    fast_ready(bot)

    @bot.command()
    async def where(ctx: commands.Context[commands.AutoShardedBot]) -> None:
        await ctx.send(f"shard {ctx.guild.shard_id if ctx.guild else None}")

    @bot.tree.command(description="ping")
    async def ping(interaction: discord.Interaction) -> None:
        await interaction.response.send_message(f"pong from {interaction.guild.shard_id}")  # type: ignore[union-attr]

    task = await start_client(bot, emulator)
    try:
        assert bot.shard_count == 2
        assert sorted(s.shard_id for s in emulator.sessions) == [0, 1]
        assert {g.id for g in bot.guilds} == {DEMO.guild_id, other}
        expected = (DEMO.guild_id >> 22) % 2
        msg = await emulator.send_message(GENERAL, MEMBER, "!where")
        assert (await emulator.wait_for_reply(GENERAL, after=msg)).content == f"shard {expected}"
        inter = await emulator.send_slash(GENERAL, MEMBER, "ping")
        assert (await emulator.wait_for_reply(GENERAL, after=inter)).content == f"pong from {expected}"
    finally:
        await stop_client(bot, task)


@pytest.mark.asyncio
async def test_wrong_token_is_a_login_failure() -> None:
    with restoring_endpoints():
        async with Emulator(token="the.right.token", seed=seed_fan_server) as emu:
            bot = fast_ready(commands.Bot(command_prefix="!", intents=test_intents()))
            with pytest.raises(discord.LoginFailure):
                await start_client(bot, emu, token="a.wrong.token")
            await bot.close()
            assert [r.status for r in emu.requests] == [401]
