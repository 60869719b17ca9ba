"""Which commands a bot has, and the kinds each is invoked as: what the command series are
pre-initialised for (a prefix-only command gets no slash series, a plain app command no prefix
series), read from discord.py's own command objects."""

from __future__ import annotations

from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from instrumentation.metrics import COMMAND_KINDS
from instrumentation.taps import AnyBot


def command_kinds(command: object) -> tuple[str, ...]:
    """The kinds a discord.py command object is invoked as: a hybrid ``prefix`` and ``slash``, a
    plain ``commands.Command`` ``prefix``, an app command or context menu ``slash``."""
    if isinstance(command, commands.HybridGroup):  # as a slash command only through its fallback
        return COMMAND_KINDS if getattr(command, "fallback", None) else ("prefix",)
    if isinstance(command, commands.HybridCommand):
        return COMMAND_KINDS
    if isinstance(command, commands.Command):
        return ("prefix",)
    if isinstance(command, app_commands.Group):  # only its subcommands run
        return ()
    if isinstance(command, (app_commands.Command, app_commands.ContextMenu)):
        return ("slash",)
    return COMMAND_KINDS


def commands_with_kinds(bot: AnyBot) -> list[tuple[str, tuple[str, ...]]]:
    """Every command of ``bot`` (prefix, hybrid, app commands of every guild, context menus) as
    ``(qualified_name, kinds)`` pairs for :meth:`Metrics.register_commands`, sorted by name."""
    kinds: dict[str, set[str]] = {}
    for command in bot.walk_commands():
        kinds.setdefault(command.qualified_name, set()).update(command_kinds(command))
    tree = bot.tree
    guilds: list[discord.abc.Snowflake | None] = [None]
    guilds.extend(discord.Object(gid) for gid in getattr(tree, "_guild_commands", {}))
    for guild in guilds:
        found: list[Any] = list(tree.walk_commands(guild=guild))
        for menu_type in (discord.AppCommandType.message, discord.AppCommandType.user):
            found.extend(tree.get_commands(guild=guild, type=menu_type))
        for app_command in found:
            kinds.setdefault(app_command.qualified_name, set()).update(command_kinds(app_command))
    return [(name, tuple(k for k in COMMAND_KINDS if k in kinds[name])) for name in sorted(kinds)]


def command_names(bot: AnyBot) -> set[str]:
    """Qualified names of every prefix/hybrid command and every app command of ``bot``'s tree."""
    return {name for name, _ in commands_with_kinds(bot)}
