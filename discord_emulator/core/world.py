"""The emulator's world: users, guilds, channels, roles, members and messages, and the payloads
discord.py reads for them.

Payload builders here produce exactly the JSON shapes discord.py reads (checked against
discord.py 2.7's ``guild.py``, ``member.py``, ``message.py``, ``role.py`` and ``channel.py``).
The world starts with the bot's own user and nothing else: callers seed the guilds they need.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from typing import Any

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
    iso_now,
)

# The bot's user (and application) id when the caller names none: the id discord.py test helpers and
# examples commonly use, so a token-less bot reads as the same user across runs.
BOT_USER_ID = 123456789


class EmulatorState:
    """Everything the emulated Discord knows. Mutated by REST handlers and the driving helpers."""

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

    # -- payloads ---------------------------------------------------------------------------------
    def guild_payload(self, guild: Guild) -> dict[str, Any]:
        return {
            "id": str(guild.id),
            "name": guild.name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": str(guild.owner_id),
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 1,
            "default_message_notifications": 1,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "premium_progress_bar_enabled": False,
            "preferred_locale": guild.preferred_locale,
            "system_channel_id": str(guild.system_channel_id) if guild.system_channel_id else None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "safety_alerts_channel_id": None,
            "vanity_url_code": None,
            "features": ["COMMUNITY"],
            "roles": [r.payload() for r in guild.roles.values()],
            "emojis": [],
            "stickers": [],
            "max_members": 500000,
        }

    def guild_create_payload(self, guild: Guild, *, with_members: bool) -> dict[str, Any]:
        """GUILD_CREATE: ``member_count`` equals the members sent when the bot has the members intent,
        so discord.py sees the guild as chunked and does not request member chunks."""
        data = self.guild_payload(guild)
        if with_members:
            members = [m.payload(self.users[m.user_id]) for m in guild.members.values()]
        else:
            bot_member = guild.members.get(self.bot.id)
            members = [bot_member.payload(self.bot)] if bot_member else []
        channels = []
        for cid in guild.channel_ids:
            channel_data = self.channels[cid].payload()
            channel_data.pop("guild_id", None)
            channels.append(channel_data)
        bot_member = guild.members.get(self.bot.id)
        data.update(
            unavailable=False,
            member_count=len(guild.members),
            large=len(guild.members) >= 250,
            joined_at=bot_member.joined_at if bot_member else iso_now(),
            members=members,
            channels=channels,
            threads=[],
            voice_states=[],
            presences=[],
            stage_instances=[],
            guild_scheduled_events=[],
            soundboard_sounds=[],
        )
        return data

    def application_payload(self) -> dict[str, Any]:
        owner_id = self.application_owner_id or self.bot.id
        owner = self.users.get(owner_id) or self.bot
        return {
            "id": str(self.application_id),
            "name": self.bot.username,
            "description": "C.O.M.E.T. (local Discord emulator)",
            "icon": None,
            "rpc_origins": [],
            "bot_public": False,
            "bot_require_code_grant": False,
            "owner": owner.payload(),
            "team": None,
            "verify_key": "0" * 64,
            "flags": (1 << 12) | (1 << 14) | (1 << 18),  # members, presence(limited), message content intents
            "tags": [],
            "redirect_uris": [],
            "interactions_endpoint_url": None,
            "approximate_guild_count": len(self.guilds),
            "bot": self.bot.payload(),
        }
