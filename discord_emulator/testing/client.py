"""Helpers for the discord.py side: make a client start fast against the emulator, start/stop it."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import discord

from discord_emulator.endpoints import point_discord_at

TEST_TOKEN = "emulator-token.abc.def-ghi"


def test_intents() -> discord.Intents:
    """The test bots' intents: default + message_content + members."""
    intents = discord.Intents.default()
    intents.message_content = True
    intents.members = True
    return intents


test_intents.__test__ = False  # type: ignore[attr-defined]  # not a test when imported into one


def fast_ready(client: discord.Client, guild_ready_timeout: float = 0.05) -> discord.Client:
    """Tune a client for tests: READY after ``guild_ready_timeout`` instead of 2 s of silence, and no
    5 s sleep before each re-IDENTIFY (discord.py's default ``before_identify_hook``). Not 0: with 0
    the guild queue can time out before the GUILD_CREATEs that follow READY are parsed."""
    client._connection.guild_ready_timeout = guild_ready_timeout

    async def before_identify_hook(shard_id: int | None, *, initial: bool = False) -> None:
        return None

    client.before_identify_hook = before_identify_hook  # type: ignore[method-assign]
    return client


async def start_client(
    client: discord.Client,
    emulator: Any | None = None,
    *,
    token: str = TEST_TOKEN,
    timeout: float = 15.0,  # noqa: ASYNC109
) -> asyncio.Task[None]:
    """Point discord.py at ``emulator`` (if given), start ``client`` in a task and wait until it is
    ready. Raises the client's own error if it fails to start, ``TimeoutError`` if it hangs."""
    if emulator is not None:
        point_discord_at(emulator.api_base, emulator.gateway_url)
    task: asyncio.Task[None] = asyncio.create_task(client.start(token), name="discord-client")
    ready = asyncio.create_task(client.wait_until_ready())
    try:
        done, _ = await asyncio.wait({task, ready}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    except BaseException:
        task.cancel()
        ready.cancel()
        raise
    if ready not in done:
        ready.cancel()
        if task in done:
            task.result()  # raises the start-up error
            raise RuntimeError("discord client stopped before it was ready")
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        raise TimeoutError(f"discord client not ready within {timeout}s")
    # READY may come before a guild's GUILD_CREATE was parsed: fast_ready's short guild timeout can
    # run out while the process is stalled (a loaded machine), leaving the guild "unavailable" for a
    # moment. Ready means every guild is loaded here, so that tests never look at a half-built cache.
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while any(guild.unavailable for guild in client.guilds):
        if task.done():
            task.result()  # raises the client's error
            raise RuntimeError("discord client stopped before its guilds were loaded")
        if loop.time() > deadline:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
            raise TimeoutError(f"discord client's guilds not loaded within {timeout}s")
        await asyncio.sleep(0.005)  # GUILD_CREATE is on its way: look again after it is parsed
    return task


async def stop_client(client: discord.Client, task: asyncio.Task[None] | None = None) -> None:
    """Close the client and wait for its task (swallowing the errors of an already-failed task)."""
    if not client.is_closed():
        await client.close()
    if task is not None:
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(task, 5.0)
