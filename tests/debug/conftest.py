"""Fixtures of the debug-tools tests.

``comet`` / ``comet_factory`` are the shared harness (``tests/harness.py``) with the owner's tools in
debug mode, on the emulator.

``rest_recorder`` is a tiny stand-in for Discord's REST API (127.0.0.1, port 0) that records every
request's body and headers; it lets the HTTP scrubber be tested with the real discord.py HTTP client
and webhook adapter without a gateway. The end-to-end tests use the project's emulator instead.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
import pytest_asyncio
from aiohttp import web
from debug_support import TOKEN
from harness import Profile, comet, comet_factory, product_logging_removed  # noqa: F401
from processes import children  # noqa: F401

from comet.core.demo_guild import DEMO
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


# -- the real CometBot on the emulator: the shared harness (tests/harness.py) ---------------------


@pytest.fixture
def comet_profile() -> Profile:
    """The owner's tools in debug mode, logged in with a token-shaped secret, driven by the owner."""
    return Profile(
        settings={
            "token": TOKEN,
            "debug_mode": True,
            "extensions": DEBUG_EXTENSIONS,
            "sync_commands": False,
        },
        author=DEMO.owner_id,
    )
