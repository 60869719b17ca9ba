"""The world: its data (``WorldState``) and everything that happens in it. Every change that Discord
announces goes through here, so the transports only translate: REST calls and the driving helpers
call these operations, and the gateway transport, one of the world's event listeners, sends what
they emit to the bot's sessions. Building methods of ``WorldState`` (``create_guild``, ``join``,
``add_channel``) stay silent, for seeding a world before anyone listens.
"""

from __future__ import annotations

import secrets
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from discord_emulator.core import messages as msgs
from discord_emulator.core.events import (
    GUILD_CREATE,
    INTENT_DIRECT_MESSAGE_REACTIONS,
    INTENT_DIRECT_MESSAGES,
    INTENT_GUILD_MEMBERS,
    INTENT_GUILD_MESSAGE_REACTIONS,
    INTENT_GUILD_MESSAGES,
    INTENT_GUILDS,
)
from discord_emulator.core.interactions import InteractionRecord
from discord_emulator.core.models import Channel, Guild, Member, StoredMessage, User, Webhook
from discord_emulator.core.state import BOT_USER_ID, WorldState

# Bounds, so that long demo runs and benchmarks do not grow memory without end.
INTERACTION_LIMIT = 10_000
ATTACHMENT_LIMIT = 1000


class World(WorldState):
    def __init__(
        self, *, bot_user_id: int = BOT_USER_ID, bot_name: str = "bot", message_limit: int = 1000
    ) -> None:
        super().__init__(bot_user_id=bot_user_id, bot_name=bot_name, message_limit=message_limit)
        self.interactions: OrderedDict[str, InteractionRecord] = OrderedDict()  # by token
        self.command_ids: dict[str, int] = {}  # ids of commands used before any sync
        self._attachments: OrderedDict[tuple[int, int], bytes] = OrderedDict()

    # -- messages ----------------------------------------------------------------------------------
    async def post_message(self, message: StoredMessage) -> None:
        """Store a new message (users', the bot's, a webhook's) and announce it (MESSAGE_CREATE)."""
        self.store_message(message)
        for listener in self.message_listeners:
            listener(message)
        for filename, data in message.files:
            self._store_attachment(message, filename, data)
        await self._message_event("MESSAGE_CREATE", message)

    async def message_updated(self, message: StoredMessage) -> None:
        await self._message_event("MESSAGE_UPDATE", message)

    async def delete_message(self, channel: Channel, message: StoredMessage) -> None:
        channel.messages.pop(message.id, None)
        if message.ephemeral:
            return
        data: dict[str, Any] = {"id": str(message.id), "channel_id": str(channel.id)}
        if channel.guild_id is not None:
            data["guild_id"] = str(channel.guild_id)
        intent = INTENT_GUILD_MESSAGES if channel.guild_id is not None else INTENT_DIRECT_MESSAGES
        await self.emit("MESSAGE_DELETE", data, guild_id=channel.guild_id, intent=intent)

    async def _message_event(self, event: str, message: StoredMessage) -> None:
        """MESSAGE_CREATE / MESSAGE_UPDATE; none for an ephemeral message (only its recipient sees it)."""
        if message.ephemeral:
            return
        channel = self.channels[message.channel_id]
        data = message.payload
        gated = False
        if channel.guild_id is not None:
            guild = self.guilds[channel.guild_id]
            member = guild.members.get(message.author_id)
            if member is not None and message.webhook_id is None:
                data = dict(data, member=member.partial_payload())
            bot_id = str(self.bot.id)
            gated = message.author_id != self.bot.id and all(u["id"] != bot_id for u in data["mentions"])
            intent = INTENT_GUILD_MESSAGES
        else:
            intent = INTENT_DIRECT_MESSAGES
        await self.emit(event, data, guild_id=channel.guild_id, intent=intent, content_gated=gated)

    # -- reactions ---------------------------------------------------------------------------------
    async def react(self, channel: Channel, message: StoredMessage, key: str, user_id: int) -> None:
        users = message.reactions.setdefault(key, [])
        if user_id in users:
            return
        users.append(user_id)
        message.payload["reactions"] = msgs.reaction_payloads(message, self.bot.id)
        await self._user_reaction_event("MESSAGE_REACTION_ADD", channel, message, user_id, key)

    async def unreact(self, channel: Channel, message: StoredMessage, key: str, user_id: int) -> None:
        users = message.reactions.get(key, [])
        if user_id not in users:
            return
        users.remove(user_id)
        message.payload["reactions"] = msgs.reaction_payloads(message, self.bot.id)
        await self._user_reaction_event("MESSAGE_REACTION_REMOVE", channel, message, user_id, key)

    async def reaction_event(
        self, event: str, channel: Channel, message: StoredMessage, data: dict[str, Any]
    ) -> None:
        """Announce a reaction event on ``message``; ``data``: the event's own fields."""
        data.update(channel_id=str(channel.id), message_id=str(message.id))
        if channel.guild_id is None:
            intent = INTENT_DIRECT_MESSAGE_REACTIONS
        else:
            data["guild_id"] = str(channel.guild_id)
            intent = INTENT_GUILD_MESSAGE_REACTIONS
        await self.emit(event, data, guild_id=channel.guild_id, intent=intent)

    async def _user_reaction_event(
        self, event: str, channel: Channel, message: StoredMessage, user_id: int, key: str
    ) -> None:
        data: dict[str, Any] = {
            "user_id": str(user_id),
            "emoji": msgs.emoji_payload(key),
            "burst": False,
            "type": 0,
        }
        if channel.guild_id is not None:
            member = self.guilds[channel.guild_id].members.get(user_id)
            if member is not None and event == "MESSAGE_REACTION_ADD":
                data["member"] = member.payload(self.users[user_id])
            data["message_author_id"] = str(message.author_id)
        await self.reaction_event(event, channel, message, data)

    # -- attachments -------------------------------------------------------------------------------
    def _store_attachment(self, message: StoredMessage, filename: str, data: bytes) -> None:
        for attachment in message.payload.get("attachments", []):
            if attachment["filename"] == filename:
                self._attachments[(message.channel_id, int(attachment["id"]))] = data
        while len(self._attachments) > ATTACHMENT_LIMIT:
            self._attachments.popitem(last=False)

    def attachment(self, channel_id: int, attachment_id: int) -> bytes | None:
        return self._attachments.get((channel_id, attachment_id))

    # -- interactions ------------------------------------------------------------------------------
    async def interaction_created(self, record: InteractionRecord) -> None:
        """Remember the interaction (its token answers callbacks and followups) and announce it."""
        self.interactions[record.token] = record
        if len(self.interactions) > INTERACTION_LIMIT:
            self.interactions.popitem(last=False)
        await self.emit("INTERACTION_CREATE", record.payload, guild_id=record.guild_id)

    def interaction_by_token(self, token: str) -> InteractionRecord | None:
        return self.interactions.get(token)

    # -- webhooks ----------------------------------------------------------------------------------
    def new_webhook(self, channel_id: int, name: str, *, creator_id: int | None = None) -> Webhook:
        channel = self.channels[channel_id]
        webhook = Webhook(
            id=self.next_id(),
            token=secrets.token_urlsafe(48),
            channel_id=channel_id,
            guild_id=channel.guild_id,
            name=name,
            creator_id=creator_id,
        )
        self.webhooks[webhook.id] = webhook
        return webhook

    @staticmethod
    def webhook_author(webhook: Webhook, username: Any = None) -> User:
        name = username if isinstance(username, str) and username else webhook.name
        return User(id=webhook.id, username=name, bot=True)

    # -- membership, announced -----------------------------------------------------------------------
    def add_guild(
        self,
        name: str,
        members: int = 0,
        *,
        channels: Iterable[str] = ("general",),
        guild_id: int | None = None,
    ) -> Guild:
        """A guild the bot joins, with ``members`` synthetic members (GUILD_CREATE)."""
        guild = self.create_guild(name, channels=channels, guild_id=guild_id)
        for i in range(members):
            user = self.add_user(name=f"{name[:16]}-member-{i}")
            self.join(guild.id, user.id)
        self.announce(GUILD_CREATE, {"id": str(guild.id)}, guild_id=guild.id, intent=INTENT_GUILDS)
        return guild

    def add_member(
        self,
        guild_id: int,
        user_id: int | None = None,
        name: str | None = None,
        roles: Iterable[int | str] = (),
        *,
        accepts_dms: bool = True,
    ) -> Member:
        """A user joins ``guild_id`` (GUILD_MEMBER_ADD). ``roles``: ids or names."""
        guild = self.guilds[guild_id]
        user = self.users.get(user_id) if user_id is not None else None
        if user is None:
            user = self.add_user(user_id, name, accepts_dms=accepts_dms)
        role_ids = []
        for role in roles:
            found = guild.roles.get(role) if isinstance(role, int) else guild.role_by_name(role)
            if found is None:
                raise KeyError(f"unknown role {role!r}")
            role_ids.append(found.id)
        member = self.join(guild_id, user.id, roles=role_ids)
        data = member.payload(user)
        data["guild_id"] = str(guild_id)
        self.announce("GUILD_MEMBER_ADD", data, guild_id=guild_id, intent=INTENT_GUILD_MEMBERS)
        return member

    def add_text_channel(self, guild_id: int, name: str) -> Channel:
        """A new text channel (CHANNEL_CREATE)."""
        channel = self.add_channel(guild_id, name)
        self.announce("CHANNEL_CREATE", channel.payload(), guild_id=guild_id, intent=INTENT_GUILDS)
        return channel
