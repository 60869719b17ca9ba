"""Where discord.py talks to: real Discord, an HTTP proxy in front of it, or the local emulator.

discord.py keeps both addresses as class attributes (``Route.BASE`` for REST, including webhooks and
interaction follow-ups, and ``DiscordWebSocket.DEFAULT_GATEWAY``), so they are process-wide.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import discord.gateway
import discord.http
import yarl

DISCORD_API_BASE = "https://discord.com/api/v10"
DISCORD_GATEWAY_URL = "wss://gateway.discord.gg/"


def point_discord_at(api_base: str = DISCORD_API_BASE, gateway_url: str = DISCORD_GATEWAY_URL) -> None:
    """Send every REST call to ``api_base`` and open gateway sockets on ``gateway_url``."""
    discord.http.Route.BASE = api_base.rstrip("/")
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)


def current_endpoints() -> tuple[str, str]:
    return discord.http.Route.BASE, str(discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY)


@contextmanager
def restoring_endpoints() -> Iterator[None]:
    """Put discord.py's endpoints back as they were when the block ends (tests, benchmarks)."""
    previous = current_endpoints()
    try:
        yield
    finally:
        point_discord_at(*previous)
