"""One command invocation as the instrumentation notes it, and what its exception says about it.

:func:`outcome_of` is the ``outcome`` label of an invocation that failed, once :func:`unwrap_error`
has taken off discord.py's invoke wrappers. The bot's error handler uses the same two functions to
decide what it logs as a failure, so its log and the counters agree on what failed.
"""

from __future__ import annotations

from typing import NamedTuple

from discord import app_commands
from discord.ext import commands

__all__ = ["Invocation", "outcome_of", "unwrap_error"]


class Invocation(NamedTuple):
    """One ended (or refused, or cancelled) invocation, kept until the next batch is written.

    A NamedTuple rather than a frozen dataclass: it is built once per command on the hot path, and
    measured here a NamedTuple costs about a third of a frozen dataclass (whose ``__init__`` goes
    through ``object.__setattr__`` for every field)."""

    hook: str  #: the hook that noted it: a failure to write it is counted under this label
    command: str | None  #: the qualified name discord.py gave; None when no command was resolved
    kind: str  #: ``prefix`` or ``slash``
    outcome: str
    duration: float  #: seconds, measured at the event (0 when the clock never started)
    error: BaseException | None  #: the unwrapped exception, for ``comet_command_errors_total``
    trace_id: str | None = None  #: the flight recorder's id, when it kept the invocation


_WRAPPERS: tuple[type[BaseException], ...] = (
    commands.CommandInvokeError,
    commands.HybridCommandError,
    app_commands.CommandInvokeError,
)


def unwrap_error(error: BaseException) -> BaseException:
    """The exception behind discord.py's invoke wrappers (CommandInvokeError, HybridCommandError, ...)."""
    for _ in range(8):  # wrappers nest at most a few levels; the bound guards against cycles
        if not isinstance(error, _WRAPPERS):
            break
        original = getattr(error, "original", None)
        if not isinstance(original, BaseException):
            break
        error = original
    return error


def outcome_of(error: BaseException) -> str:
    """The ``outcome`` label of a failed invocation (the error already unwrapped)."""
    if isinstance(error, commands.CommandNotFound | app_commands.CommandNotFound):
        return "not_found"
    if isinstance(
        error, commands.CommandOnCooldown | app_commands.CommandOnCooldown | commands.MaxConcurrencyReached
    ):
        return "cooldown"
    if isinstance(error, commands.CheckFailure | app_commands.CheckFailure | commands.DisabledCommand):
        return "check_failed"
    if isinstance(error, commands.UserInputError | commands.ConversionError | app_commands.TransformerError):
        return "bad_argument"
    return "error"
