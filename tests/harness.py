"""The one test harness: the product started the way ``comet run`` starts it, on the emulator.

``comet_factory(**overrides)`` builds :class:`~comet.core.config.Settings` from the test area's
profile (``comet_profile``, overridden in a conftest.py) and ``overrides``, pointed at the
``emulator`` fixture (its token, REST base and gateway URL), a database and a log file under the
test's ``tmp_path`` and the metrics server on port 0; then it calls the launcher's
:func:`~comet.core.launcher.start_runtime` (settings → telemetry → logging → store → bot → metrics
server), logs the bot in and waits until it is ready. Every harness it started is closed through
:meth:`~comet.core.launcher.Runtime.close` (drain, flush, bot, metrics server, store) when the test
ends. ``comet`` is a harness with the profile's settings alone.

Import the fixtures into a conftest.py: ``from harness import comet, comet_factory, ...``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from prometheus_client import CollectorRegistry, generate_latest
from waiting import wait_until

from comet.core.bot import CometBot
from comet.core.config import Settings
from comet.core.demo_guild import DEMO
from comet.core.launcher import Runtime, start_runtime
from comet.core.telemetry import Telemetry
from discord_emulator import BotMessage, Emulator
from discord_emulator.testing.client import TEST_TOKEN, fast_ready
from instrumentation.logging import remove_debug_logging
from instrumentation.metrics import Metrics

#: How long a bot may take to log in and load its guilds, and a member to wait for an answer.
READY_TIMEOUT = 30.0
REPLY_TIMEOUT = 10.0


@dataclass(frozen=True)
class Profile:
    """What every bot of a test area starts with: Settings overrides, and who posts by default."""

    settings: Mapping[str, Any] = field(default_factory=dict)
    author: int = DEMO.member_ids[0]


@dataclass
class Harness:
    """A running product (``runtime``) logged in to ``emulator``, driven as the demo guild's members."""

    runtime: Runtime
    emulator: Emulator
    #: Who :meth:`say`, :meth:`ask` and :meth:`slash` post as when not told.
    author: int = DEMO.member_ids[0]

    # -- what the launcher built -------------------------------------------------------------------

    @property
    def bot(self) -> CometBot:
        return self.runtime.bot

    @property
    def settings(self) -> Settings:
        return self.runtime.settings

    @property
    def store(self) -> Any:
        return self.runtime.store

    @property
    def telemetry(self) -> Telemetry:
        return self.runtime.telemetry

    @property
    def registry(self) -> CollectorRegistry:
        return self.runtime.telemetry.registry

    @property
    def metrics(self) -> Metrics:
        return self.runtime.telemetry.metrics

    @property
    def log_path(self) -> Path:
        return Path(self.settings.log_path)

    async def close(self) -> None:
        """Stop the product as SIGTERM does (:meth:`Runtime.close`); safe to call twice."""
        await self.runtime.close()

    # -- metrics: through the registry, as a scrape reads them ---------------------------------------

    def sample(self, name: str, **labels: str) -> float:
        """A sample's value as a scrape would show it now (0.0 for a series that does not exist).

        The instrumentation writes its counts in batches (every 0.1 s): the pending batch is written
        first, as it would be by the time of a scrape.
        """
        self.bot.flush_metrics()
        value = self.registry.get_sample_value(name, labels)
        return 0.0 if value is None else value

    def registry_text(self) -> str:
        """The exposition text of the registry (what /metrics serves), pending batch written."""
        self.bot.flush_metrics()
        return generate_latest(self.registry).decode()

    async def scrape(self, endpoint: str = "metrics") -> tuple[int, str]:
        """GET one of the runtime's real endpoints (metrics, healthz, readyz): status and body."""
        async with aiohttp.ClientSession() as http, http.get(self.runtime.endpoints()[endpoint]) as resp:
            return resp.status, await resp.text()

    def commands(self, command: str, kind: str, outcome: str) -> float:
        return self.sample("comet_commands_total", command=command, kind=kind, outcome=outcome)

    def invocations(self, command: str, outcome: str) -> float:
        """``comet_debug_invocations_total``: the owner tools' uses."""
        return self.sample("comet_debug_invocations_total", command=command, outcome=outcome)

    def reloads(self, operation: str, outcome: str) -> float:
        return self.sample("comet_extension_reloads_total", operation=operation, outcome=outcome)

    # -- members -------------------------------------------------------------------------------------

    async def say(self, content: str, *, author: int | None = None, channel: int | None = None) -> Any:
        """Post ``content`` as a member (the author by default); the posted message (a dict)."""
        return await self.emulator.send_message(
            channel or DEMO.general_channel_id, author or self.author, content
        )

    async def ask(
        self,
        content: str,
        *,
        author: int | None = None,
        channel: int | None = None,
        timeout: float = REPLY_TIMEOUT,  # noqa: ASYNC109
    ) -> BotMessage:
        """Post ``content`` and return the bot's answer as users see it."""
        channel = channel or DEMO.general_channel_id
        message = await self.say(content, author=author, channel=channel)
        return await self.emulator.wait_for_reply(channel, after=message, timeout=timeout)

    async def slash(
        self,
        name: str,
        options: dict[str, Any] | None = None,
        *,
        author: int | None = None,
        channel: int | None = None,
        subcommand: str | None = None,
        timeout: float = REPLY_TIMEOUT,  # noqa: ASYNC109
    ) -> BotMessage:
        """Use the slash command ``name`` and return the bot's answer (response or follow-up)."""
        channel = channel or DEMO.general_channel_id
        interaction = await self.emulator.send_slash(
            channel, author or self.author, name, options or {}, subcommand=subcommand
        )
        return await self.emulator.wait_for_reply(channel, after=interaction, timeout=timeout)

    def replies_after(self, message: Mapping[str, Any], channel: int | None = None) -> list[BotMessage]:
        """Every bot message in ``channel`` newer than ``message``."""
        after = int(message["id"])
        return [m for m in self.emulator.bot_messages(channel or DEMO.general_channel_id) if m.id > after]

    async def ask_many(
        self,
        content: str,
        count: int,
        *,
        channel: int | None = None,
        timeout: float = REPLY_TIMEOUT,  # noqa: ASYNC109
    ) -> list[BotMessage]:
        """Post ``content`` and return the bot's messages after it, once there are ``count``."""
        message = await self.say(content, channel=channel)
        await wait_until(lambda: len(self.replies_after(message, channel)) >= count, timeout)
        return self.replies_after(message, channel)

    def mod_log(self) -> list[str]:
        """What the bot wrote in the moderation log channel, oldest first."""
        return [m.content for m in self.emulator.bot_messages(DEMO.mod_log_channel_id)]

    def member_role_names(self, user_id: int) -> set[str]:
        guild = self.emulator.world.guilds[DEMO.guild_id]
        return {guild.roles[r].name for r in guild.members[user_id].roles if r in guild.roles}


