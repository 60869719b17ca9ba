"""The Emulator: one aiohttp server with REST (``/api``), the gateway (``/``, as Discord, and
``/gateway``), the control API (``/_control``) and attachment downloads, plus the helpers tests use to
act as Discord users."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from aiohttp import web

from discord_emulator.core import messages as msgs
from discord_emulator.core.interactions import (
    APPLICATION_COMMAND,
    AUTOCOMPLETE,
    MESSAGE_COMPONENT,
    InteractionRecord,
    build_interaction,
)
from discord_emulator.core.models import StoredMessage, User
from discord_emulator.core.record import RecordedRequest, new_record, select
from discord_emulator.core.world import World
from discord_emulator.faults import FaultInjector
from discord_emulator.seeds import Seed
from discord_emulator.transports.gateway import (
    Gateway,
    GatewayConnection,
    GatewaySession,
)
from discord_emulator.transports.rest.api import RestApi


@dataclass(frozen=True, slots=True)
class BotMessage:
    """A message as users see it: sent by the bot (incl. interaction responses and followups, edits
    applied) or through a channel webhook."""

    id: int
    channel_id: int
    content: str
    embeds: list[dict[str, Any]]
    files: list[tuple[str, bytes]]
    ephemeral: bool
    reference_id: int | None
    interaction_id: int | None
    webhook_id: int | None
    author_id: int
    components: list[dict[str, Any]]
    edited: bool
    loading: bool

    @classmethod
    def of(cls, message: StoredMessage) -> BotMessage:
        payload = message.payload
        reference = payload.get("message_reference")
        return cls(
            id=message.id,
            channel_id=message.channel_id,
            content=payload.get("content", ""),
            embeds=list(payload.get("embeds", [])),
            files=list(message.files),
            ephemeral=message.ephemeral,
            reference_id=int(reference["message_id"]) if reference else None,
            interaction_id=message.interaction_id,
            webhook_id=message.webhook_id,
            author_id=message.author_id,
            components=list(payload.get("components", [])),
            edited=payload.get("edited_timestamp") is not None,
            loading=message.loading,
        )

    @property
    def text(self) -> str:
        """Content plus embed titles/descriptions/fields: everything a user can read."""
        parts = [self.content]
        for embed in self.embeds:
            parts += [embed.get("title") or "", embed.get("description") or ""]
            for fld in embed.get("fields") or []:
                parts += [fld.get("name") or "", fld.get("value") or ""]
            parts.append((embed.get("footer") or {}).get("text") or "")
        return "\n".join(p for p in parts if p)


class Emulator:
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
        self._waiters: list[tuple[Callable[[], bool], asyncio.Future[None]]] = []
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
        for _, fut in self._waiters:
            if not fut.done():
                fut.cancel()

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

    # -- observation -------------------------------------------------------------------------------
    @property
    def sessions(self) -> list[GatewaySession]:
        return list(self.gateway.sessions.values())

    @property
    def connections(self) -> list[GatewayConnection]:
        return list(self.gateway.connections)

    @property
    def identify_count(self) -> int:
        return self.gateway.identify_count

    @property
    def resume_count(self) -> int:
        return self.gateway.resume_count

    def requests_to(self, route: str | None = None, method: str | None = None) -> list[RecordedRequest]:
        """Recorded REST calls to a templated route (or concrete path) and/or method."""
        return select(self.requests, route=route, method=method)

    def notify(self) -> None:
        """Re-check every ``wait_for`` predicate (called on every state change)."""
        if not self._waiters:
            return
        for predicate, fut in list(self._waiters):
            if fut.done():
                continue
            try:
                ok = predicate()
            except Exception as exc:  # surface predicate bugs to the waiting test
                fut.set_exception(exc)
                continue
            if ok:
                fut.set_result(None)

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Wait until ``predicate()`` is true. Re-checked on every emulator state change (REST call,
        gateway frame, session change) and, for conditions on the bot's side (a listener's list, a
        cache), every 50 ms. Raises ``TimeoutError``."""
        if predicate():
            return
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        entry = (predicate, fut)
        self._waiters.append(entry)
        deadline = loop.time() + timeout
        try:
            while not fut.done():
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise TimeoutError(f"emulator: condition not met within {timeout}s")
                await asyncio.wait({fut}, timeout=min(remaining, 0.05))
                if not fut.done() and predicate():
                    return
            fut.result()
        finally:
            self._waiters.remove(entry)
            if not fut.done():
                fut.cancel()

    def bot_messages(self, channel_id: int) -> list[BotMessage]:
        channel = self.world.channels.get(channel_id)
        if channel is None:
            return []
        bot_id = self.world.bot.id
        return [
            BotMessage.of(m)
            for m in channel.messages.values()
            if m.author_id == bot_id or m.webhook_id is not None
        ]

    def messages(self, channel_id: int) -> list[StoredMessage]:
        """Every message of a channel (users' and bot's), oldest first."""
        channel = self.world.channels.get(channel_id)
        return list(channel.messages.values()) if channel else []

    async def wait_for_reply(
        self,
        channel_id: int,
        *,
        after: Any = None,
        timeout: float = 5.0,  # noqa: ASYNC109 (the contract's signature)
    ) -> BotMessage:
        """The first bot message in ``channel_id`` answering ``after``.

        ``after``: a message dict / id (first bot message newer than it), an interaction dict (its
        response or a followup, once no longer "thinking…"), or ``None`` (newer than anything now).
        """
        channel = self.world.channels.get(channel_id)
        if channel is None:
            raise KeyError(f"unknown channel {channel_id}")
        bot_id = self.world.bot.id
        interaction_id: int | None = None
        after_id = 0
        if isinstance(after, dict) and "token" in after and "application_id" in after:
            interaction_id = int(after["id"])
        elif isinstance(after, dict):
            after_id = int(after["id"])
        elif isinstance(after, int):
            after_id = after
        elif after is None:
            after_id = channel.last_message_id or 0
        else:
            after_id = int(after.id)
        found: list[StoredMessage] = []

        def check() -> bool:
            candidate: StoredMessage | None = None
            floor = interaction_id if interaction_id is not None else after_id
            for message in reversed(channel.messages.values()):
                if message.id <= floor:  # responses are always newer than what they answer
                    break
                if message.loading:
                    continue
                if interaction_id is not None:
                    if message.interaction_id == interaction_id:
                        candidate = message
                elif message.author_id == bot_id or message.webhook_id is not None:
                    candidate = message
            if candidate is None:
                return False
            found.append(candidate)
            return True

        await self.wait_for(check, timeout)
        return BotMessage.of(found[-1])

    # -- acting as users ---------------------------------------------------------------------------
    def _user(self, user_id: int) -> User:
        user = self.world.users.get(user_id)
        if user is None:
            raise KeyError(f"unknown user {user_id}")
        return user

    async def send_message(
        self,
        channel_id: int,
        author_id: int,
        content: str,
        *,
        embeds: list[dict[str, Any]] | None = None,
        files: Iterable[tuple[str, bytes]] = (),
        reply_to: int | None = None,
    ) -> dict[str, Any]:
        """A member (or DM user) sends a message: stored, then MESSAGE_CREATE. Returns the message."""
        channel = self.world.channels.get(channel_id)
        if channel is None:
            raise KeyError(f"unknown channel {channel_id}")
        author = self._user(author_id)
        self._check_can_talk(channel_id, author_id)
        file_list = list(files)
        body: dict[str, Any] = {"content": content, "embeds": embeds or []}
        if reply_to is not None:
            body["message_reference"] = {"message_id": reply_to, "channel_id": channel_id}
        attachments = msgs.attachment_payloads(self.world, self.url, channel_id, file_list)
        message = msgs.build_message(
            self.world, channel, author, body, attachments=attachments, files=file_list
        )
        await self.world.post_message(message)
        self.notify()
        return message.payload

    def _check_can_talk(self, channel_id: int, author_id: int) -> None:
        """Discord refuses messages and commands from non-members and from timed-out members."""
        guild = self.world.guild_of(channel_id)
        if guild is None:
            return
        if author_id not in guild.members:
            raise ValueError(f"user {author_id} is not a member of guild {guild.id}")
        if self.world.is_timed_out(guild, author_id):
            raise PermissionError(f"user {author_id} is timed out in guild {guild.id}")

    async def add_reaction(self, channel_id: int, message_id: int, user_id: int, emoji: str) -> None:
        """A member reacts (MESSAGE_REACTION_ADD). ``emoji``: unicode, or ``name:id`` for custom."""
        channel = self.world.channels[channel_id]
        message = channel.messages[message_id]
        self._user(user_id)
        if not msgs.is_reaction_emoji(emoji):  # what Discord's client lets a member pick
            raise ValueError(f"{emoji!r} is not an emoji (a unicode emoji, or name:id for a custom one)")
        await self.world.react(channel, message, emoji, user_id)
        self.notify()

    def open_dm(self, user_id: int) -> int:
        """The DM channel id between the bot and ``user_id`` (users DM the bot through it)."""
        self._user(user_id)
        return self.world.open_dm(user_id).id

    async def _interact(self, record: InteractionRecord) -> None:
        await self.world.interaction_created(record)
        self.notify()

    def _interaction_record(
        self, channel_id: int, author_id: int, name: str, **fields: Any
    ) -> InteractionRecord:
        """An interaction by ``author_id`` in ``channel_id``; ``fields``: build_interaction's keywords."""
        channel = self.world.channels.get(channel_id)
        if channel is None:
            raise KeyError(f"unknown channel {channel_id}")
        user = self._user(author_id)
        self._check_can_talk(channel_id, author_id)
        return build_interaction(
            self.world, channel, user, name, command_ids=self.world.command_ids, **fields
        )

    async def send_slash(
        self,
        channel_id: int,
        author_id: int,
        name: str,
        options: dict[str, Any] | None = None,
        subcommand: str | None = None,
        *,
        guild_command: bool | None = None,
        locale: str = "ja",
    ) -> dict[str, Any]:
        """A member runs ``/name [subcommand] options``: INTERACTION_CREATE type 2. Returns the
        interaction payload (pass it as ``after=`` to ``wait_for_reply``). ``subcommand`` may be
        ``"group sub"``. ``guild_command`` forces/omits ``data.guild_id`` (default: from the sync)."""
        record = self._interaction_record(
            channel_id,
            author_id,
            name,
            interaction_type=APPLICATION_COMMAND,
            options=options,
            subcommand=subcommand,
            guild_command=guild_command,
            locale=locale,
        )
        await self._interact(record)
        return record.payload

    async def send_autocomplete(
        self,
        channel_id: int,
        author_id: int,
        name: str,
        *,
        focused: str,
        value: Any = "",
        options: dict[str, Any] | None = None,
        subcommand: str | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109
        guild_command: bool | None = None,
    ) -> list[dict[str, Any]]:
        """Type into option ``focused``: INTERACTION_CREATE type 4; returns the bot's choices
        (callback type 8)."""
        all_options = dict(options or {})
        all_options[focused] = value
        record = self._interaction_record(
            channel_id,
            author_id,
            name,
            interaction_type=AUTOCOMPLETE,
            options=all_options,
            subcommand=subcommand,
            focused=focused,
            guild_command=guild_command,
        )
        record.choices = asyncio.get_running_loop().create_future()
        await self._interact(record)
        try:
            return await asyncio.wait_for(record.choices, timeout)
        except TimeoutError:
            raise TimeoutError(f"emulator: no autocomplete answer for /{name} within {timeout}s") from None

    async def click(
        self,
        channel_id: int,
        message_id: int,
        author_id: int,
        custom_id: str,
        *,
        values: list[str] | None = None,
    ) -> dict[str, Any]:
        """A member clicks a button (or picks ``values`` in a string select) on a bot message:
        INTERACTION_CREATE type 3. Returns the interaction (``wait_for_reply(after=...)`` works;
        an UPDATE_MESSAGE answer edits the clicked message in place)."""
        channel = self.world.channels.get(channel_id)
        stored = channel.messages.get(message_id) if channel else None
        if stored is None:
            raise KeyError(f"unknown message {message_id} in channel {channel_id}")
        component: dict[str, Any] = {"custom_id": custom_id, "component_type": 2}
        if values is not None:
            component.update(component_type=3, values=list(values))
        record = self._interaction_record(
            channel_id,
            author_id,
            custom_id,
            interaction_type=MESSAGE_COMPONENT,
            options=None,
            subcommand=None,
            component=component,
            message=stored.payload,
        )
        await self._interact(record)
        return record.payload

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

    # -- summaries (control API, debugging) --------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "shard_count": self.shard_count,
            "guilds": [
                {
                    "id": str(g.id),
                    "name": g.name,
                    "member_count": len(g.members),
                    "channels": [{"id": str(c), "name": self.world.channels[c].name} for c in g.channel_ids],
                    "roles": [{"id": str(r.id), "name": r.name} for r in g.roles.values()],
                }
                for g in self.world.guilds.values()
            ],
            "sessions": self.gateway.describe(),
            "connections": len(self.gateway.connections),
            "identify_count": self.identify_count,
            "resume_count": self.resume_count,
            "requests_recorded": len(self.requests),
            "time": time.time(),
        }


__all__ = ["BotMessage", "Emulator"]
