"""Shared plumbing of the REST routes: the call object, lookups, permission checks, message events."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from discord_emulator.core.messages import ApiError, missing_permissions, not_found
from discord_emulator.core.models import Channel, Guild, Member, Perm, StoredMessage
from discord_emulator.transports.gateway import (
    INTENT_DIRECT_MESSAGES,
    INTENT_GUILD_MESSAGES,
)

if TYPE_CHECKING:
    from discord_emulator.server import Emulator


_DUMPS = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
JSON = "application/json"


def json_response(status: int, body: Any, headers: Mapping[str, str] | None = None) -> web.Response:
    if body is None:
        return web.Response(status=204 if status == 200 else status, headers=headers)
    return web.Response(status=status, body=_DUMPS(body).encode(), content_type=JSON, headers=headers)


@dataclass(slots=True)
class Call:
    method: str
    path: str
    params: dict[str, str]
    query: Mapping[str, str]
    json: Any
    files: list[tuple[str, bytes]] = field(default_factory=list)
    reason: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)

    def id(self, name: str, what: str = "Object", code: int = 0) -> int:
        raw = self.params[name]
        try:
            return int(raw)
        except ValueError:
            raise not_found(what, code) from None

    def body(self) -> dict[str, Any]:
        if self.json is None:
            return {}
        if not isinstance(self.json, dict):
            raise ApiError(400, 50109, "The request body contains invalid JSON.")
        return self.json


class RestBase:
    """State and helpers every route group uses (``RestApi`` combines the groups)."""

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self.state = emu.state

    # -- lookups -----------------------------------------------------------------------------------
    def _channel(self, call: Call) -> Channel:
        channel = self.state.channels.get(call.id("channel_id", "Channel", 10003))
        if channel is None:
            raise not_found("Channel", 10003)
        return channel

    def _message(self, channel: Channel, call: Call) -> StoredMessage:
        message = channel.messages.get(call.id("message_id", "Message", 10008))
        if message is None or message.ephemeral:  # ephemeral messages are not fetchable
            raise not_found("Message", 10008)
        return message

    def _guild(self, call: Call) -> Guild:
        guild = self.state.guilds.get(call.id("guild_id", "Guild", 10004))
        if guild is None or self.state.bot.id not in guild.members:
            raise not_found("Guild", 10004)
        return guild

    def _member(self, guild: Guild, call: Call) -> Member:
        raw = call.params["user_id"]
        uid = self.state.bot.id if raw == "@me" else call.id("user_id", "Member", 10007)
        member = guild.members.get(uid)
        if member is None:
            raise not_found("Member", 10007)
        return member

    def _bot_perms(self, guild: Guild | None) -> int:
        return Perm.ALL if guild is None else self.state.member_permissions(guild, self.state.bot.id)

    def _require(self, guild: Guild | None, perm: int) -> None:
        if not self._bot_perms(guild) & perm:
            raise missing_permissions()

    def _require_above(self, guild: Guild, user_id: int) -> None:
        """Discord's role hierarchy: the bot cannot act on the owner or on equal/higher members."""
        if user_id == guild.owner_id:
            raise missing_permissions()
        bot_top = self.state.top_role_position(guild, self.state.bot.id)
        if user_id != self.state.bot.id and self.state.top_role_position(guild, user_id) >= bot_top:
            raise missing_permissions()

    def _member_event(self, guild: Guild, member: Member) -> dict[str, Any]:
        data = member.payload(self.state.users[member.user_id])
        data["guild_id"] = str(guild.id)
        return data

    def _audit(self, guild: Guild, action: str, target_id: int, call: Call, **extra: Any) -> None:
        self.state.audit_log.append(
            {"guild_id": guild.id, "action": action, "target_id": target_id, "reason": call.reason, **extra}
        )

    async def _dispatch_message(self, event: str, message: StoredMessage) -> None:
        """MESSAGE_CREATE / MESSAGE_UPDATE; none for an ephemeral message (only its recipient sees it)."""
        if message.ephemeral:
            return
        channel = self.state.channels[message.channel_id]
        data = message.payload
        gated = False
        if channel.guild_id is not None:
            guild = self.state.guilds[channel.guild_id]
            member = guild.members.get(message.author_id)
            if member is not None and message.webhook_id is None:
                data = dict(data, member=member.partial_payload())
            bot_id = str(self.state.bot.id)
            gated = message.author_id != self.state.bot.id and all(
                u["id"] != bot_id for u in data["mentions"]
            )
            intent = INTENT_GUILD_MESSAGES
        else:
            intent = INTENT_DIRECT_MESSAGES
        await self.emu.gateway.dispatch(
            event, data, guild_id=channel.guild_id, intent=intent, content_gated=gated
        )

    async def post_message(self, channel: Channel, message: StoredMessage) -> None:
        """Store and announce a new message (MESSAGE_CREATE)."""
        self.state.store_message(message)
        for listener in self.emu.message_listeners:
            listener(message)
        for filename, data in message.files:
            self.emu.store_attachment(message, filename, data)
        await self._dispatch_message("MESSAGE_CREATE", message)

    async def _delete(self, channel: Channel, message: StoredMessage) -> None:
        channel.messages.pop(message.id, None)
        if message.ephemeral:
            return
        data: dict[str, Any] = {"id": str(message.id), "channel_id": str(channel.id)}
        if channel.guild_id is not None:
            data["guild_id"] = str(channel.guild_id)
        intent = INTENT_GUILD_MESSAGES if channel.guild_id is not None else INTENT_DIRECT_MESSAGES
        await self.emu.gateway.dispatch("MESSAGE_DELETE", data, guild_id=channel.guild_id, intent=intent)

    def _authorised(self, headers: Mapping[str, str]) -> bool:
        """A ``Bot <token>`` Authorization header (the emulator's token, if it requires one)."""
        auth = headers.get("Authorization", "")
        if not auth.startswith("Bot ") or len(auth) <= 4:
            return False
        return self.emu.token is None or auth[4:] == self.emu.token
