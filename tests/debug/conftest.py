"""Fixtures of the debug-tools tests.

``rest_recorder`` is a tiny stand-in for Discord's REST API (127.0.0.1, port 0) that records every
request's body and headers; it lets the HTTP scrubber be tested with the real discord.py HTTP client
and webhook adapter without a gateway. The end-to-end tests use the project's emulator instead.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web
from debug_support import TOKEN

from comet.core.demo_guild import DEMO, seed_fan_server
from discord_emulator.endpoints import point_discord_at, restoring_endpoints

#: The owner tools alone: fast to start; the reload-under-traffic test loads every extension.
DEBUG_EXTENSIONS = ("comet.features.cogs.debug", "comet.features.cogs.reload")


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class RestRecorder:
    base: str = ""
    requests: list[Recorded] = field(default_factory=list)
    #: path -> number of 429 answers still to give before succeeding
    rate_limit_next: dict[str, int] = field(default_factory=dict)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def bodies(self) -> list[bytes]:
        return [r.body for r in self.requests]


@pytest_asyncio.fixture
async def rest_recorder() -> AsyncIterator[RestRecorder]:
    recorder = RestRecorder()

    async def handle(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        recorder.requests.append(Recorded(request.method, request.path, dict(request.headers), body))
        pending = recorder.rate_limit_next.get(request.path, 0)
        if pending:
            recorder.rate_limit_next[request.path] = pending - 1
            return web.Response(
                body=json.dumps({"message": "You are being rate limited.", "retry_after": 0.01}).encode(),
                status=429,
                headers={
                    "Content-Type": "application/json",
                    "Via": "1.1 google",
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Limit": "5",
                },
            )
        if request.path.endswith("/users/@me"):
            return web.json_response(
                {"id": "123456789", "username": "comet", "discriminator": "0", "avatar": None, "bot": True}
            )
        if request.path.startswith("/api/v10/webhooks/") and request.method == "POST":
            return web.Response(status=204)
        return web.json_response({"ok": True})

    app = web.Application(client_max_size=50 * 1024 * 1024)
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    recorder.base = f"http://127.0.0.1:{port}"
    try:
        with restoring_endpoints():
            point_discord_at(f"{recorder.base}/api/v10", "ws://127.0.0.1:9/")
            yield recorder
    finally:
        await runner.cleanup()


@pytest.fixture
def token() -> str:
    return TOKEN


# -- the real CometBot on the emulator ----------------------------------------------------------


@dataclass
class Harness:
    """A CometBot logged in on the emulator, driven as the demo guild's members would."""

    emu: Any
    bot: Any
    settings: Any
    log_path: Path

    @property
    def metrics(self) -> Any:
        return self.bot.telemetry.metrics

    def invocations(self, command: str, outcome: str) -> float:
        return float(self.metrics.debug_invocations.labels(command, outcome)._value.get())

    async def wait_invocations(
        self, command: str, outcome: str, expected: float, within: float = 5.0
    ) -> None:
        """Wait until the counter reaches ``expected`` (commands record after their last reply)."""
        try:
            await self.emu.wait_for(lambda: self.invocations(command, outcome) >= expected, timeout=within)
        except TimeoutError:
            pass  # the assertion below names the value
        assert self.invocations(command, outcome) == expected, (command, outcome)

    def reloads(self, operation: str, outcome: str) -> float:
        return float(self.metrics.extension_reloads.labels(operation, outcome)._value.get())

    async def say(
        self, content: str, *, author: int | None = None, channel: int | None = None
    ) -> dict[str, Any]:
        return await self.emu.send_message(
            channel or DEMO.general_channel_id, author or DEMO.owner_id, content
        )

    async def ask(
        self, content: str, *, author: int | None = None, channel: int | None = None, within: float = 10.0
    ) -> Any:
        """Send ``content`` and return the bot's first reply."""
        channel = channel or DEMO.general_channel_id
        message = await self.say(content, author=author, channel=channel)
        return await self.emu.wait_for_reply(channel, after=message, timeout=within)

    def replies_after(self, message: dict[str, Any], channel: int | None = None) -> list[Any]:
        after = int(message["id"])
        return [m for m in self.emu.bot_messages(channel or DEMO.general_channel_id) if m.id > after]

    async def ask_many(self, content: str, count: int, *, within: float = 10.0) -> list[Any]:
        """Send ``content`` and wait for ``count`` bot messages after it."""
        message = await self.say(content)
        await self.emu.wait_for(lambda: len(self.replies_after(message)) >= count, timeout=within)
        return self.replies_after(message)

    def debug_cog(self) -> Any:
        return self.bot.get_cog("Debug")


@pytest_asyncio.fixture
async def comet(tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[Harness]]]:
    """``harness = await comet(locale="ja", debug_mode=True, **settings)``: CometBot on a fresh emulator."""
    from prometheus_client import CollectorRegistry

    from comet.core.bot import CometBot
    from comet.core.config import Settings
    from comet.core.telemetry import Telemetry
    from discord_emulator import Emulator
    from discord_emulator.testing.client import fast_ready, start_client, stop_client

    started: list[tuple[Any, Any, Any]] = []

    async def start(
        *,
        locale: str = "ja",
        debug_mode: bool = True,
        extensions: tuple[str, ...] = DEBUG_EXTENSIONS,
        **kw: Any,
    ) -> Harness:
        emu = Emulator(seed=seed_fan_server)
        await emu.start()
        settings = Settings(
            token=TOKEN,
            locale=locale,
            debug_mode=debug_mode,
            extensions=extensions,
            sync_commands=False,
            log_path=str(tmp_path / "comet.log"),
            database_path=str(tmp_path / "comet.db"),
            **kw,
        )
        telemetry = Telemetry.create(CollectorRegistry(), settings)
        store = None
        if any(
            e in extensions
            for e in (
                "comet.features.cogs.community",
                "comet.features.cogs.moderation",
                "comet.features.cogs.omikuji",
            )
        ):
            from comet.core.storage import Store

            store = await Store.open(settings.database_path)
        bot = CometBot(settings, telemetry, store)
        fast_ready(bot)
        task = await start_client(bot, emu, token=TOKEN)
        started.append((emu, bot, (task, store)))
        return Harness(emu, bot, settings, tmp_path / "comet.log")

    with restoring_endpoints():
        try:
            yield start
        finally:
            for emu, bot, (task, store) in reversed(started):
                await stop_client(bot, task)
                if store is not None:
                    await store.close()
                await emu.stop()
