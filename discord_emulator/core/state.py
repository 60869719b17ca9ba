"""The world's data: users, guilds, channels, roles, members and messages, the queries on them, and
the listeners told of every change. The world starts with the bot's own user and nothing else:
callers seed the guilds they need.
"""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Callable, Iterable
from typing import Any

from discord_emulator.core.events import Event, EventListener
from discord_emulator.core.models import (
    DM,
    GUILD_TEXT,
    Channel,
    Guild,
    Member,
    Perm,
    Role,
    SnowflakeGenerator,
    StoredMessage,
    User,
    Webhook,
)

# The bot's user (and application) id when the caller names none: the id discord.py test helpers and
# examples commonly use, so a token-less bot reads as the same user across runs.
BOT_USER_ID = 123456789


class WorldState:
    """The world's data, its queries and its listeners; ``World`` adds what happens in it."""

    def __init__(
        self, *, bot_user_id: int = BOT_USER_ID, bot_name: str = "bot", message_limit: int = 1000
    ) -> None:
        self.next_id = SnowflakeGenerator()
        self.message_limit = message_limit
        self.users: dict[int, User] = {}
        self.guilds: dict[int, Guild] = {}
        self.channels: dict[int, Channel] = {}
        self.dm_channel_by_user: dict[int, int] = {}
        self.webhooks: dict[int, Webhook] = {}
        self.global_commands: dict[str, dict[str, Any]] = {}  # name -> command payload
        self.guild_commands: dict[int, dict[str, dict[str, Any]]] = {}
        self.audit_log: list[dict[str, Any]] = []
        self.bot = self.add_user(bot_user_id, bot_name, bot=True)
        self.application_id = bot_user_id
        self.application_owner_id: int | None = None
        # Told of every event (the gateway transport frames and sends them to its sessions).
        self.event_listeners: list[EventListener] = []
        # Called with every stored message (users', the bot's, webhooks'); keep them cheap.
        self.message_listeners: list[Callable[[StoredMessage], None]] = []
        # Called after every change (waiters re-check their conditions).
        self.change_listeners: list[Callable[[], None]] = []
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- listeners ---------------------------------------------------------------------------------
    async def emit(
        self,
        name: str,
        data: dict[str, Any],
        *,
        guild_id: int | None = None,
        intent: int = 0,
        content_gated: bool = False,
    ) -> None:
        """Tell every event listener, in order, and wait until each has handled it."""
        event = Event(name, data, guild_id, intent, content_gated)
        for listener in self.event_listeners:
            await listener(event)

    def announce(self, name: str, data: dict[str, Any], *, guild_id: int | None, intent: int = 0) -> None:
        """``emit`` from synchronous code (world building): in a task, or dropped before the loop
        runs (nobody can be listening yet: the world is being built before the server starts)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        task = loop.create_task(self.emit(name, data, guild_id=guild_id, intent=intent))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def changed(self) -> None:
        for listener in self.change_listeners:
            listener()

    def cancel_announcements(self) -> None:
        for task in list(self._tasks):
            task.cancel()

    # -- building ---------------------------------------------------------------------------------
    def add_user(
        self,
        user_id: int | None = None,
        name: str | None = None,
        *,
        bot: bool = False,
        accepts_dms: bool = True,
    ) -> User:
        uid = user_id if user_id is not None else self.next_id()
        user = User(id=uid, username=name or f"user{uid % 100000}", bot=bot, accepts_dms=accepts_dms)
        self.users[uid] = user
        return user

    def add_channel(
        self,
        guild_id: int,
        name: str,
        *,
        channel_id: int | None = None,
        type: int = GUILD_TEXT,
        topic: str | None = None,
    ) -> Channel:
        guild = self.guilds[guild_id]
        cid = channel_id if channel_id is not None else self.next_id()
        channel = Channel(
            id=cid, type=type, name=name, guild_id=guild_id, position=len(guild.channel_ids), topic=topic
        )
        self.channels[cid] = channel
        guild.channel_ids.append(cid)
        return channel

    def add_role(
        self, guild_id: int, name: str, *, permissions: int, role_id: int | None = None, **extra: Any
    ) -> Role:
        guild = self.guilds[guild_id]
        rid = role_id if role_id is not None else self.next_id()
        position = extra.pop("position", max((r.position for r in guild.roles.values()), default=-1) + 1)
        role = Role(id=rid, guild_id=guild_id, name=name, permissions=permissions, position=position, **extra)
        guild.roles[rid] = role
        return role

    def create_guild(
        self,
        name: str,
        *,
        guild_id: int | None = None,
        owner_id: int | None = None,
        channels: Iterable[str] = ("general",),
        everyone_permissions: int = Perm.EVERYONE,
    ) -> Guild:
        gid = guild_id if guild_id is not None else self.next_id()
        if owner_id is None:
            owner_id = self.add_user(name=f"owner-{name}"[:32]).id
        guild = Guild(id=gid, name=name, owner_id=owner_id)
        self.guilds[gid] = guild
        self.add_role(gid, "@everyone", permissions=everyone_permissions, role_id=gid, position=0)
        for channel_name in channels:
            self.add_channel(gid, channel_name)
        guild.system_channel_id = guild.channel_ids[0] if guild.channel_ids else None
        bot_role = self.add_role(gid, self.bot.username, permissions=Perm.BOT, managed=True, position=100)
        self.join(gid, owner_id)
        self.join(gid, self.bot.id, roles=[bot_role.id])
        return guild

    def join(self, guild_id: int, user_id: int, *, roles: Iterable[int] = ()) -> Member:
        member = Member(guild_id=guild_id, user_id=user_id, roles=list(roles))
        self.guilds[guild_id].members[user_id] = member
        return member

    # -- queries ----------------------------------------------------------------------------------
    @property
    def roles(self) -> dict[int, Role]:
        """Every role of every guild, by id."""
        return {rid: role for guild in self.guilds.values() for rid, role in guild.roles.items()}

    @property
    def members(self) -> dict[tuple[int, int], Member]:
        """Every membership, by (guild id, user id)."""
        return {(gid, uid): m for gid, guild in self.guilds.items() for uid, m in guild.members.items()}

    def is_timed_out(self, guild: Guild, user_id: int) -> bool:
        member = guild.members.get(user_id)
        until = member.communication_disabled_until if member else None
        if not until:
            return False
        when = datetime.datetime.fromisoformat(until)
        if when.tzinfo is None:
            when = when.replace(tzinfo=datetime.UTC)
        return when > datetime.datetime.now(datetime.UTC)

    def guild_of(self, channel_id: int) -> Guild | None:
        channel = self.channels.get(channel_id)
        if channel is None or channel.guild_id is None:
            return None
        return self.guilds.get(channel.guild_id)

    def member_permissions(self, guild: Guild, user_id: int) -> int:
        if user_id == guild.owner_id:
            return Perm.ALL
        member = guild.members.get(user_id)
        if member is None:
            return 0
        perms = guild.everyone_role.permissions
        for rid in member.roles:
            role = guild.roles.get(rid)
            if role is not None:
                perms |= role.permissions
        if perms & Perm.ADMINISTRATOR:
            return Perm.ALL
        return perms

    def top_role_position(self, guild: Guild, user_id: int) -> int:
        if user_id == guild.owner_id:
            return 1 << 30
        member = guild.members.get(user_id)
        if member is None:
            return 0
        return max((guild.roles[r].position for r in member.roles if r in guild.roles), default=0)

    def open_dm(self, user_id: int) -> Channel:
        """The DM channel between the bot and ``user_id`` (created on first use, like Discord)."""
        cid = self.dm_channel_by_user.get(user_id)
        if cid is not None:
            return self.channels[cid]
        channel = Channel(id=self.next_id(), type=DM, name=None, recipient_ids=[user_id])
        self.channels[channel.id] = channel
        self.dm_channel_by_user[user_id] = channel.id
        return channel

    def store_message(self, message: StoredMessage) -> None:
        channel = self.channels[message.channel_id]
        channel.messages[message.id] = message
        channel.last_message_id = message.id
        if len(channel.messages) > self.message_limit:
            channel.messages.popitem(last=False)
