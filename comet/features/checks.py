"""Command checks shared by every cog: owner (application owner/team plus configured ids), moderator.

Both work on prefix, hybrid and (through a hybrid's Context) slash invocations, and fail with
discord.py's own exceptions, so the global error handler answers them in the user's locale and the
instrumentation counts them as ``check_failed``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import discord
from discord.ext import commands

T = TypeVar("T")

#: Permissions any one of which makes a member a moderator (besides the configured role).
MODERATOR_PERMISSIONS = ("manage_messages", "moderate_members", "kick_members", "ban_members")


async def is_owner_user(bot: commands.Bot, user: discord.abc.User) -> bool:
    """True for the application's owner / team members and for ``settings.owner_ids``."""
    settings = getattr(bot, "settings", None)
    if settings is not None and user.id in settings.owner_ids:
        return True
    return await bot.is_owner(user)


def is_owner() -> Callable[[T], T]:
    """``@is_owner()``: like ``commands.is_owner()`` but also accepting ``COMET_OWNER_IDS``."""

    async def predicate(ctx: commands.Context[Any]) -> bool:
        if await is_owner_user(ctx.bot, ctx.author):
            return True
        raise commands.NotOwner("You do not own this bot.")

    return commands.check(predicate)


def member_is_moderator(member: discord.Member, settings: Any = None, *permissions: str) -> bool:
    """The member has one of ``permissions`` (default: any moderator permission) or the moderator role."""
    wanted = permissions or MODERATOR_PERMISSIONS
    perms = member.guild_permissions
    if perms.administrator or any(getattr(perms, name, False) for name in wanted):
        return True
    role_name = getattr(settings, "moderator_role", "Moderator")
    return any(role.name == role_name for role in member.roles)


def is_moderator(*permissions: str) -> Callable[[T], T]:
    """``@is_moderator()`` or ``@is_moderator("moderate_members")``: Discord permission or moderator role.

    Owners pass too. In DMs the check fails with ``NoPrivateMessage``; otherwise with
    ``MissingPermissions`` naming the permissions wanted.
    """
    for name in permissions:
        if name not in discord.Permissions.VALID_FLAGS:
            raise ValueError(f"unknown permission {name!r}")

    async def predicate(ctx: commands.Context[Any]) -> bool:
        if ctx.guild is None or not isinstance(ctx.author, discord.Member):
            raise commands.NoPrivateMessage()
        settings = getattr(ctx.bot, "settings", None)
        if member_is_moderator(ctx.author, settings, *permissions):
            return True
        if await is_owner_user(ctx.bot, ctx.author):
            return True
        raise commands.MissingPermissions(list(permissions or MODERATOR_PERMISSIONS[:1]))

    return commands.check(predicate)
