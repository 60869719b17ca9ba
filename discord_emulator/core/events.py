"""What the world tells its listeners: Discord gateway events, with the intent a session needs to
receive each one. The world emits them; the gateway transport is one listener (it frames and sends
them to the sessions of the event's shard), tests may add their own."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

# Gateway intents (Discord API bits).
INTENT_GUILDS = 1 << 0
INTENT_GUILD_MEMBERS = 1 << 1
INTENT_GUILD_MODERATION = 1 << 2
INTENT_GUILD_MESSAGES = 1 << 9
INTENT_GUILD_MESSAGE_REACTIONS = 1 << 10
INTENT_GUILD_MESSAGE_TYPING = 1 << 11
INTENT_DIRECT_MESSAGES = 1 << 12
INTENT_DIRECT_MESSAGE_REACTIONS = 1 << 13
INTENT_MESSAGE_CONTENT = 1 << 15

#: GUILD_CREATE is built per session (members only for sessions with the members intent), so its
#: event carries only the guild's id and the listener builds the payload.
GUILD_CREATE = "GUILD_CREATE"


@dataclass(frozen=True, slots=True)
class Event:
    """``name`` and ``data`` as Discord sends them (``t`` and ``d``). ``guild_id`` picks the shard
    (``None``: a DM, shard 0); ``intent``: the intent a session needs to see the event at all;
    ``content_gated``: sessions without MESSAGE_CONTENT get content, embeds and attachments emptied."""

    name: str
    data: dict[str, Any]
    guild_id: int | None = None
    intent: int = 0
    content_gated: bool = False


EventListener = Callable[[Event], Awaitable[object]]
