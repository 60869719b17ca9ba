"""Guild, member, role, ban and application-command routes (Discord's hierarchy enforced)."""

from __future__ import annotations

import datetime
from typing import Any

from discord_emulator.core.events import (
    INTENT_GUILD_MEMBERS,
    INTENT_GUILD_MODERATION,
)
from discord_emulator.core.messages import ApiError, form_error, missing_permissions, not_found
from discord_emulator.core.models import Guild, Perm
from discord_emulator.core.payloads import guild_payload
from discord_emulator.transports.rest.base import Call, RestBase

MAX_TIMEOUT = datetime.timedelta(days=28)


class GuildRoutes(RestBase):
    # -- guilds / members --------------------------------------------------------------------------
    async def get_guild(self, call: Call) -> tuple[int, Any]:
        guild = self._guild(call)
        data = guild_payload(guild)
        if call.query.get("with_counts") in ("true", "1"):
            data.update(approximate_member_count=len(guild.members), approximate_presence_count=0)
        return 200, data

    async def guild_channels(self, call: Call) -> tuple[int, Any]:
        guild = self._guild(call)
        return 200, [self.world.channels[c].payload() for c in guild.channel_ids]

    async def guild_roles(self, call: Call) -> tuple[int, Any]:
        return 200, [r.payload() for r in self._guild(call).roles.values()]

    async def list_members(self, call: Call) -> tuple[int, Any]:
        guild = self._guild(call)
        limit = max(1, min(1000, int(call.query.get("limit", 1))))
        after = int(call.query.get("after", 0))
        members = sorted((m for m in guild.members.values() if m.user_id > after), key=lambda m: m.user_id)
        return 200, [m.payload(self.world.users[m.user_id]) for m in members[:limit]]

    async def search_members(self, call: Call) -> tuple[int, Any]:
        """Members whose username, global name or nickname starts with ``query`` (case-insensitive),
        at most ``limit`` (1-1000, default 1): what Discord's member search answers, and the REST road
        a bot can take instead of a gateway member query."""
        guild = self._guild(call)
        query = call.query.get("query")
        if query is None:
            raise form_error("query", "BASE_TYPE_REQUIRED", "This field is required")
        if not 1 <= len(query) <= 100:
            raise form_error("query", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
        raw_limit = call.query.get("limit", "1")
        if not raw_limit.isascii() or not raw_limit.isdigit() or not 1 <= int(raw_limit) <= 1000:
            raise form_error("limit", "NUMBER_TYPE_MAX", "int value should be between 1 and 1000.")
        needle = query.casefold()
        found = []
        for member in guild.members.values():
            user = self.world.users[member.user_id]
            names = (user.username, user.global_name, member.nick)
            if any(name is not None and name.casefold().startswith(needle) for name in names):
                found.append(member.payload(user))
                if len(found) == int(raw_limit):
                    break
        return 200, found

    async def get_member(self, call: Call) -> tuple[int, Any]:
        guild = self._guild(call)
        member = self._member(guild, call)
        return 200, member.payload(self.world.users[member.user_id])

    async def edit_member(self, call: Call) -> tuple[int, Any]:
        guild = self._guild(call)
        member = self._member(guild, call)
        body = call.body()
        changes: dict[str, Any] = {}
        if "communication_disabled_until" in body:
            self._require(guild, Perm.MODERATE_MEMBERS)
            self._require_above(guild, member.user_id)
            if self.world.member_permissions(guild, member.user_id) & Perm.ADMINISTRATOR:
                raise missing_permissions()
            until = body["communication_disabled_until"]
            if until is not None:
                try:
                    when = datetime.datetime.fromisoformat(str(until))
                except ValueError:
                    raise ApiError(400, 50035, "Invalid Form Body") from None
                if when.tzinfo is None:
                    when = when.replace(tzinfo=datetime.UTC)
                if when - datetime.datetime.now(datetime.UTC) > MAX_TIMEOUT + datetime.timedelta(seconds=60):
                    raise form_error("communication_disabled_until", "BASE_TYPE_BAD_TIME", "Timeout too long")
                until = when.isoformat()
            member.communication_disabled_until = until
            changes["communication_disabled_until"] = until
        if "nick" in body:
            if member.user_id != self.world.bot.id:
                self._require(guild, Perm.MANAGE_NICKNAMES)
                self._require_above(guild, member.user_id)
            member.nick = body["nick"] or None
            changes["nick"] = member.nick
        if "roles" in body:
            self._require(guild, Perm.MANAGE_ROLES)
            new_roles = [int(r) for r in body["roles"] or []]
            bot_top = self.world.top_role_position(guild, self.world.bot.id)
            for rid in set(new_roles) ^ set(member.roles):
                role = guild.roles.get(rid)
                if role is None:
                    raise not_found("Role", 10011)
                if role.position >= bot_top or role.managed:
                    raise missing_permissions()
            member.roles = new_roles
            changes["roles"] = [str(r) for r in new_roles]
        self._audit(guild, "member_update", member.user_id, call, changes=changes)
        await self.world.emit(
            "GUILD_MEMBER_UPDATE",
            self._member_event(guild, member),
            guild_id=guild.id,
            intent=INTENT_GUILD_MEMBERS,
        )
        return 200, member.payload(self.world.users[member.user_id])

    async def _change_role(self, call: Call, *, add: bool) -> tuple[int, Any]:
        guild = self._guild(call)
        member = self._member(guild, call)
        role = guild.roles.get(call.id("role_id", "Role", 10011))
        if role is None:
            raise not_found("Role", 10011)
        self._require(guild, Perm.MANAGE_ROLES)
        if role.position >= self.world.top_role_position(guild, self.world.bot.id) or role.managed:
            raise missing_permissions()
        if add and role.id not in member.roles:
            member.roles.append(role.id)
        elif not add and role.id in member.roles:
            member.roles.remove(role.id)
        self._audit(guild, "role_add" if add else "role_remove", member.user_id, call, role_id=role.id)
        await self.world.emit(
            "GUILD_MEMBER_UPDATE",
            self._member_event(guild, member),
            guild_id=guild.id,
            intent=INTENT_GUILD_MEMBERS,
        )
        return 204, None

    async def add_role(self, call: Call) -> tuple[int, Any]:
        return await self._change_role(call, add=True)

    async def remove_role(self, call: Call) -> tuple[int, Any]:
        return await self._change_role(call, add=False)

    async def _remove_member(self, guild: Guild, user_id: int) -> None:
        guild.members.pop(user_id, None)
        data = {"guild_id": str(guild.id), "user": self.world.users[user_id].payload()}
        await self.world.emit("GUILD_MEMBER_REMOVE", data, guild_id=guild.id, intent=INTENT_GUILD_MEMBERS)

    async def kick(self, call: Call) -> tuple[int, Any]:
        guild = self._guild(call)
        member = self._member(guild, call)
        self._require(guild, Perm.KICK_MEMBERS)
        self._require_above(guild, member.user_id)
        self._audit(guild, "kick", member.user_id, call)
        await self._remove_member(guild, member.user_id)
        return 204, None

    async def list_bans(self, call: Call) -> tuple[int, Any]:
        guild = self._guild(call)
        self._require(guild, Perm.BAN_MEMBERS)
        return 200, [
            {"reason": reason, "user": self.world.users[uid].payload()}
            for uid, reason in guild.bans.items()
            if uid in self.world.users
        ]

    async def get_ban(self, call: Call) -> tuple[int, Any]:
        guild = self._guild(call)
        self._require(guild, Perm.BAN_MEMBERS)
        uid = call.id("user_id", "Ban", 10026)
        if uid not in guild.bans:
            raise not_found("Ban", 10026)
        return 200, {"reason": guild.bans[uid], "user": self.world.users[uid].payload()}

    async def ban(self, call: Call) -> tuple[int, Any]:
        guild = self._guild(call)
        uid = call.id("user_id", "User", 10013)
        user = self.world.users.get(uid)
        if user is None:
            raise not_found("User", 10013)
        self._require(guild, Perm.BAN_MEMBERS)
        if uid in guild.members:
            self._require_above(guild, uid)
        guild.bans[uid] = call.reason
        self._audit(
            guild, "ban", uid, call, delete_message_seconds=call.body().get("delete_message_seconds", 0)
        )
        await self.world.emit(
            "GUILD_BAN_ADD",
            {"guild_id": str(guild.id), "user": user.payload()},
            guild_id=guild.id,
            intent=INTENT_GUILD_MODERATION,
        )
        if uid in guild.members:
            await self._remove_member(guild, uid)
        return 204, None

    async def unban(self, call: Call) -> tuple[int, Any]:
        guild = self._guild(call)
        self._require(guild, Perm.BAN_MEMBERS)
        uid = call.id("user_id", "Ban", 10026)
        if guild.bans.pop(uid, "missing") == "missing":
            raise not_found("Ban", 10026)
        self._audit(guild, "unban", uid, call)
        await self.world.emit(
            "GUILD_BAN_REMOVE",
            {"guild_id": str(guild.id), "user": self.world.users[uid].payload()},
            guild_id=guild.id,
            intent=INTENT_GUILD_MODERATION,
        )
        return 204, None

    # -- application commands ----------------------------------------------------------------------
    def _command_table(self, call: Call) -> dict[str, dict[str, Any]]:
        if call.params.get("application_id") != str(self.world.application_id):
            raise not_found("Application", 10002)
        if "guild_id" in call.params:
            guild = self._guild(call)
            return self.world.guild_commands.setdefault(guild.id, {})
        return self.world.global_commands

    def _command_payload(self, call: Call, spec: Any, existing: dict[str, Any] | None) -> dict[str, Any]:
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
            raise form_error("name", "BASE_TYPE_REQUIRED", "This field is required")
        command: dict[str, Any] = {
            "type": 1,
            "description": "",
            "options": [],
            "default_member_permissions": None,
            "dm_permission": True,
            "nsfw": False,
            **spec,
        }
        command["id"] = existing["id"] if existing else str(self.world.next_id())
        command["application_id"] = str(self.world.application_id)
        command["version"] = str(self.world.next_id())
        if "guild_id" in call.params:
            command["guild_id"] = call.params["guild_id"]
        return command

    async def get_commands(self, call: Call) -> tuple[int, Any]:
        return 200, list(self._command_table(call).values())

    async def put_commands(self, call: Call) -> tuple[int, Any]:
        table = self._command_table(call)
        specs = call.json if isinstance(call.json, list) else None
        if specs is None:
            raise ApiError(400, 50035, "Invalid Form Body")
        if len(specs) > 100:
            raise ApiError(400, 30032, "Maximum number of application commands reached (100)")
        new = {}
        for spec in specs:
            existing = table.get(str(spec.get("name"))) if isinstance(spec, dict) else None
            command = self._command_payload(call, spec, existing)
            new[command["name"]] = command
        table.clear()
        table.update(new)
        return 200, list(new.values())

    async def upsert_command(self, call: Call) -> tuple[int, Any]:
        table = self._command_table(call)
        spec = call.body()
        existing = table.get(str(spec.get("name")))
        command = self._command_payload(call, spec, existing)
        table[command["name"]] = command
        return (200 if existing else 201), command

    def _find_command(self, table: dict[str, dict[str, Any]], call: Call) -> dict[str, Any]:
        cid = call.params["command_id"]
        command = next((c for c in table.values() if c["id"] == cid), None)
        if command is None:
            raise not_found("application command", 10063)
        return command

    async def get_command(self, call: Call) -> tuple[int, Any]:
        return 200, self._find_command(self._command_table(call), call)

    async def edit_command(self, call: Call) -> tuple[int, Any]:
        table = self._command_table(call)
        command = self._find_command(table, call)
        del table[command["name"]]
        updated = self._command_payload(call, {**command, **call.body()}, command)
        table[updated["name"]] = updated
        return 200, updated

    async def delete_command(self, call: Call) -> tuple[int, Any]:
        table = self._command_table(call)
        command = self._find_command(table, call)
        del table[command["name"]]
        return 204, None
