"""Shared plumbing of the REST routes: the call object, lookups, permission checks, message events."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from aiohttp import web

from discord_emulator.core.encoding import dumps
from discord_emulator.core.messages import ApiError, missing_permissions, not_found
from discord_emulator.core.models import Channel, Guild, Member, Perm, StoredMessage

if TYPE_CHECKING:
    from discord_emulator.core.record import RecordedRequest
    from discord_emulator.core.world import World
    from discord_emulator.faults import FaultInjector


class RestHost(Protocol):
    """What the REST routes need of the server they run in (its addresses and settings), besides
    the world: a Protocol, so that this transport imports neither the server nor the gateway."""

    world: World
    token: str | None
    shard_count: int
    interaction_ack_timeout: float | None
    faults: FaultInjector
    requests: deque[RecordedRequest]

    @property
    def url(self) -> str: ...

    @property
    def gateway_url(self) -> str: ...

    def notify(self) -> None: ...


JSON = "application/json"


def json_response(status: int, body: Any, headers: Mapping[str, str] | None = None) -> web.Response:
    if body is None:
        return web.Response(status=204 if status == 200 else status, headers=headers)
    return web.Response(status=status, body=dumps(body).encode(), content_type=JSON, headers=headers)


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

    def __init__(self, host: RestHost) -> None:
        self.host = host
        self.world = host.world

    # -- lookups -----------------------------------------------------------------------------------
    def _channel(self, call: Call) -> Channel:
        channel = self.world.channels.get(call.id("channel_id", "Channel", 10003))
        if channel is None:
            raise not_found("Channel", 10003)
        return channel

    def _message(self, channel: Channel, call: Call) -> StoredMessage:
        message = channel.messages.get(call.id("message_id", "Message", 10008))
        if message is None or message.ephemeral:  # ephemeral messages are not fetchable
            raise not_found("Message", 10008)
        return message

    def _guild(self, call: Call) -> Guild:
        guild = self.world.guilds.get(call.id("guild_id", "Guild", 10004))
        if guild is None or self.world.bot.id not in guild.members:
            raise not_found("Guild", 10004)
        return guild

    def _member(self, guild: Guild, call: Call) -> Member:
        raw = call.params["user_id"]
        uid = self.world.bot.id if raw == "@me" else call.id("user_id", "Member", 10007)
        member = guild.members.get(uid)
        if member is None:
            raise not_found("Member", 10007)
        return member

    def _bot_perms(self, guild: Guild | None) -> int:
        return Perm.ALL if guild is None else self.world.member_permissions(guild, self.world.bot.id)

    def _require(self, guild: Guild | None, perm: int) -> None:
        if not self._bot_perms(guild) & perm:
            raise missing_permissions()

    def _require_above(self, guild: Guild, user_id: int) -> None:
        """Discord's role hierarchy: the bot cannot act on the owner or on equal/higher members."""
        if user_id == guild.owner_id:
            raise missing_permissions()
        bot_top = self.world.top_role_position(guild, self.world.bot.id)
        if user_id != self.world.bot.id and self.world.top_role_position(guild, user_id) >= bot_top:
            raise missing_permissions()

    def _member_event(self, guild: Guild, member: Member) -> dict[str, Any]:
        data = member.payload(self.world.users[member.user_id])
        data["guild_id"] = str(guild.id)
        return data

    def _audit(self, guild: Guild, action: str, target_id: int, call: Call, **extra: Any) -> None:
        self.world.audit_log.append(
            {"guild_id": guild.id, "action": action, "target_id": target_id, "reason": call.reason, **extra}
        )

    def _authorised(self, headers: Mapping[str, str]) -> bool:
        """A ``Bot <token>`` Authorization header (the emulator's token, if it requires one)."""
        auth = headers.get("Authorization", "")
        if not auth.startswith("Bot ") or len(auth) <= 4:
            return False
        return self.host.token is None or auth[4:] == self.host.token
