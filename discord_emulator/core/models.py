"""The emulator's data: users, guilds, channels, roles, members, messages and webhooks.

Each record builds its own payload in exactly the JSON shape discord.py reads. Ids are real
snowflakes (``id >> 22`` is milliseconds since the Discord epoch), so sharding math
(``(guild_id >> 22) % shard_count``) and message ordering by id behave like Discord's.
"""

from __future__ import annotations

import datetime
import time
from collections import OrderedDict
from collections.abc import Mapping
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
