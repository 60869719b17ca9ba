"""The emulator's world: users, guilds, channels, roles, members and messages, as plain data.

Payload builders here produce exactly the JSON shapes discord.py reads (checked against
discord.py 2.7's ``guild.py``, ``member.py``, ``message.py``, ``role.py`` and ``channel.py``).
Ids are real snowflakes (``id >> 22`` is milliseconds since the Discord epoch), so sharding
math (``(guild_id >> 22) % shard_count``) and message ordering by id behave like Discord's.
"""

from __future__ import annotations

import datetime
import itertools
import time
import types
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

DISCORD_EPOCH_MS = 1_420_070_400_000

# Channel types (Discord API).
GUILD_TEXT = 0
DM = 1
GUILD_VOICE = 2
GUILD_CATEGORY = 4

# Message flags.
FLAG_EPHEMERAL = 1 << 6
FLAG_LOADING = 1 << 7


class Perm:
    """Permission bits used by the emulator (Discord API values)."""

    CREATE_INSTANT_INVITE = 1 << 0
    KICK_MEMBERS = 1 << 1
    BAN_MEMBERS = 1 << 2
    ADMINISTRATOR = 1 << 3
    MANAGE_CHANNELS = 1 << 4
    MANAGE_GUILD = 1 << 5
    ADD_REACTIONS = 1 << 6
    VIEW_AUDIT_LOG = 1 << 7
    VIEW_CHANNEL = 1 << 10
    SEND_MESSAGES = 1 << 11
    MANAGE_MESSAGES = 1 << 13
    EMBED_LINKS = 1 << 14
    ATTACH_FILES = 1 << 15
    READ_MESSAGE_HISTORY = 1 << 16
    MENTION_EVERYONE = 1 << 17
    USE_EXTERNAL_EMOJIS = 1 << 18
    CHANGE_NICKNAME = 1 << 26
    MANAGE_NICKNAMES = 1 << 27
    MANAGE_ROLES = 1 << 28
    MANAGE_WEBHOOKS = 1 << 29
    USE_APPLICATION_COMMANDS = 1 << 31
    SEND_MESSAGES_IN_THREADS = 1 << 38
    MODERATE_MEMBERS = 1 << 40
    ALL = (1 << 51) - 1

    EVERYONE = (
        CREATE_INSTANT_INVITE
        | ADD_REACTIONS
        | VIEW_CHANNEL
        | SEND_MESSAGES
        | EMBED_LINKS
        | ATTACH_FILES
        | READ_MESSAGE_HISTORY
        | USE_EXTERNAL_EMOJIS
        | CHANGE_NICKNAME
        | USE_APPLICATION_COMMANDS
        | SEND_MESSAGES_IN_THREADS
    )
    MODERATOR = (
        MANAGE_MESSAGES | MODERATE_MEMBERS | KICK_MEMBERS | BAN_MEMBERS | MANAGE_NICKNAMES | VIEW_AUDIT_LOG
    )
    BOT = (
        EVERYONE
        | MANAGE_MESSAGES
        | MODERATE_MEMBERS
        | KICK_MEMBERS
        | BAN_MEMBERS
        | MANAGE_NICKNAMES
        | MANAGE_ROLES
        | MANAGE_WEBHOOKS
        | VIEW_AUDIT_LOG
    )


def snowflake_at(ms_since_unix: int, increment: int = 0) -> int:
    return ((ms_since_unix - DISCORD_EPOCH_MS) << 22) | (increment & 0xFFF)


def snowflake_time(snowflake: int) -> float:
    """Unix time (seconds) encoded in a snowflake."""
    return ((snowflake >> 22) + DISCORD_EPOCH_MS) / 1000.0


class SnowflakeGenerator:
    """Time-based, strictly increasing snowflakes (so newer messages always have larger ids)."""

    def __init__(self) -> None:
        self._last = 0

    def __call__(self) -> int:
        candidate = snowflake_at(int(time.time() * 1000)) | (1 << 17)  # worker 1
        if candidate <= self._last:
            candidate = self._last + 1
        self._last = candidate
        return candidate

    def advance_to(self, snowflake: int) -> None:
        """Never hand out ids at or below ``snowflake`` (one was picked by hand)."""
        self._last = max(self._last, snowflake)


def iso_now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat()


@dataclass(eq=False)
class User:
    id: int
    username: str
    global_name: str | None = None
    bot: bool = False
    avatar: str | None = None
    accepts_dms: bool = True  # False: the bot's DMs fail with 403 / 50007 like a user who blocks DMs
    _payload: dict[str, Any] | None = field(default=None, repr=False)

    def payload(self) -> dict[str, Any]:
        # Cached: built once per user, serialised into many messages (never mutated by us).
        if self._payload is None:
            self._payload = {
                "id": str(self.id),
                "username": self.username,
                "global_name": self.global_name,
                "discriminator": "0",
                "avatar": self.avatar,
                "bot": self.bot,
                "public_flags": 0,
            }
        return self._payload


