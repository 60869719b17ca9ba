"""The Emulator: one aiohttp server with REST (``/api``), the gateway (``/``, as Discord, and
``/gateway``), the control API (``/_control``) and attachment downloads. This module composes them,
starts and stops the server and builds the world; acting as users is ``drivers.py``
(``ActingAsUsers``), what a test reads and waits for is ``observation.py`` (``Observing``)."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from types import TracebackType

from aiohttp import web

from discord_emulator.core.record import RecordedRequest, new_record
from discord_emulator.core.world import World
from discord_emulator.drivers import ActingAsUsers
from discord_emulator.faults import FaultInjector
from discord_emulator.observation import Observing
from discord_emulator.seeds import Seed
from discord_emulator.transports.gateway import Gateway
from discord_emulator.transports.rest.api import RestApi


class Emulator(ActingAsUsers, Observing):
    """A local Discord for the real discord.py client. See the package docstring for usage."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        record_size: int = 10_000,
        shard_count: int = 1,
        seed: Seed | None = None,
        heartbeat_interval: float = 41.25,
        heartbeat_ack_delay: float = 0.05,
        token: str | None = None,
        interaction_ack_timeout: float | None = 3.0,
        message_limit: int = 1000,
        replay_limit: int = 5000,
        control: bool = True,
    ) -> None:
        if shard_count < 1:
            raise ValueError("shard_count must be >= 1")
        super().__init__()  # Observing's state, the pending waits (ActingAsUsers holds none)
        self.host = host
        self.port = port
        self.shard_count = shard_count
        self.token = token
        self.interaction_ack_timeout = interaction_ack_timeout
        self.world = World(message_limit=message_limit)
        if seed is not None:
            seed(self.world)
        self.world.change_listeners.append(self.notify)
        self.requests: deque[RecordedRequest] = new_record(record_size)
        self.gateway = Gateway(
            self.world,
            heartbeat_interval=heartbeat_interval,
            heartbeat_ack_delay=heartbeat_ack_delay,
            resume_url=lambda: self.resume_gateway_url,
            on_change=self.notify,
            token=token,
            replay_limit=replay_limit,
        )
        self.world.event_listeners.append(self.gateway.publish)
        self.faults = FaultInjector(self.gateway)
        self.rest = RestApi(self)
        self._runner: web.AppRunner | None = None
        self.app = web.Application(client_max_size=64 * 1024 * 1024)
        # Discord serves the gateway at the root (wss://gateway.discord.gg/?v=10&encoding=json);
        # /gateway is this emulator's older address, kept for clients configured with it.
        self.app.router.add_get("/", self._root)
        self.app.router.add_get("/gateway", self.gateway.handle)
        self.app.router.add_get("/resume-gateway", self.gateway.handle)
        self.app.router.add_get("/attachments/{channel_id}/{attachment_id}/{filename}", self._attachment)
        if control:
            from discord_emulator.transports.control import ControlApi

            ControlApi(self).register(self.app)
        self.app.router.add_route("*", "/api/{tail:.*}", self.rest.handle)

    # -- lifecycle ---------------------------------------------------------------------------------
    async def start(self) -> Emulator:
        runner = web.AppRunner(self.app, access_log=None, handle_signals=False, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        await site.start()
        self._runner = runner
        server = site._server
        if self.port == 0 and server is not None:
            sockets = getattr(server, "sockets", None) or []
            self.port = sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        self.world.cancel_announcements()
        await self.gateway.close_all()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self._cancel_waiters()

    async def __aenter__(self) -> Emulator:
        return await self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def api_base(self) -> str:
        return f"{self.url}/api/v10"

    @property
    def gateway_url(self) -> str:
        return f"ws://{self.host}:{self.port}/"

    @property
    def resume_gateway_url(self) -> str:
        return f"ws://{self.host}:{self.port}/resume-gateway"

    # -- world building ----------------------------------------------------------------------------
    def add_guild(
        self,
        name: str = "guild",
        members: int = 0,
        *,
        channels: Iterable[str] = ("general",),
        shard: int | None = None,
        guild_id: int | None = None,
    ) -> int:
        """A guild the bot is in, with ``members`` synthetic members. Returns its id. Announced with
        GUILD_CREATE to connected sessions of its shard. ``shard``: pick an id that lands on this
        shard of ``shard_count`` (``(guild_id >> 22) % shard_count``)."""
        if guild_id is None and shard is not None:
            guild_id = self._id_on_shard(shard)
        return self.world.add_guild(name, members, channels=channels, guild_id=guild_id).id

    def _id_on_shard(self, shard: int) -> int:
        if not 0 <= shard < self.shard_count:
            raise ValueError(f"shard must be in [0, {self.shard_count})")
        candidate = self.world.next_id()
        while (candidate >> 22) % self.shard_count != shard:
            candidate += 1 << 22  # one millisecond later
        self.world.next_id.advance_to(candidate)
        return candidate

    def add_member(
        self,
        guild_id: int,
        user_id: int | None = None,
        name: str | None = None,
        roles: Iterable[int | str] = (),
        *,
        accepts_dms: bool = True,
    ) -> int:
        """A user joins ``guild_id`` (GUILD_MEMBER_ADD). ``roles``: ids or names. Returns the user id."""
        return self.world.add_member(guild_id, user_id, name, roles, accepts_dms=accepts_dms).user_id

    def add_channel(self, guild_id: int, name: str) -> int:
        return self.world.add_text_channel(guild_id, name).id

    def create_webhook(self, channel_id: int, name: str = "alerts") -> tuple[int, str, str]:
        """A channel webhook (as a server admin would make one): (id, token, URL without version).
        The URL has Discord's shape ``{url}/api/webhooks/ID/TOKEN`` (what Alertmanager posts to)."""
        webhook = self.world.new_webhook(channel_id, name)
        return webhook.id, webhook.token, f"{self.url}/api/webhooks/{webhook.id}/{webhook.token}"

    # -- routes of its own ----------------------------------------------------------------------------
    async def _root(self, request: web.Request) -> web.StreamResponse:
        """The gateway websocket on an upgrade request; otherwise where things are, for a person."""
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await self.gateway.handle(request)
        return web.json_response(
            {"emulator": "discord_emulator", "api_base": self.api_base, "gateway_url": self.gateway_url}
        )

    async def _attachment(self, request: web.Request) -> web.Response:
        try:
            key = (int(request.match_info["channel_id"]), int(request.match_info["attachment_id"]))
        except ValueError:
            raise web.HTTPNotFound() from None
        data = self.world.attachment(*key)
        if data is None:
            raise web.HTTPNotFound()
        return web.Response(body=data, content_type="application/octet-stream")


__all__ = ["Emulator"]
