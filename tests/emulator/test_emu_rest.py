"""REST behaviour the bot relies on: moderation, reactions, typing, purge, DMs, autocomplete, limits."""

from __future__ import annotations

import datetime
import io

import aiohttp
import discord
import pytest
from discord import app_commands
from discord.ext import commands

from comet.core.demo_guild import DEMO, seed_fan_server
from discord_emulator import Emulator

GENERAL = DEMO.general_channel_id
MEMBER = DEMO.member_ids[2]


def demo_guild(bot: commands.Bot) -> discord.Guild:
    guild = bot.get_guild(DEMO.guild_id)
    assert guild is not None
    return guild


@pytest.mark.asyncio
async def test_every_json_answer_has_the_exact_content_type(emulator: Emulator) -> None:
    async with aiohttp.ClientSession(headers={"Authorization": "Bot x.y.z"}) as http:
        async with http.get(f"{emulator.api_base}/users/@me") as ok:
            assert ok.status == 200 and ok.headers["Content-Type"] == "application/json"
        async with http.get(f"{emulator.api_base}/no/such/route") as missing:
            assert missing.status == 404 and missing.headers["Content-Type"] == "application/json"
            assert (await missing.json())["message"] == "404: Not Found"
    async with aiohttp.ClientSession() as anonymous:
        async with anonymous.get(f"{emulator.api_base}/users/@me") as denied:
            assert denied.status == 401
    unknown = emulator.requests_to("<unknown>")
    assert [(r.method, r.path, r.status) for r in unknown] == [("GET", "/no/such/route", 404)]


@pytest.mark.asyncio
async def test_unknown_route_from_the_bot_raises_not_found_and_is_recorded(
    emulator: Emulator, discord_bot: commands.Bot
) -> None:
    with pytest.raises(discord.NotFound):
        route = discord.http.Route("GET", "/channels/{channel_id}/nothing", channel_id=1)
        await discord_bot.http.request(route)
    assert emulator.requests_to("/channels/1/nothing")[0].status == 404


@pytest.mark.asyncio
async def test_timeout_nick_roles_kick_ban_with_reasons(
    emulator: Emulator, discord_bot: commands.Bot
) -> None:
    guild = demo_guild(discord_bot)
    member = guild.get_member(MEMBER)
    assert member is not None
    until = discord.utils.utcnow() + datetime.timedelta(minutes=5)
    await member.timeout(until, reason="spam")
    state_member = emulator.world.guilds[DEMO.guild_id].members[MEMBER]
    assert state_member.communication_disabled_until is not None
    await emulator.wait_for(lambda: member.is_timed_out())  # GUILD_MEMBER_UPDATE reached the cache
    with pytest.raises(PermissionError):  # like Discord, a timed-out member cannot post
        await emulator.send_message(GENERAL, MEMBER, "let me talk")
    pekora = guild.get_role(DEMO.talent_role_ids["Pekora"])
    assert pekora is not None
    await member.add_roles(pekora, reason="oshi")
    await member.edit(nick="うさ建")
    assert DEMO.talent_role_ids["Pekora"] in state_member.roles and state_member.nick == "うさ建"
    await member.remove_roles(pekora)
    assert DEMO.talent_role_ids["Pekora"] not in state_member.roles
    await member.kick(reason="bye")
    assert MEMBER not in emulator.world.guilds[DEMO.guild_id].members
    await emulator.wait_for(lambda: guild.get_member(MEMBER) is None)
    await guild.ban(discord.Object(DEMO.member_ids[3]), reason="raid")
    assert emulator.world.guilds[DEMO.guild_id].bans == {DEMO.member_ids[3]: "raid"}
    assert [e["reason"] for e in emulator.world.audit_log] == ["spam", "oshi", None, None, "bye", "raid"]
    [patch] = emulator.requests_to("/guilds/{guild_id}/members/{user_id}", "PATCH")[:1]
    assert patch.reason == "spam" and patch.json["communication_disabled_until"]
    assert [b.user.id async for b in guild.bans()] == [DEMO.member_ids[3]]
    await guild.unban(discord.Object(DEMO.member_ids[3]))
    assert emulator.world.guilds[DEMO.guild_id].bans == {}