@dataclass(eq=False)
class Role:
    id: int
    guild_id: int
    name: str
    permissions: int
    position: int
    color: int = 0
    hoist: bool = False
    managed: bool = False
    mentionable: bool = False

    def payload(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "name": self.name,
            "permissions": str(self.permissions),
            "position": self.position,
            "color": self.color,
            "colors": {"primary_color": self.color, "secondary_color": None, "tertiary_color": None},
            "hoist": self.hoist,
            "managed": self.managed,
            "mentionable": self.mentionable,
            "icon": None,
            "unicode_emoji": None,
            "flags": 0,
        }


@dataclass(eq=False)
class StoredMessage:
    """A message as Discord holds it: ``payload`` is the API object, the rest is emulator bookkeeping."""

    payload: dict[str, Any]
    channel_id: int
    author_id: int
    files: list[tuple[str, bytes]] = field(default_factory=list)
    interaction_id: int | None = None
    webhook_id: int | None = None
    # reactions: emoji key ("name" or "name:id") -> user ids, insertion ordered
    reactions: dict[str, list[int]] = field(default_factory=dict)

    @property
    def id(self) -> int:
        return int(self.payload["id"])

    @property
    def flags(self) -> int:
        return int(self.payload.get("flags", 0))

    @property
    def loading(self) -> bool:
        return bool(self.flags & FLAG_LOADING)

    @property
    def ephemeral(self) -> bool:
        return bool(self.flags & FLAG_EPHEMERAL)


@dataclass(eq=False)
class Channel:
    id: int
    type: int
    name: str | None
    guild_id: int | None = None
    position: int = 0
    topic: str | None = None
    parent_id: int | None = None
    recipient_ids: list[int] = field(default_factory=list)
    nsfw: bool = False
    rate_limit_per_user: int = 0
    last_message_id: int | None = None
    messages: OrderedDict[int, StoredMessage] = field(default_factory=OrderedDict, repr=False)
    typing_count: int = 0

    def payload(self, users: Mapping[int, User] | None = None) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": str(self.id),
            "type": self.type,
            "last_message_id": str(self.last_message_id) if self.last_message_id else None,
            "flags": 0,
        }
        if self.type == DM:
            data["recipients"] = [users[u].payload() for u in self.recipient_ids if users and u in users]
            return data
        data.update(
            name=self.name,
            position=self.position,
            permission_overwrites=[],
            parent_id=str(self.parent_id) if self.parent_id else None,
            nsfw=self.nsfw,
        )
        if self.guild_id is not None:
            data["guild_id"] = str(self.guild_id)
        if self.type == GUILD_TEXT:
            data.update(topic=self.topic, rate_limit_per_user=self.rate_limit_per_user)
        elif self.type == GUILD_VOICE:
            data.update(bitrate=64000, user_limit=0, rtc_region=None)
        return data


@dataclass(eq=False)
class Member:
    guild_id: int
    user_id: int
    roles: list[int] = field(default_factory=list)
    nick: str | None = None
    joined_at: str = field(default_factory=iso_now)
    communication_disabled_until: str | None = None
    flags: int = 0

    def partial_payload(self) -> dict[str, Any]:
        """The member object without ``user`` (as in MESSAGE_CREATE ``member``)."""
        return {
            "roles": [str(r) for r in self.roles],
            "nick": self.nick,
            "avatar": None,
            "banner": None,
            "joined_at": self.joined_at,
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "pending": False,
            "flags": self.flags,
            "communication_disabled_until": self.communication_disabled_until,
        }

    def payload(self, user: User) -> dict[str, Any]:
        data = self.partial_payload()
        data["user"] = user.payload()
        return data


@dataclass(eq=False)
class Guild:
    id: int
    name: str
    owner_id: int
    roles: dict[int, Role] = field(default_factory=dict)
    channel_ids: list[int] = field(default_factory=list)
    members: dict[int, Member] = field(default_factory=dict)
    bans: dict[int, str | None] = field(default_factory=dict)  # user id -> reason
    preferred_locale: str = "ja"
    system_channel_id: int | None = None

    @property
    def everyone_role(self) -> Role:
        return self.roles[self.id]

    def role_by_name(self, name: str) -> Role | None:
        return next((r for r in self.roles.values() if r.name == name), None)


@dataclass(frozen=True)
class Webhook:
    id: int
    token: str
    channel_id: int
    guild_id: int | None
    name: str
    creator_id: int | None = None


