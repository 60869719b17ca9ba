"""Fixtures for the bot's tests: a real CometBot (real discord.py) logged in to the emulator."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio
from prometheus_client import CollectorRegistry

from comet.bot import CometBot
from comet.config import Settings
from comet.emulator import DEMO, Emulator
from comet.emulator.client import TEST_TOKEN, fast_ready, start_client, stop_client
from comet.telemetry import Telemetry

#: The bot's extensions in these tests: the ones this area owns plus a test-only cog of failure paths.
TEST_EXTENSIONS = ("comet.cogs.monitoring", "comet.cogs.demo", "bot_failures_ext")


@dataclass
class CometEnv:
    emulator: Emulator
    bot: CometBot
    registry: CollectorRegistry
    telemetry: Telemetry

    def sample(self, name: str, **labels: str) -> float:
        value = self.registry.get_sample_value(name, labels)
        return 0.0 if value is None else value

    def registry_text(self) -> str:
        from prometheus_client import generate_latest

        return generate_latest(self.registry).decode()

    def commands(self, command: str, kind: str, outcome: str) -> float:
        return self.sample("comet_commands_total", command=command, kind=kind, outcome=outcome)

    async def until(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Wait for a condition on the bot's side (metrics), yielding to the loop between checks."""
        await wait_until(predicate, timeout)

    async def ask(self, content: str, *, author: int | None = None, channel: int | None = None) -> Any:
        """Send ``content`` as a member and return the bot's reply as users see it."""
        channel = channel or DEMO.general_channel_id
        msg = await self.emulator.send_message(channel, author or DEMO.member_ids[0], content)
        return await self.emulator.wait_for_reply(channel, after=msg, timeout=5)

    async def slash(
        self,
        name: str,
        options: dict[str, Any] | None = None,
        *,
        author: int | None = None,
        channel: int | None = None,
        subcommand: str | None = None,
    ) -> Any:
        channel = channel or DEMO.general_channel_id
        inter = await self.emulator.send_slash(
            channel, author or DEMO.member_ids[0], name, options or {}, subcommand=subcommand
        )
        return await self.emulator.wait_for_reply(channel, after=inter, timeout=5)


async def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.005)  # yield to the bot's tasks; the condition is re-checked, not assumed


def make_settings(emulator: Emulator, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "token": TEST_TOKEN,
        "extensions": TEST_EXTENSIONS,
        "discord_api_base": emulator.api_base,
        "discord_gateway_url": emulator.gateway_url,
        "log_path": None,
    }
    values.update(overrides)
    return Settings(**values)


async def start_comet(emulator: Emulator, **overrides: Any) -> tuple[CometEnv, asyncio.Task[None]]:
    settings = make_settings(emulator, **overrides)
    registry = CollectorRegistry()
    telemetry = Telemetry.create(registry, settings)
    bot = CometBot(settings, telemetry)
    fast_ready(bot)
    task = await start_client(bot, emulator, token=TEST_TOKEN)
    env = CometEnv(emulator=emulator, bot=bot, registry=registry, telemetry=telemetry)
    # Connected and every shard up (the listeners run as tasks right after READY).
    await wait_until(lambda: env.sample("comet_ready") == 1.0)
    return env, task


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
