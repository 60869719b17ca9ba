"""pytest fixtures (registered in tests/conftest.py):

``emulator``    a running Emulator on 127.0.0.1:<free port>, discord.py pointed at it (restored after).
``discord_bot`` a plain ``commands.Bot`` (prefix "!", default intents + message_content + members)
                logged in and ready on ``emulator``; add commands/cogs to it in the test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio
from discord.ext import commands

from comet.discord_endpoints import point_discord_at, restoring_endpoints

from .client import fast_ready, start_client, stop_client, test_intents
from .server import Emulator


@pytest_asyncio.fixture
async def emulator() -> AsyncIterator[Emulator]:
    with restoring_endpoints():
        async with Emulator() as emu:
            point_discord_at(emu.api_base, emu.gateway_url)
            yield emu


@pytest_asyncio.fixture
async def discord_bot(emulator: Emulator) -> AsyncIterator[commands.Bot]:
    bot = commands.Bot(command_prefix="!", intents=test_intents())
    fast_ready(bot)
    task = await start_client(bot, emulator)
    try:
        yield bot
    finally:
        await stop_client(bot, task)