@dataclass(frozen=True)
class DemoIds:
    """Ids of the seeded fan-server guild. The first three are the seed's (TestEnvironment)."""

    bot_user_id: int
    application_id: int
    guild_id: int
    general_channel_id: int
    oshi_talk_channel_id: int
    bot_commands_channel_id: int
    mod_log_channel_id: int
    alerts_channel_id: int
    owner_id: int
    moderator_id: int
    member_ids: tuple[int, ...]
    everyone_role_id: int
    moderator_role_id: int
    member_role_id: int
    bot_role_id: int
    talent_role_ids: Mapping[str, int]

    @property
    def user_ids(self) -> tuple[int, ...]:
        """Every human in the demo guild: owner, moderator, members."""
        return (self.owner_id, self.moderator_id, *self.member_ids)


def _demo_ids() -> DemoIds:
    # Fixed, realistic snowflakes (2023-04-01T00:00Z + n) so DEMO is importable without an emulator.
    base_ms = 1_680_307_200_000
    counter = itertools.count(1)

    def next_id() -> int:
        return snowflake_at(base_ms + next(counter) * 1000)

    talents = ("Pekora", "Marine", "Suisei", "Miko", "Korone")
    return DemoIds(
        bot_user_id=123456789,
        application_id=123456789,
        guild_id=987654321,
        general_channel_id=555666777,
        oshi_talk_channel_id=next_id(),
        bot_commands_channel_id=next_id(),
        mod_log_channel_id=next_id(),
        alerts_channel_id=next_id(),
        owner_id=next_id(),
        moderator_id=next_id(),
        member_ids=tuple(next_id() for _ in range(8)),
        everyone_role_id=987654321,
        moderator_role_id=next_id(),
        member_role_id=next_id(),
        bot_role_id=next_id(),
        talent_role_ids=types.MappingProxyType({name: next_id() for name in talents}),
    )


DEMO = _demo_ids()

_DEMO_MEMBER_NAMES = (
    "nousagi_fan",
    "houshou_pirate",
    "hoshiyomi",
    "35p_elite",
    "koronesuki",
    "kenzoku",
    "watamate",
    "fubuki_friend",
)


class EmulatorState:
    """Everything the emulated Discord knows. Mutated by REST handlers and the driving helpers."""

    def __init__(self, *, bot_user_id: int = DEMO.bot_user_id, message_limit: int = 1000) -> None:
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
        self.bot = self.add_user(bot_user_id, "C.O.M.E.T.", bot=True)
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

    def seed_demo(self, demo: DemoIds = DEMO) -> Guild:
        """The fan server: channels, roles (Moderator, Member, talent roles), owner, moderator, members."""
        owner = self.add_user(demo.owner_id, "hfs_owner")
        moderator = self.add_user(demo.moderator_id, "mod_fubuki")
        for uid, name in zip(demo.member_ids, _DEMO_MEMBER_NAMES, strict=False):
            self.add_user(uid, name)
        guild = Guild(id=demo.guild_id, name="hololive Fan Server (HFS)", owner_id=owner.id)
        self.guilds[guild.id] = guild
        gid = guild.id
        self.add_role(gid, "@everyone", permissions=Perm.EVERYONE, role_id=demo.everyone_role_id, position=0)
        self.add_role(gid, "Member", permissions=Perm.EVERYONE, role_id=demo.member_role_id, position=1)
        colors = {
            "Pekora": 0x7EC5FF,
            "Marine": 0xB7213C,
            "Suisei": 0x4A7BD1,
            "Miko": 0xFF6FA8,
            "Korone": 0xE6A23C,
        }
        for position, (name, rid) in enumerate(demo.talent_role_ids.items(), start=2):
            self.add_role(gid, name, permissions=0, role_id=rid, position=position, color=colors[name])
        self.add_role(
            gid,
            "Moderator",
            permissions=Perm.EVERYONE | Perm.MODERATOR,
            role_id=demo.moderator_role_id,
            position=10,
            hoist=True,
            color=0x2ECC71,
        )
        self.add_role(
            gid, self.bot.username, permissions=Perm.BOT, role_id=demo.bot_role_id, position=11, managed=True
        )
        self.add_channel(gid, "general", channel_id=demo.general_channel_id, topic="雑談")
        self.add_channel(gid, "oshi-talk", channel_id=demo.oshi_talk_channel_id, topic="推しの話")
        self.add_channel(gid, "bot-commands", channel_id=demo.bot_commands_channel_id)
        self.add_channel(gid, "mod-log", channel_id=demo.mod_log_channel_id)
        self.add_channel(gid, "alerts", channel_id=demo.alerts_channel_id)
        guild.system_channel_id = demo.general_channel_id
        self.join(gid, owner.id, roles=[demo.member_role_id])
        self.join(gid, moderator.id, roles=[demo.member_role_id, demo.moderator_role_id])
        talents = list(demo.talent_role_ids.values())
        for index, uid in enumerate(demo.member_ids):
            self.join(gid, uid, roles=[demo.member_role_id, talents[index % len(talents)]])
        self.join(gid, self.bot.id, roles=[demo.bot_role_id])
        self.application_owner_id = owner.id
        return guild

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
