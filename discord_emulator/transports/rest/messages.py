"""Channel, message, reaction, typing and DM routes."""

from __future__ import annotations

import time
import urllib.parse
from typing import Any

from discord_emulator.core import messages as msgs
from discord_emulator.core.events import (
    INTENT_GUILD_MESSAGES,
    INTENT_GUILDS,
)
from discord_emulator.core.messages import ApiError
from discord_emulator.core.models import DM, Perm, snowflake_time
from discord_emulator.transports.rest.base import Call, RestBase


class MessageRoutes(RestBase):
    async def create_dm(self, call: Call) -> tuple[int, Any]:
        recipient = call.body().get("recipient_id")
        try:
            user = self.world.users.get(int(recipient))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            user = None
        if user is None:
            raise msgs.form_error("recipient_id", "NUMBER_TYPE_COERCE", "Value is not snowflake.")
        return 200, self.world.open_dm(user.id).payload(self.world.users)

    # -- channels / messages -----------------------------------------------------------------------
    async def get_channel(self, call: Call) -> tuple[int, Any]:
        return 200, self._channel(call).payload(self.world.users)

    async def edit_channel(self, call: Call) -> tuple[int, Any]:
        """Modify Channel: the bot needs MANAGE_CHANNELS; CHANNEL_UPDATE goes to the guild's sessions."""
        channel = self._channel(call)
        guild = self.world.guild_of(channel.id)
        if guild is None:
            raise ApiError(403, 50003, "Cannot execute action on a DM channel")
        self._require(guild, Perm.MANAGE_CHANNELS)
        changes = msgs.validate_channel_edit(channel, call.body())
        for name, value in changes.items():
            setattr(channel, name, value)
        self._audit(guild, "channel_update", channel.id, call, changes=changes)
        data = channel.payload()
        await self.world.emit("CHANNEL_UPDATE", data, guild_id=guild.id, intent=INTENT_GUILDS)
        return 200, data

    async def history(self, call: Call) -> tuple[int, Any]:
        channel = self._channel(call)
        self._require(self.world.guild_of(channel.id), Perm.READ_MESSAGE_HISTORY)
        try:
            limit = max(1, min(100, int(call.query.get("limit", 50))))
            before = int(call.query["before"]) if "before" in call.query else None
            after = int(call.query["after"]) if "after" in call.query else None
            around = int(call.query["around"]) if "around" in call.query else None
        except ValueError:
            raise ApiError(400, 50035, "Invalid Form Body") from None
        visible = [m for m in channel.messages.values() if not m.ephemeral]
        if around is not None:
            older = [m for m in visible if m.id <= around][-(limit // 2 + 1) :]
            newer = [m for m in visible if m.id > around][: limit - len(older)]
            chosen = older + newer
        elif after is not None:
            chosen = [m for m in visible if m.id > after][:limit]
        else:
            if before is not None:
                visible = [m for m in visible if m.id < before]
            chosen = visible[-limit:]
        return 200, [m.payload for m in reversed(chosen)]  # newest first, like Discord

    async def create_message(self, call: Call) -> tuple[int, Any]:
        channel = self._channel(call)
        guild = self.world.guild_of(channel.id)
        self._require(guild, Perm.SEND_MESSAGES | Perm.VIEW_CHANNEL)
        if channel.type == DM:
            recipient = self.world.users.get(channel.recipient_ids[0])
            if recipient is None or not recipient.accepts_dms:
                raise ApiError(403, 50007, "Cannot send messages to this user")
        body = call.body()
        attachments = msgs.attachment_payloads(self.world, self.host.url, channel.id, call.files)
        message = msgs.build_message(
            self.world, channel, self.world.bot, body, attachments=attachments, files=call.files
        )
        await self.world.post_message(message)
        return 200, message.payload

    async def get_message(self, call: Call) -> tuple[int, Any]:
        channel = self._channel(call)
        self._require(self.world.guild_of(channel.id), Perm.READ_MESSAGE_HISTORY)
        return 200, self._message(channel, call).payload

    async def edit_message(self, call: Call) -> tuple[int, Any]:
        channel = self._channel(call)
        message = self._message(channel, call)
        if message.author_id != self.world.bot.id:
            raise ApiError(403, 50005, "Cannot edit a message authored by another user")
        attachments = msgs.attachment_payloads(self.world, self.host.url, channel.id, call.files)
        msgs.apply_edit(message, call.body(), attachments=attachments, files=call.files)
        await self.world.message_updated(message)
        return 200, message.payload

    async def delete_message(self, call: Call) -> tuple[int, Any]:
        channel = self._channel(call)
        message = self._message(channel, call)
        guild = self.world.guild_of(channel.id)
        if message.author_id != self.world.bot.id:
            if guild is None:
                raise ApiError(403, 50003, "Cannot execute action on a DM channel")
            self._require(guild, Perm.MANAGE_MESSAGES)
        await self.world.delete_message(channel, message)
        return 204, None

    async def bulk_delete(self, call: Call) -> tuple[int, Any]:
        channel = self._channel(call)
        guild = self.world.guild_of(channel.id)
        if guild is None:
            raise ApiError(403, 50003, "Cannot execute action on a DM channel")
        self._require(guild, Perm.MANAGE_MESSAGES)
        raw_ids = call.body().get("messages")
        if not isinstance(raw_ids, list) or not 2 <= len(raw_ids) <= 100:
            raise msgs.form_error("messages", "BASE_TYPE_BAD_LENGTH", "Must be between 2 and 100")
        ids = [int(i) for i in raw_ids]
        two_weeks_ago = time.time() - 14 * 24 * 3600
        if any(snowflake_time(i) < two_weeks_ago for i in ids):
            raise ApiError(400, 50034, "You can only bulk delete messages that are under 14 days old.")
        deleted = [i for i in ids if channel.messages.pop(i, None) is not None]
        data = {"ids": [str(i) for i in deleted], "channel_id": str(channel.id), "guild_id": str(guild.id)}
        await self.world.emit("MESSAGE_DELETE_BULK", data, guild_id=guild.id, intent=INTENT_GUILD_MESSAGES)
        return 204, None

    async def typing(self, call: Call) -> tuple[int, Any]:
        channel = self._channel(call)
        channel.typing_count += 1
        return 204, None

    # -- reactions ---------------------------------------------------------------------------------
    @staticmethod
    def _emoji(call: Call) -> str:
        """The reaction key of the route: a unicode emoji or ``"name:id"``; else 400 Unknown Emoji."""
        key = urllib.parse.unquote(call.params["emoji"])
        if not msgs.is_reaction_emoji(key):
            raise msgs.unknown_emoji()
        return key

    async def add_own_reaction(self, call: Call) -> tuple[int, Any]:
        channel = self._channel(call)
        message = self._message(channel, call)
        self._require(self.world.guild_of(channel.id), Perm.ADD_REACTIONS)
        key = self._emoji(call)
        if len(message.reactions) >= 20 and key not in message.reactions:
            raise ApiError(400, 30010, "Maximum number of reactions reached (20)")
        await self.world.react(channel, message, key, self.world.bot.id)
        return 204, None

    async def remove_own_reaction(self, call: Call) -> tuple[int, Any]:
        channel = self._channel(call)
        message = self._message(channel, call)
        await self.world.unreact(channel, message, self._emoji(call), self.world.bot.id)
        return 204, None

    async def remove_reaction(self, call: Call) -> tuple[int, Any]:
        channel = self._channel(call)
        message = self._message(channel, call)
        self._require(self.world.guild_of(channel.id), Perm.MANAGE_MESSAGES)
        await self.world.unreact(channel, message, self._emoji(call), call.id("user_id", "User", 10013))
        return 204, None

    async def get_reactions(self, call: Call) -> tuple[int, Any]:
        channel = self._channel(call)
        message = self._message(channel, call)
        users = [
            self.world.users[u].payload()
            for u in message.reactions.get(self._emoji(call), [])
            if u in self.world.users
        ]
        return 200, users

    async def clear_emoji_reactions(self, call: Call) -> tuple[int, Any]:
        channel = self._channel(call)
        message = self._message(channel, call)
        self._require(self.world.guild_of(channel.id), Perm.MANAGE_MESSAGES)
        key = self._emoji(call)
        message.reactions.pop(key, None)
        message.payload["reactions"] = msgs.reaction_payloads(message, self.world.bot.id)
        data: dict[str, Any] = {"emoji": msgs.emoji_payload(key)}
        await self.world.reaction_event("MESSAGE_REACTION_REMOVE_EMOJI", channel, message, data)
        return 204, None

    async def clear_reactions(self, call: Call) -> tuple[int, Any]:
        channel = self._channel(call)
        message = self._message(channel, call)
        self._require(self.world.guild_of(channel.id), Perm.MANAGE_MESSAGES)
        message.reactions.clear()
        message.payload["reactions"] = []
        await self.world.reaction_event("MESSAGE_REACTION_REMOVE_ALL", channel, message, {})
        return 204, None
