"""Modify Channel (PATCH /channels/{id}) and reaction emoji validation, as Discord does them."""

from __future__ import annotations

import discord
import pytest
from discord.ext import commands

from comet.core.demo_guild import DEMO
from discord_emulator import Emulator
from discord_emulator.core.models import Perm

GENERAL = DEMO.general_channel_id
MEMBER = DEMO.member_ids[2]
CHANNEL_ROUTE = "/channels/{channel_id}"


def general(bot: commands.Bot) -> discord.TextChannel:
    channel = bot.get_channel(GENERAL)
    assert isinstance(channel, discord.TextChannel)
    return channel


def grant_manage_channels(emulator: Emulator) -> None:
    guild = emulator.world.guilds[DEMO.guild_id]
    guild.roles[DEMO.bot_role_id].permissions |= Perm.MANAGE_CHANNELS


@pytest.mark.asyncio
async def test_channel_edit_needs_manage_channels(emulator: Emulator, discord_bot: commands.Bot) -> None:
    channel = general(discord_bot)
    with pytest.raises(discord.Forbidden) as denied:
        await channel.edit(name="renamed")
    assert denied.value.code == 50013
    assert emulator.world.channels[GENERAL].name == "general"
    assert [r.status for r in emulator.requests_to(CHANNEL_ROUTE, "PATCH")] == [403]


@pytest.mark.asyncio
async def test_channel_edit_changes_the_channel_and_the_bots_cache(
    emulator: Emulator, discord_bot: commands.Bot
) -> None:
    grant_manage_channels(emulator)
    updates: list[tuple[str, str, str | None]] = []

    @discord_bot.listen()
    async def on_guild_channel_update(
        before: discord.abc.GuildChannel, after: discord.abc.GuildChannel
    ) -> None:
        assert isinstance(after, discord.TextChannel)
        updates.append((before.name, after.name, after.topic))

    channel = general(discord_bot)
    edited = await channel.edit(name="zatsudan", topic="今日の配信の感想", slowmode_delay=5, reason="tidy")
    assert edited is not None
    assert (edited.name, edited.topic, edited.slowmode_delay) == ("zatsudan", "今日の配信の感想", 5)
    stored = emulator.world.channels[GENERAL]
    assert (stored.name, stored.topic, stored.rate_limit_per_user) == ("zatsudan", "今日の配信の感想", 5)
    # CHANNEL_UPDATE reached the gateway: the cached channel (not only the returned copy) is renamed.
    await emulator.wait_for(lambda: bool(updates))
    assert updates == [("general", "zatsudan", "今日の配信の感想")]
    cached = general(discord_bot)
    assert (cached.name, cached.topic, cached.slowmode_delay) == ("zatsudan", "今日の配信の感想", 5)
    assert emulator.world.audit_log[-1]["action"] == "channel_update"
    assert emulator.world.audit_log[-1]["reason"] == "tidy"

    await cached.edit(topic=None)
    await emulator.wait_for(lambda: len(updates) == 2)
    assert general(discord_bot).topic is None and general(discord_bot).name == "zatsudan"


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"name": "x" * 101}, "name"),
        ({"name": ""}, "name"),
        ({"topic": "t" * 1025}, "topic"),
        ({"slowmode_delay": 21601}, "rate_limit_per_user"),
    ],
)
async def test_a_bad_channel_edit_is_refused_and_changes_nothing(
    emulator: Emulator, discord_bot: commands.Bot, changes: dict[str, object], field: str
) -> None:
    grant_manage_channels(emulator)
    channel = general(discord_bot)
    with pytest.raises(discord.HTTPException) as bad:
        await channel.edit(**changes)  # type: ignore[arg-type]
    assert (bad.value.status, bad.value.code) == (400, 50035)
    assert field in bad.value.text
    stored = emulator.world.channels[GENERAL]
    assert (stored.name, stored.topic, stored.rate_limit_per_user) == ("general", "雑談", 0)


@pytest.mark.asyncio
async def test_a_dm_channel_cannot_be_edited(emulator: Emulator, discord_bot: commands.Bot) -> None:
    user = discord_bot.get_user(MEMBER)
    assert user is not None
    dm = await user.create_dm()
    route = discord.http.Route("PATCH", "/channels/{channel_id}", channel_id=dm.id)
    with pytest.raises(discord.Forbidden) as refused:
        await discord_bot.http.request(route, json={"name": "ours"})
    assert refused.value.code == 50003


@pytest.mark.asyncio
@pytest.mark.parametrize("emoji", ["👍", "👍🏽", "❤️", "🇯🇵", "👨‍👩‍👧", "1️⃣", "comet:123456789012345678"])
async def test_unicode_and_custom_emoji_are_taken_as_reactions(
    emulator: Emulator, discord_bot: commands.Bot, emoji: str
) -> None:
    sent = await general(discord_bot).send("vote!")
    await sent.add_reaction(emoji)
    assert emulator.world.channels[GENERAL].messages[sent.id].reactions == {emoji: [DEMO.bot_user_id]}
    await sent.remove_reaction(emoji, discord.Object(DEMO.bot_user_id))
    assert emulator.world.channels[GENERAL].messages[sent.id].reactions == {emoji: []}


@pytest.mark.asyncio
@pytest.mark.parametrize("emoji", ["not an emoji", "a", "👍👍", "comet", ":123", "comet:abc", "👍 "])
async def test_anything_else_is_unknown_emoji(
    emulator: Emulator, discord_bot: commands.Bot, emoji: str
) -> None:
    sent = await general(discord_bot).send("vote!")
    with pytest.raises(discord.HTTPException) as unknown:
        await sent.add_reaction(emoji)
    assert (unknown.value.status, unknown.value.code) == (400, 10014)
    assert unknown.value.text == "Unknown Emoji"
    assert emulator.world.channels[GENERAL].messages[sent.id].reactions == {}
    with pytest.raises(discord.HTTPException) as also_unknown:
        await sent.remove_reaction(emoji, discord.Object(DEMO.bot_user_id))
    assert also_unknown.value.code == 10014


@pytest.mark.asyncio
async def test_a_member_cannot_react_with_something_that_is_not_an_emoji(
    emulator: Emulator, discord_bot: commands.Bot
) -> None:
    sent = await general(discord_bot).send("vote!")
    with pytest.raises(ValueError, match="not an emoji"):
        await emulator.add_reaction(GENERAL, sent.id, MEMBER, "not an emoji")
    await emulator.add_reaction(GENERAL, sent.id, MEMBER, "👍")
    assert emulator.world.channels[GENERAL].messages[sent.id].reactions == {"👍": [MEMBER]}
