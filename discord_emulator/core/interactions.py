"""Interactions as Discord sends them (INTERACTION_CREATE) and their lifecycle (callback, followups).

Option types come from the commands the bot synced (PUT /applications/{id}/commands); without a
sync they are inferred from the Python values (bool, int, float, str). User, channel, role and
mentionable options get ``resolved`` data like Discord's.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from discord_emulator.core.models import Channel, Guild, User
from discord_emulator.core.state import WorldState

# Interaction types.
APPLICATION_COMMAND = 2
MESSAGE_COMPONENT = 3
AUTOCOMPLETE = 4
# Option types.
SUB_COMMAND = 1
SUB_COMMAND_GROUP = 2
STRING = 3
INTEGER = 4
BOOLEAN = 5
USER = 6
CHANNEL = 7
ROLE = 8
MENTIONABLE = 9
NUMBER = 10

ATTACHMENT_SIZE_LIMIT = 10 * 1024 * 1024


@dataclass(eq=False)
class InteractionRecord:
    id: int
    token: str
    type: int
    channel_id: int
    guild_id: int | None
    user_id: int
    name: str
    payload: dict[str, Any]
    created_at: float = field(default_factory=time.monotonic)
    response_type: int | None = None
    original_message_id: int | None = None
    followup_ids: list[int] = field(default_factory=list)
    choices: asyncio.Future[list[dict[str, Any]]] | None = None

    @property
    def acknowledged(self) -> bool:
        return self.response_type is not None


def _infer_type(value: Any) -> int:
    if isinstance(value, bool):
        return BOOLEAN
    if isinstance(value, int):
        return INTEGER
    if isinstance(value, float):
        return NUMBER
    return STRING


def find_command(state: WorldState, guild_id: int | None, name: str) -> tuple[dict[str, Any] | None, bool]:
    """(synced definition, is_guild_command) for a chat-input command name."""
    if guild_id is not None:
        command = state.guild_commands.get(guild_id, {}).get(name)
        if command is not None:
            return command, True
    return state.global_commands.get(name), False


def _option_defs(definition: dict[str, Any] | None, path: list[str]) -> list[dict[str, Any]]:
    options = (definition or {}).get("options") or []
    for part in path:
        nxt = next((o for o in options if o.get("name") == part), None)
        options = (nxt or {}).get("options") or []
    return options


class _Resolver:
    def __init__(self, state: WorldState, guild: Guild | None) -> None:
        self.state = state
        self.guild = guild
        self.resolved: dict[str, dict[str, Any]] = {}

    def _member(self, user: User) -> None:
        self.resolved.setdefault("users", {})[str(user.id)] = user.payload()
        if self.guild is not None and user.id in self.guild.members:
            member = self.guild.members[user.id].partial_payload()
            member["permissions"] = str(self.state.member_permissions(self.guild, user.id))
            self.resolved.setdefault("members", {})[str(user.id)] = member

    def add(self, opt_type: int, value: Any) -> str:
        sid = str(int(value))
        ident = int(sid)
        if opt_type in (USER, MENTIONABLE) and ident in self.state.users:
            self._member(self.state.users[ident])
        elif opt_type in (ROLE, MENTIONABLE) and self.guild is not None and ident in self.guild.roles:
            self.resolved.setdefault("roles", {})[sid] = self.guild.roles[ident].payload()
        elif opt_type == CHANNEL and ident in self.state.channels:
            channel = self.state.channels[ident]
            data = channel.payload()
            data["permissions"] = str(
                self.state.member_permissions(self.guild, self.state.bot.id) if self.guild else 0
            )
            self.resolved.setdefault("channels", {})[sid] = data
        return sid


def build_options(
    state: WorldState,
    guild: Guild | None,
    definition: dict[str, Any] | None,
    options: dict[str, Any] | None,
    subcommand: str | None,
    focused: str | None = None,
) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    path = subcommand.split() if subcommand else []
    defs = _option_defs(definition, path)
    resolver = _Resolver(state, guild)
    leaf: list[dict[str, Any]] = []
    for name, value in (options or {}).items():
        spec = next((d for d in defs if d.get("name") == name), None)
        opt_type = int(spec["type"]) if spec and "type" in spec else _infer_type(value)
        if name == focused:
            # Autocomplete sends what the user has typed so far, as typed (a string for text options).
            leaf.append({"name": name, "type": opt_type, "value": value, "focused": True})
            continue
        if opt_type in (USER, CHANNEL, ROLE, MENTIONABLE):
            value = resolver.add(opt_type, getattr(value, "id", value))
        elif opt_type == INTEGER:
            value = int(value)
        elif opt_type == NUMBER:
            value = float(value)
        elif opt_type == BOOLEAN:
            value = bool(value)
        else:
            value = str(value)
        leaf.append({"name": name, "type": opt_type, "value": value})
    if focused is not None and all(o["name"] != focused for o in leaf):
        leaf.append({"name": focused, "type": STRING, "value": "", "focused": True})
    nested: list[dict[str, Any]] = leaf
    if len(path) == 2:
        nested = [
            {
                "name": path[0],
                "type": SUB_COMMAND_GROUP,
                "options": [{"name": path[1], "type": SUB_COMMAND, "options": leaf}],
            }
        ]
    elif len(path) == 1:
        nested = [{"name": path[0], "type": SUB_COMMAND, "options": leaf}]
    return nested, resolver.resolved


def build_interaction(
    state: WorldState,
    channel: Channel,
    user: User,
    name: str,
    *,
    interaction_type: int,
    options: dict[str, Any] | None,
    subcommand: str | None,
    focused: str | None = None,
    guild_command: bool | None = None,
    locale: str = "ja",
    command_ids: dict[str, int],
    component: dict[str, Any] | None = None,
    message: dict[str, Any] | None = None,
) -> InteractionRecord:
    guild = state.guilds.get(channel.guild_id) if channel.guild_id is not None else None
    if component is not None:
        data: dict[str, Any] = component
    else:
        definition, is_guild = find_command(state, guild.id if guild else None, name)
        if guild_command is not None:
            is_guild = guild_command
        opts, resolved = build_options(state, guild, definition, options, subcommand, focused)
        command_id = int(definition["id"]) if definition else command_ids.setdefault(name, state.next_id())
        data = {"id": str(command_id), "name": name, "type": 1}
        if opts:
            data["options"] = opts
        if resolved:
            data["resolved"] = resolved
        if is_guild and guild is not None:
            data["guild_id"] = str(guild.id)
    iid = state.next_id()
    token = "aW50ZXJhY3Rpb24" + secrets.token_urlsafe(24)
    channel_data = channel.payload(state.users)
    payload: dict[str, Any] = {
        "id": str(iid),
        "application_id": str(state.application_id),
        "type": interaction_type,
        "data": data,
        "channel_id": str(channel.id),
        "channel": channel_data,
        "token": token,
        "version": 1,
        "locale": locale,
        "entitlements": [],
        "attachment_size_limit": ATTACHMENT_SIZE_LIMIT,
    }
    if message is not None:
        payload["message"] = message
    if guild is not None:
        member = guild.members.get(user.id)
        member_data = member.payload(user) if member else {"user": user.payload(), "roles": [], "flags": 0}
        member_data["permissions"] = str(state.member_permissions(guild, user.id))
        payload.update(
            guild_id=str(guild.id),
            guild_locale=guild.preferred_locale,
            member=member_data,
            app_permissions=str(state.member_permissions(guild, state.bot.id)),
            authorizing_integration_owners={"0": str(guild.id)},
            context=0,
        )
    else:
        payload.update(
            user=user.payload(),
            app_permissions="0",
            authorizing_integration_owners={"0": str(user.id)},
            context=1,
        )
    return InteractionRecord(
        id=iid,
        token=token,
        type=interaction_type,
        channel_id=channel.id,
        guild_id=guild.id if guild else None,
        user_id=user.id,
        name=name,
        payload=payload,
    )