#: ``await comet_factory(locale="en", ...)``: a started :class:`Harness` (see the module's text).
CometFactory = Callable[..., Awaitable[Harness]]


async def connected(harness: Harness, timeout: float = READY_TIMEOUT) -> None:  # noqa: ASYNC109
    """Until the bot is logged in, every guild loaded and ``comet_ready`` 1; the bot's own error if
    it stops first (a refused token, an unreachable gateway)."""
    bot, task = harness.bot, harness.runtime.bot_task
    assert task is not None, "the bot was not started"

    def ready() -> bool:
        if task.done():
            task.result()  # raises the bot's error
            raise AssertionError("the bot stopped before it was ready")
        if not bot.is_ready() or any(guild.unavailable for guild in bot.guilds):
            return False
        return harness.sample("comet_ready") == 1.0

    await wait_until(ready, timeout, what="the bot ready on the emulator")


@pytest.fixture
def comet_profile() -> Profile:
    """The settings every bot of the test area starts with; a conftest.py overrides it."""
    return Profile()


@pytest_asyncio.fixture
async def comet_factory(
    emulator: Emulator, tmp_path: Path, comet_profile: Profile
) -> AsyncIterator[CometFactory]:
    started: list[Harness] = []

    async def start(
        *,
        store: Any = None,
        registry: CollectorRegistry | None = None,
        connect: bool = True,
        configure_logging: bool = True,
        author: int | None = None,
        **overrides: Any,
    ) -> Harness:
        """Start the product with ``overrides`` over the profile's settings.

        ``store``/``registry``: an opened store (and the registry its timings go to) instead of the
        one the launcher opens; ``connect=False``: everything but the Discord connection (as
        ``start_runtime`` leaves it); ``configure_logging=False``: the test installs the product's
        logging itself.
        """
        values: dict[str, Any] = {
            "token": TEST_TOKEN,
            "discord_api_base": emulator.api_base,
            "discord_gateway_url": emulator.gateway_url,
            "database_path": str(tmp_path / "comet.db"),
            "log_path": str(tmp_path / "comet.log"),
            "metrics_port": 0,
        }
        values.update(comet_profile.settings)
        values.update(overrides)
        runtime = await start_runtime(
            Settings(**values),
            registry=registry if registry is not None else CollectorRegistry(),
            configure_logging=configure_logging,
            store=store,
        )
        harness = Harness(runtime, emulator, author or comet_profile.author)
        started.append(harness)
        if connect:
            fast_ready(runtime.bot)
            runtime.start_bot(runtime.settings.token)
            await connected(harness)
        return harness

    try:
        yield start
    finally:
        for harness in reversed(started):
            await harness.close()


@pytest_asyncio.fixture
async def comet(comet_factory: CometFactory) -> Harness:
    """The product with the test area's settings, logged in and ready."""
    return await comet_factory()


@pytest.fixture(autouse=True)
def product_logging_removed() -> Iterator[None]:
    """The launcher installs the product's log handlers on the root logger (a process-wide thing):
    after the test they are removed and the levels it set are put back, whatever the order in which
    the other fixtures (``caplog`` among them) were torn down."""
    levels = {name: logging.getLogger(name).level for name in ("", "discord")}
    yield
    remove_debug_logging()
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)
