"""What every feature cog shares: the typed bot, its translator, no-mention replies, and typed
command decorators.

Cogs run only on ``CometBot``, so they reach its settings, telemetry and translator as typed
attributes (mypy checks them) instead of ``getattr`` with fallbacks. The decorators are discord.py's
own, typed for methods: mypy cannot solve discord.py's union of "method or function" callbacks
(``Callable[Concatenate[CogT, ContextT, P], ...] | Callable[Concatenate[ContextT, P], ...]``) and
reports every hybrid command as an argument of type ``Never``; these signatures name the method form
only, and the objects returned are discord.py's unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, Concatenate, ParamSpec, TypeVar, cast, overload

import discord
from discord.ext import commands

from comet.core.bot import CometBot

CogT = TypeVar("CogT", bound=commands.Cog)
P = ParamSpec("P")
T = TypeVar("T")

Context = commands.Context[Any]
Method = Callable[Concatenate[CogT, Context, P], Coroutine[Any, Any, T]]

#: Replies never ping: a member's text echoed back must not mention @everyone or anyone else.
NO_MENTIONS = discord.AllowedMentions.none()


class CometCog(commands.Cog):
    """A cog of C.O.M.E.T.'s: ``self.bot`` is the ``CometBot`` it was loaded on."""

    def __init__(self, bot: CometBot) -> None:
        self.bot = bot

    def t(self, key: str, **kwargs: Any) -> str:
        """The message ``key`` in the bot's language."""
        return self.bot.i18n.t(key, **kwargs)

    @property
    def locale(self) -> str:
        return self.bot.i18n.locale


def comet_bot(bot: commands.Bot) -> CometBot:
    """The bot an extension's ``setup`` is given, as the ``CometBot`` the features need."""
    if not isinstance(bot, CometBot):
        raise TypeError(f"C.O.M.E.T.'s features run on CometBot, not on {type(bot).__name__}")
    return bot


def hybrid_command(
    name: str = discord.utils.MISSING, **attrs: Any
) -> Callable[[Method[CogT, P, T]], commands.HybridCommand[CogT, P, T]]:
    decorator = commands.hybrid_command(name, **attrs)
    return cast("Callable[[Method[CogT, P, T]], commands.HybridCommand[CogT, P, T]]", decorator)


def hybrid_group(
    name: str = discord.utils.MISSING, **attrs: Any
) -> Callable[[Method[CogT, P, T]], commands.HybridGroup[CogT, P, T]]:
    decorator = commands.hybrid_group(name, **attrs)
    return cast("Callable[[Method[CogT, P, T]], commands.HybridGroup[CogT, P, T]]", decorator)


@overload
def subcommand(
    group: commands.HybridGroup[Any, ..., Any], name: str = ..., **attrs: Any
) -> Callable[[Method[CogT, P, T]], commands.HybridCommand[CogT, P, T]]: ...


@overload
def subcommand(
    group: commands.Group[Any, ..., Any], name: str = ..., **attrs: Any
) -> Callable[[Method[CogT, P, T]], commands.Command[CogT, P, T]]: ...


def subcommand(group: commands.Group[Any, ..., Any], name: str = discord.utils.MISSING, **attrs: Any) -> Any:
    """``@group.command(...)``, typed: a hybrid group's subcommands are hybrid commands."""
    return group.command(name, **attrs)
