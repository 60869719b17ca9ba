"""Faults injected by the emulator, and what the real discord.py client does about them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import aiohttp
import discord
import pytest
from discord import app_commands
from discord.ext import commands

from comet.core.demo_guild import DEMO
from discord_emulator import Emulator
from discord_emulator.buckets import DEFAULT_LIMIT, DEFAULT_WINDOW
from discord_emulator.testing.client import start_client, stop_client
from discord_emulator.transports.gateway import shard_for

GENERAL = DEMO.general_channel_id
MEMBER = DEMO.member_ids[1]
MESSAGES = "/channels/{channel_id}/messages"
CALLBACK = "/interactions/{interaction_id}/{interaction_token}/callback"


def demo_shard(bot: commands.Bot) -> int | None:
    """The shard the demo guild lives on (None: let the fault hit every connection)."""
    return shard_for(DEMO.guild_id, bot.shard_count) if isinstance(bot, commands.AutoShardedBot) else None


def demo_session(emulator: Emulator, bot: commands.Bot):  # type: ignore[no-untyped-def]
    shard = demo_shard(bot) or 0
    [session] = [s for s in emulator.sessions if s.shard_id == shard]
    return session


async def assert_answers(emulator: Emulator, text: str = "!ping", expected: str = "pong") -> None:
    msg = await emulator.send_message(GENERAL, MEMBER, text)
    reply = await emulator.wait_for_reply(GENERAL, after=msg)
    assert reply.content == expected


@pytest.mark.asyncio
async def test_drop_socket_resumes_and_replays_missed_events(
    emulator: Emulator, answering_bot: commands.Bot
) -> None:
    identifies = emulator.identify_count
    session = demo_session(emulator, answering_bot)
    assert emulator.faults.drop_socket(demo_shard(answering_bot)) >= 1
    await assert_answers(emulator)  # sent while the bot has no connection: only a RESUME replay delivers it
    assert session.resumes >= 1 and session.replayed >= 2  # the missed MESSAGE_CREATE + RESUMED
    assert emulator.identify_count == identifies
    inter = await emulator.send_slash(GENERAL, MEMBER, "hello")
    assert (await emulator.wait_for_reply(GENERAL, after=inter)).content.startswith("hi ")


@pytest.mark.asyncio
async def test_reconnect_op7_resumes_on_resume_gateway_url(
    emulator: Emulator, answering_bot: commands.Bot
) -> None:
    identifies = emulator.identify_count
    resumed: list[int | None] = []

    async def on_resumed() -> None:
        resumed.append(None)

    answering_bot.add_listener(on_resumed)
    session = demo_session(emulator, answering_bot)
    emulator.faults.reconnect(demo_shard(answering_bot))
    await assert_answers(emulator)
    await emulator.wait_for(lambda: session.connected and bool(resumed))
    assert session.connection is not None and session.connection.path == "/resume-gateway"
    assert emulator.identify_count == identifies


@pytest.mark.asyncio
async def test_invalid_session_not_resumable_reidentifies(
    emulator: Emulator, answering_bot: commands.Bot
) -> None:
    identifies = emulator.identify_count
    old = demo_session(emulator, answering_bot)
    emulator.faults.invalid_session(resumable=False, shard=demo_shard(answering_bot))
    await emulator.wait_for(lambda: emulator.identify_count == identifies + 1)
    new = demo_session(emulator, answering_bot)
    assert new is not old and old.invalidated
    await emulator.wait_for(lambda: new.connected and new.connection is not None and new.connection.live)
    await assert_answers(emulator)


@pytest.mark.asyncio
async def test_invalid_session_resumable_resumes(emulator: Emulator, answering_bot: commands.Bot) -> None:
    identifies = emulator.identify_count
    session = demo_session(emulator, answering_bot)
    emulator.faults.invalid_session(resumable=True, shard=demo_shard(answering_bot))
    await assert_answers(emulator)
    assert session.resumes >= 1 and emulator.identify_count == identifies


@pytest.mark.asyncio
async def test_silent_gateway_is_noticed_and_resumed(emulator: Emulator, answering_bot: commands.Bot) -> None:
    session = demo_session(emulator, answering_bot)
    assert emulator.faults.silence_gateway(demo_shard(answering_bot)) >= 1
    msg = await emulator.send_message(GENERAL, MEMBER, "!ping")  # held back by the zombie connection
    reply = await emulator.wait_for_reply(GENERAL, after=msg, timeout=10)
    assert reply.content == "pong"
    assert session.resumes >= 1 and session.replayed >= 2


@pytest.mark.asyncio
async def test_resume_after_replay_buffer_overflow_reidentifies(
    emulator: Emulator, bot_factory: Callable[..., commands.Bot]
) -> None:
    emulator.gateway.replay_limit = 3
    bot = bot_factory("bot")
    task = await start_client(bot, emulator)
    try:
        emulator.faults.drop_socket()
        for i in range(6):  # more than the session can replay
            await emulator.send_message(GENERAL, MEMBER, f"missed {i}")
        await emulator.wait_for(lambda: emulator.identify_count == 2)
        assert emulator.gateway.invalid_resume_count == 1
        await emulator.wait_for(lambda: any(c.live for c in emulator.connections))
        await assert_answers(emulator)
    finally:
        await stop_client(bot, task)


@pytest.mark.asyncio
async def test_rate_limit_429_is_retried(emulator: Emulator, discord_bot: commands.Bot) -> None:
    @discord_bot.command()
    async def hi(ctx: commands.Context[commands.Bot]) -> None:
        await ctx.send("hello")

    emulator.faults.rate_limit(0.05, route=f"POST {MESSAGES}", count=1)
    await assert_answers(emulator, "!hi", "hello")
    statuses = [r.status for r in emulator.requests_to(MESSAGES, "POST")]
    assert statuses == [429, 200]
    assert len(emulator.bot_messages(GENERAL)) == 1


@pytest.mark.asyncio
async def test_server_error_is_retried(emulator: Emulator, discord_bot: commands.Bot) -> None:
    @discord_bot.command()
    async def hi(ctx: commands.Context[commands.Bot]) -> None:
        await ctx.send("hello")

    emulator.faults.server_error(502, route=MESSAGES, count=1)
    msg = await emulator.send_message(GENERAL, MEMBER, "!hi")
    reply = await emulator.wait_for_reply(GENERAL, after=msg, timeout=8)  # discord.py backs off 1 s
    assert reply.content == "hello"
    assert [r.status for r in emulator.requests_to(MESSAGES, "POST")] == [502, 200]


@pytest.mark.asyncio
async def test_forbidden_raises_in_the_command(emulator: Emulator, discord_bot: commands.Bot) -> None:
    errors: list[BaseException] = []

    @discord_bot.command()
    async def hi(ctx: commands.Context[commands.Bot]) -> None:
        await ctx.send("hello")

    @discord_bot.event
    async def on_command_error(ctx: commands.Context[commands.Bot], error: commands.CommandError) -> None:
        errors.append(error)

    emulator.faults.forbidden(route=f"POST {MESSAGES}")
    await emulator.send_message(GENERAL, MEMBER, "!hi")
    await emulator.wait_for(lambda: bool(errors))
    assert isinstance(errors[0], commands.CommandInvokeError)
    assert isinstance(errors[0].original, discord.Forbidden) and errors[0].original.code == 50013
    assert emulator.bot_messages(GENERAL) == []
    await assert_answers(emulator, "!hi", "hello")  # count=1: the next call goes through


@pytest.mark.asyncio
async def test_slow_rest_makes_the_interaction_expire(emulator: Emulator, discord_bot: commands.Bot) -> None:
    emulator.interaction_ack_timeout = 0.1
    errors: list[BaseException] = []

    @discord_bot.tree.command(description="late")
    async def late(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("too late")

    @discord_bot.tree.error
    async def on_app_command_error(
        interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        errors.append(error)

    emulator.faults.slow_rest(0.3, route=CALLBACK, count=1)
    await emulator.send_slash(GENERAL, MEMBER, "late")
    await emulator.wait_for(lambda: bool(errors))
    original = getattr(errors[0], "original", None)
    assert isinstance(original, discord.NotFound) and original.code == 10062  # Unknown interaction
    assert emulator.bot_messages(GENERAL) == []
    assert emulator.faults.injected == [f"slow POST {CALLBACK}"]


@pytest.mark.asyncio
async def test_every_answer_carries_the_routes_rate_limit_headers(emulator: Emulator) -> None:
    url = f"{emulator.api_base}/channels/{GENERAL}/messages"
    async with aiohttp.ClientSession(headers={"Authorization": "Bot x.y.z"}) as http:
        answers = [await http.post(url, json={"content": str(i)}) for i in range(2)]
        other = await http.get(f"{emulator.api_base}/users/@me")
    first, second = (a.headers for a in answers)
    assert first["X-RateLimit-Limit"] == str(DEFAULT_LIMIT)
    assert int(first["X-RateLimit-Remaining"]) - int(second["X-RateLimit-Remaining"]) == 1
    assert first["X-RateLimit-Bucket"] == second["X-RateLimit-Bucket"] != other.headers["X-RateLimit-Bucket"]
    assert 0 < float(second["X-RateLimit-Reset-After"]) <= DEFAULT_WINDOW
    assert float(second["X-RateLimit-Reset"]) > 0


@pytest.mark.asyncio
async def test_a_call_beyond_a_route_limit_gets_a_429_of_the_user_scope(emulator: Emulator) -> None:
    emulator.faults.limit_route(f"POST {MESSAGES}", limit=2, per=30.0)
    url = f"{emulator.api_base}/channels/{GENERAL}/messages"
    async with aiohttp.ClientSession(headers={"Authorization": "Bot x.y.z"}) as http:
        answers = [await http.post(url, json={"content": str(i)}) for i in range(3)]
        elsewhere = await http.post(  # another channel: another bucket
            f"{emulator.api_base}/channels/{DEMO.bot_commands_channel_id}/messages", json={"content": "x"}
        )
        limited = await answers[2].json()
    assert [a.status for a in answers] == [200, 200, 429]
    assert [a.headers["X-RateLimit-Remaining"] for a in answers] == ["1", "0", "0"]
    assert answers[2].headers["X-RateLimit-Scope"] == "user"
    assert 0 < limited["retry_after"] <= 30.0 and limited["global"] is False
    assert elsewhere.status == 200 and elsewhere.headers["X-RateLimit-Remaining"] == "1"


@pytest.mark.asyncio
async def test_discord_py_waits_for_an_exhausted_bucket_instead_of_being_limited(
    emulator: Emulator, discord_bot: commands.Bot
) -> None:
    @discord_bot.command()
    async def many(ctx: commands.Context[commands.Bot]) -> None:
        await asyncio.gather(*(ctx.send(f"part {i}") for i in range(4)))

    emulator.faults.limit_route(f"POST {MESSAGES}", limit=2, per=0.3)
    await emulator.send_message(GENERAL, MEMBER, "!many")
    await emulator.wait_for(lambda: len(emulator.bot_messages(GENERAL)) >= 4)
    posts = emulator.requests_to(MESSAGES, "POST")
    # A call sent before the window reset would have been answered 429 (the limit is 2 per 0.3 s):
    # all four answered means discord.py read the headers and waited for the next window.
    assert [r.status for r in posts] == [200] * 4
