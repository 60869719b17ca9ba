"""The seed's TestEnvironment, made real: same dict and ids, real discord.py objects."""

from __future__ import annotations

import discord
import pytest
from discord.ext import commands

from discord_emulator.endpoints import current_endpoints
from discord_emulator.testing.testenv import TestEnvironment, setup_test_environment


@pytest.mark.asyncio
async def test_setup_test_environment_gives_real_objects_with_the_seed_ids() -> None:
    before = current_endpoints()
    async with setup_test_environment() as env:
        assert env["bot"].user.id == 123456789
        assert isinstance(env["guild"], discord.Guild) and env["guild"].id == 987654321
        assert isinstance(env["channel"], discord.TextChannel) and env["channel"].id == 555666777
        assert isinstance(env["user"], discord.Member) and env["user"].guild == env["guild"]

        @env["bot"].command()
        async def greet(ctx: commands.Context[commands.Bot]) -> None:
            await ctx.send(f"こんぺこ、{ctx.author.display_name}")

        emu = env["emulator"]
        msg = await emu.send_message(env["channel"].id, env["user"].id, "!greet")
        reply = await emu.wait_for_reply(env["channel"].id, after=msg)
        assert reply.content == f"こんぺこ、{env['user'].display_name}"
    assert env["bot"].is_closed()
    assert current_endpoints() == before


@pytest.mark.asyncio
async def test_seed_method_name_still_works() -> None:
    environment = TestEnvironment()
    env = await environment.setup_test_environment()
    try:
        assert set(env) >= {"bot", "guild", "channel", "user"}
        sent = await env["channel"].send("hello from a test")
        assert [m.content for m in env["emulator"].bot_messages(555666777)] == [sent.content]
    finally:
        await environment.teardown()
