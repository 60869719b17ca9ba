"""Fixtures of the bot's tests (helpers live in bot_support.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from bot_support import CometEnv, start_comet

from discord_emulator import Emulator
from discord_emulator.testing.client import stop_client


@pytest_asyncio.fixture
async def comet(emulator: Emulator) -> AsyncIterator[CometEnv]:
    env, task = await start_comet(emulator)
    try:
        yield env
    finally:
        await stop_client(env.bot, task)


@pytest_asyncio.fixture
async def comet_en(emulator: Emulator) -> AsyncIterator[CometEnv]:
    env, task = await start_comet(emulator, locale="en")
    try:
        yield env
    finally:
        await stop_client(env.bot, task)


@pytest_asyncio.fixture(params=["ja", "en"])
async def localized(request: pytest.FixtureRequest, emulator: Emulator) -> AsyncIterator[CometEnv]:
    """The bot in each reply language."""
    env, task = await start_comet(emulator, locale=request.param)
    try:
        yield env
    finally:
        await stop_client(env.bot, task)