@pytest.mark.asyncio
async def test_role_hierarchy_is_enforced(emulator: Emulator, discord_bot: commands.Bot) -> None:
    guild = demo_guild(discord_bot)
    owner = guild.get_member(DEMO.owner_id)
    assert owner is not None
    with pytest.raises(discord.Forbidden):
        await owner.timeout(datetime.timedelta(minutes=1))
    bot_role = guild.get_role(DEMO.bot_role_id)
    member = guild.get_member(MEMBER)
    assert bot_role is not None and member is not None
    with pytest.raises(discord.Forbidden):
        await member.add_roles(bot_role)  # managed, and not below the bot's top role
    with pytest.raises(discord.HTTPException) as too_long:
        await member.timeout(datetime.timedelta(days=40))
    assert too_long.value.status == 400


@pytest.mark.asyncio
async def test_reactions_typing_purge_and_message_limits(
    emulator: Emulator, discord_bot: commands.Bot
) -> None:
    seen: list[tuple[int, str]] = []

    @discord_bot.listen()
    async def on_raw_reaction_add(payload: discord.RawReactionActionEvent) -> None:
        seen.append((payload.user_id, str(payload.emoji)))

    channel = discord_bot.get_channel(GENERAL)
    assert isinstance(channel, discord.TextChannel)
    async with channel.typing():
        sent = await channel.send("vote!")
    assert emulator.world.channels[GENERAL].typing_count >= 1
    await sent.add_reaction("👍")
    await emulator.add_reaction(GENERAL, sent.id, MEMBER, "👍")
    await emulator.wait_for(lambda: (MEMBER, "👍") in seen)
    fetched = await channel.fetch_message(sent.id)
    assert fetched.reactions[0].count == 2 and fetched.reactions[0].me
    for i in range(3):
        await emulator.send_message(GENERAL, MEMBER, f"spam {i}")
    deleted = await channel.purge(limit=10, check=lambda m: m.content.startswith("spam"))
    assert len(deleted) == 3
    assert [m.payload["content"] for m in emulator.messages(GENERAL)] == ["vote!"]
    assert emulator.requests_to("/channels/{channel_id}/messages/bulk-delete", "POST")[0].status == 204
    with pytest.raises(discord.HTTPException) as too_long:
        await channel.send("x" * 2001)
    assert too_long.value.code == 50035
    with pytest.raises(discord.HTTPException) as too_big:
        await channel.send(embed=discord.Embed(description="y" * 4097))
    assert too_big.value.code == 50035


@pytest.mark.asyncio
async def test_dm_channels_and_closed_dms(emulator: Emulator, discord_bot: commands.Bot) -> None:
    member = demo_guild(discord_bot).get_member(MEMBER)
    assert member is not None
    await member.send("警告: spam")
    dm = emulator.open_dm(MEMBER)
    assert [m.content for m in emulator.bot_messages(dm)] == ["警告: spam"]
    closed = emulator.add_member(DEMO.guild_id, name="no_dms", accepts_dms=False)
    await emulator.wait_for(lambda: demo_guild(discord_bot).get_member(closed) is not None)
    with pytest.raises(discord.Forbidden) as refused:
        await demo_guild(discord_bot).get_member(closed).send("hi")  # type: ignore[union-attr]
    assert refused.value.code == 50007

    @discord_bot.command()
    async def whoami(ctx: commands.Context[commands.Bot]) -> None:
        await ctx.send(f"dm from {ctx.author.id}" if ctx.guild is None else "guild")

    msg = await emulator.send_message(dm, MEMBER, "!whoami")
    assert (await emulator.wait_for_reply(dm, after=msg)).content == f"dm from {MEMBER}"


