"""pytest fixtures (``pytest_plugins = ["discord_emulator.testing.pytest_plugin"]`` in a conftest.py):

``emulator_seed`` what the ``emulator`` fixture's world starts with (the example guild); override
                  it in a conftest.py to seed an application's own guild.
``emulator``    a running Emulator on 127.0.0.1:<free port>, discord.py pointed at it (restored after).
``discord_bot`` a plain ``commands.Bot`` (prefix "!", default intents + message_content + members)
                logged in and ready on ``emulator``; add commands/cogs to it in the test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from discord.ext import commands

from discord_emulator.endpoints import point_discord_at, restoring_endpoints
from discord_emulator.seeds import Seed, seed_example_guild
from discord_emulator.server import Emulator
from discord_emulator.testing.client import fast_ready, start_client, stop_client, test_intents


@pytest.fixture
def emulator_seed() -> Seed:
    return seed_example_guild


@pytest_asyncio.fixture
async def emulator(emulator_seed: Seed) -> AsyncIterator[Emulator]:
    with restoring_endpoints():
        async with Emulator(seed=emulator_seed) as emu:
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
