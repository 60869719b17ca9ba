"""Failures a command answers itself, counted as failures rather than successes.

A command that catches an exception and tells its user "that did not work" returns normally, so
discord.py dispatches ``command_completion`` and the invocation would count as a success: the
error ratio and its alert would never see, say, a locked database. Raise :class:`CommandFailed`
instead (or let the exception propagate): the bot's error handler sends ``user_message`` and the
hooks count the invocation with ``outcome="error"`` and ``error=<the cause's class>``. A refusal
that is the user's limit rather than the bot's failure is :class:`CommandRefused`
(``check_failed``), an argument out of range :class:`InvalidArgument` (``bad_argument``): user
mistakes stay apart from failures in every metric.

Exception classes of the application's own (a storage error, say) become ``error`` label values
once registered with :func:`allow_error_class`; any other class counts as ``other``, so the label
stays bounded by the code, never by data.
"""

from __future__ import annotations

from discord.ext import commands

from instrumentation.metrics import ERROR_NAMES, error_label


class Answered:
    """An exception that carries the (already localized) text the user is told."""

    user_message: str


class CommandFailed(Answered, commands.CommandError):
    """The command could not do what was asked (``outcome="error"``); ``cause`` names the class."""

    def __init__(self, user_message: str, *, cause: BaseException | None = None) -> None:
        super().__init__(user_message)
        self.user_message = user_message
        self.cause = cause


class CommandRefused(Answered, commands.CheckFailure):
    """The invoker may not do this here (``outcome="check_failed"``), a user's limit, not a failure."""

    def __init__(self, user_message: str) -> None:
        super().__init__(user_message)
        self.user_message = user_message


class InvalidArgument(Answered, commands.BadArgument):
    """An argument the command cannot accept (``outcome="bad_argument"``), explained to the user."""

    def __init__(self, user_message: str) -> None:
        super().__init__(user_message)
        self.user_message = user_message


def allow_error_class(cls: type[BaseException]) -> None:
    """Let ``cls.__name__`` be an ``error`` label value (call at import, for a class of your own)."""
    ERROR_NAMES.add(cls.__name__)


def failure_label(error: BaseException) -> str:
    """The ``error`` label of a failed invocation: the cause's class for a :class:`CommandFailed`."""
    if isinstance(error, CommandFailed) and error.cause is not None:
        return error_label(error.cause)
    return error_label(error)
