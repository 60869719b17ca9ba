"""Fixtures of the community tests: the real CometBot, logged in to the emulator, on a real SQLite file.

``community`` starts a bot (Japanese by default) and yields a :class:`Harness`; ``community_factory``
lets a test start bots with other settings (English, a tiny anti-spam threshold, a read-only store)
or restart one on the same database file.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest_asyncio
from community_support import EXTENSIONS, Harness
from prometheus_client import CollectorRegistry

from comet.core.bot import CometBot
from comet.core.config import Settings
from comet.core.storage import Store
from comet.core.telemetry import Telemetry
from discord_emulator import Emulator
from discord_emulator.testing.client import TEST_TOKEN, fast_ready, start_client, stop_client

Factory = Callable[..., Awaitable[Harness]]


@pytest_asyncio.fixture
async def community_factory(emulator: Emulator, tmp_path: Path) -> AsyncIterator[Factory]:
    started: list[tuple[CometBot, Any, Store]] = []

    async def start(
        *,
        locale: str = "ja",
        db_path: Path | None = None,
        store: Store | None = None,
        busy_timeout: float = 0.2,
        **overrides: Any,
    ) -> Harness:
        # Tests send commands quickly; only the anti-spam tests want the rule to bite.
        overrides.setdefault("antispam_messages", 1000)
        path = db_path or tmp_path / "comet.db"
        settings = Settings(
            token=TEST_TOKEN,
            discord_api_base=emulator.api_base,
            discord_gateway_url=emulator.gateway_url,
            locale=locale,
            database_path=str(path),
            extensions=EXTENSIONS,
            **overrides,
        )
        registry = CollectorRegistry()
        telemetry = Telemetry.create(registry, settings)
        if store is None:
            store = await Store.open(path, registry=registry, busy_timeout=busy_timeout)
        bot = CometBot(settings, telemetry, store)
        fast_ready(bot)
        task = await start_client(bot, emulator)
        started.append((bot, task, store))
        return Harness(emulator, bot, store, registry, path)

    yield start
    for bot, task, store in reversed(started):
        await stop_client(bot, task)
        await store.close()


@pytest_asyncio.fixture
async def community(community_factory: Factory) -> Harness:
    return await community_factory()