@pytest.mark.asyncio
async def test_autocomplete_returns_the_bots_choices(emulator: Emulator, discord_bot: commands.Bot) -> None:
    talents = ["Pekora", "Marine", "Suisei", "Miko", "Korone"]

    async def complete(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        matching = [t for t in talents if t.lower().startswith(current.lower())]
        return [app_commands.Choice(name=t, value=t) for t in matching]

    @discord_bot.tree.command(description="oshi")
    @app_commands.autocomplete(name=complete)
    async def oshi(interaction: discord.Interaction, name: str) -> None:
        await interaction.response.send_message(name)

    choices = await emulator.send_autocomplete(GENERAL, MEMBER, "oshi", focused="name", value="ma")
    assert choices == [{"name": "Marine", "value": "Marine"}]
    inter = await emulator.send_slash(GENERAL, MEMBER, "oshi", {"name": "Marine"})
    assert (await emulator.wait_for_reply(GENERAL, after=inter)).content == "Marine"


@pytest.mark.asyncio
async def test_guild_command_sync_and_subcommands(emulator: Emulator, discord_bot: commands.Bot) -> None:
    group = app_commands.Group(name="oshi", description="oshi")

    @group.command(description="set")
    async def set(interaction: discord.Interaction, talent: discord.Role) -> None:
        await interaction.response.send_message(f"set {talent.name}")

    guild = discord.Object(DEMO.guild_id)
    discord_bot.tree.add_command(group, guild=guild)
    synced = await discord_bot.tree.sync(guild=guild)
    assert [c.name for c in synced] == ["oshi"] and synced[0].guild_id == DEMO.guild_id
    assert list(emulator.world.guild_commands[DEMO.guild_id]) == ["oshi"]
    miko = DEMO.talent_role_ids["Miko"]
    inter = await emulator.send_slash(GENERAL, MEMBER, "oshi", {"talent": miko}, "set")
    assert inter["data"]["guild_id"] == str(DEMO.guild_id)
    assert (await emulator.wait_for_reply(GENERAL, after=inter)).content == "set Miko"


@pytest.mark.asyncio
async def test_record_is_bounded() -> None:
    auth = {"Authorization": "Bot t"}
    async with (
        Emulator(record_size=3, seed=seed_fan_server) as emu,
        aiohttp.ClientSession(headers=auth) as http,
    ):
        for _ in range(5):
            async with http.get(f"{emu.api_base}/users/@me") as response:
                assert response.status == 200
        assert len(emu.requests) == 3


@pytest.mark.asyncio
async def test_bot_without_message_content_intent_sees_empty_content(emulator: Emulator) -> None:
    from discord_emulator.testing.client import fast_ready, start_client, stop_client

    seen: list[str] = []
    bot = fast_ready(commands.Bot(command_prefix="!", intents=discord.Intents.default()))

    @bot.listen()
    async def on_message(message: discord.Message) -> None:
        seen.append(message.content)

    task = await start_client(bot, emulator)
    try:
        await emulator.send_message(GENERAL, MEMBER, "secret")
        await emulator.send_message(GENERAL, MEMBER, f"<@{DEMO.bot_user_id}> hello")
        await emulator.wait_for(lambda: len(seen) == 2)
        assert seen == ["", f"<@{DEMO.bot_user_id}> hello"]
        assert demo_guild(bot).member_count == len(emulator.world.guilds[DEMO.guild_id].members)
    finally:
        await stop_client(bot, task)


@pytest.mark.asyncio
async def test_files_both_ways(emulator: Emulator, discord_bot: commands.Bot) -> None:
    @discord_bot.command()
    async def size(ctx: commands.Context[commands.Bot]) -> None:
        data = await ctx.message.attachments[0].read()
        upload = discord.File(io.BytesIO(data[::-1]), filename="reversed.txt")
        await ctx.send(f"{len(data)} bytes", file=upload)

    msg = await emulator.send_message(GENERAL, MEMBER, "!size", files=[("oshi.txt", b"pekora")])
    reply = await emulator.wait_for_reply(GENERAL, after=msg)
    assert reply.content == "6 bytes"
    assert reply.files == [("reversed.txt", b"arokep")]
    [upload] = emulator.requests_to("/channels/{channel_id}/messages", "POST")
    assert upload.json["content"] == "6 bytes"  # payload_json of the multipart body


@pytest.mark.asyncio
async def test_member_search_matches_name_prefixes_like_discord(emulator: Emulator) -> None:
    auth = {"Authorization": "Bot t"}
    search = f"{emulator.api_base}/guilds/{DEMO.guild_id}/members/search"
    guild = emulator.world.guilds[DEMO.guild_id]
    guild.members[DEMO.member_ids[2]].nick = "Suichan"
    async with aiohttp.ClientSession(headers=auth) as http:
        async with http.get(search, params={"query": "HOU", "limit": "10"}) as response:
            assert response.status == 200
            names = [m["user"]["username"] for m in await response.json()]
        assert names == ["houshou_pirate"]  # case-insensitive prefix of the username
        async with http.get(search, params={"query": "sui", "limit": "10"}) as response:
            assert [m["nick"] for m in await response.json()] == ["Suichan"]  # and of the nickname
        async with http.get(search, params={"query": "_"}) as response:
            assert await response.json() == []
        async with http.get(search, params={"query": "k"}) as response:
            assert len(await response.json()) == 1  # limit defaults to 1
        refused = [
            ({}, "query"),
            ({"query": "x" * 101}, "query"),
            ({"query": "a", "limit": "0"}, "limit"),
            ({"query": "a", "limit": "１"}, "limit"),  # a full-width digit
        ]
        for params, field in refused:
            async with http.get(search, params=params) as response:
                assert response.status == 400
                assert field in (await response.json())["errors"]
