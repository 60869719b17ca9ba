"""What a user is told when a command fails, and what the log says about it.

Every failure is answered in the configured language with a short clear message — never a
traceback or an internal detail. User mistakes (unknown command, bad argument, missing permission,
cooldown) are logged at DEBUG; failures of the bot (an exception, a :class:`CommandFailed` a command
raised, a storage error) are logged for the operators and counted as ``outcome="error"``.
"""

from __future__ import annotations

import logging
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from comet.core.i18n import Translator
from comet.core.storage import StorageError
from instrumentation import recorder
from instrumentation.failures import Answered, CommandFailed
from instrumentation.invocations import outcome_of

log = logging.getLogger("comet.core.bot")

#: Longest piece of a user's own text echoed back in an error message.
ECHO_LIMIT = 32


def log_failure(command: str | None, error: BaseException) -> None:
    outcome = outcome_of(error)
    # The flight recorder's id of this invocation (the exemplar, ``!trace <id>``), when it runs in one.
    trace_id = recorder.current_id()
    trace = f" (trace {trace_id})" if trace_id is not None else ""
    if isinstance(error, StorageError):
        # An outage of the database, not a bug: one line, no stack.
        log.error("Command %s failed: %s%s", command or "unknown", error, trace)
    elif isinstance(error, CommandFailed):
        cause = error.cause
        detail = f"{type(cause).__name__}: {cause}" if cause is not None else error.user_message
        log.warning("Command %s failed and said so: %s%s", command or "unknown", detail, trace)
    elif outcome == "error":
        # The traceback goes to the log (scrubbed of secrets by the logging filter), never to the user.
        log.error("Command %s failed%s", command or "unknown", trace, exc_info=error)
    else:
        log.debug("Command %s refused: %s (%s)", command or "unknown", type(error).__name__, outcome)


# -- user-facing error text -----------------------------------------------------------------------------


def _usage(ctx: commands.Context[Any] | None, interaction: discord.Interaction[Any] | None) -> str:
    if ctx is not None and ctx.command is not None:
        prefix = "/" if ctx.interaction is not None else ctx.clean_prefix
        signature = ctx.command.signature
        return f"{prefix}{ctx.command.qualified_name}{' ' + signature if signature else ''}"
    command = interaction.command if interaction is not None else None
    if command is not None and isinstance(command, app_commands.Command):
        params = " ".join(
            f"<{p.display_name}>" if p.required else f"[{p.display_name}]" for p in command.parameters
        )
        return f"/{command.qualified_name}{' ' + params if params else ''}"
    return "help"


def echo(text: str | None) -> str:
    """A user's own text, shortened and made inert for an error message (no markdown, no mentions)."""
    cleaned = discord.utils.escape_mentions(discord.utils.escape_markdown(text or ""))
    cleaned = cleaned.replace("`", "'")
    return cleaned[:ECHO_LIMIT] + ("…" if len(cleaned) > ECHO_LIMIT else "")


def _permission_list(names: list[str]) -> str:
    return ", ".join(f"`{name}`" for name in names) or "-"


def describe_error(
    i18n: Translator,
    error: BaseException,
    *,
    ctx: commands.Context[Any] | None = None,
    interaction: discord.Interaction[Any] | None = None,
) -> str:
    """The message a user sees for a failed command (``error`` already unwrapped)."""
    t = i18n.t
    if isinstance(error, Answered):
        return error.user_message
    if isinstance(error, StorageError):
        return t(error.message_key)
    usage = _usage(ctx, interaction)
    if isinstance(error, commands.CommandNotFound):
        prefix = ctx.clean_prefix if ctx is not None else "!"
        invoked = ctx.invoked_with if ctx is not None else ""
        return t("core.error.not_found", command=echo(invoked), prefix=prefix)
    if isinstance(error, app_commands.CommandNotFound):
        return t("core.error.not_found_slash")
    if isinstance(error, commands.CommandOnCooldown | app_commands.CommandOnCooldown):
        return t("core.error.cooldown", retry_after=max(0.1, error.retry_after))
    if isinstance(error, commands.MaxConcurrencyReached):
        return t("core.error.max_concurrency")
    if isinstance(error, commands.MissingRequiredArgument | commands.MissingRequiredAttachment):
        return t("core.error.missing_argument", param=error.param.name, usage=usage)
    if isinstance(error, commands.TooManyArguments):
        return t("core.error.too_many_arguments", usage=usage)
    if isinstance(error, commands.MemberNotFound | commands.UserNotFound):
        return t("core.error.member_not_found", argument=echo(error.argument), usage=usage)
    if isinstance(error, commands.UserInputError | commands.ConversionError | app_commands.TransformerError):
        param = ctx.current_parameter if ctx is not None else None
        if param is not None:
            return t("core.error.bad_argument", param=param.name, usage=usage)
        return t("core.error.bad_input", usage=usage)
    if isinstance(error, commands.NotOwner):
        return t("core.error.not_owner")
    if isinstance(error, commands.MissingPermissions | app_commands.MissingPermissions):
        return t("core.error.missing_permissions", permissions=_permission_list(error.missing_permissions))
    if isinstance(error, commands.BotMissingPermissions | app_commands.BotMissingPermissions):
        return t(
            "core.error.bot_missing_permissions", permissions=_permission_list(error.missing_permissions)
        )
    if isinstance(error, commands.MissingRole | app_commands.MissingRole):
        return t("core.error.missing_role", role=echo(str(error.missing_role)))
    if isinstance(error, commands.MissingAnyRole | app_commands.MissingAnyRole):
        return t("core.error.missing_role", role=", ".join(echo(str(r)) for r in error.missing_roles))
    if isinstance(error, commands.NoPrivateMessage | app_commands.NoPrivateMessage):
        return t("core.error.no_private_message")
    if isinstance(error, commands.PrivateMessageOnly):
        return t("core.error.private_message_only")
    if isinstance(error, commands.DisabledCommand):
        return t("core.error.disabled")
    if isinstance(error, commands.CheckFailure | app_commands.CheckFailure):
        return t("core.error.check_failed")
    if isinstance(error, discord.HTTPException):
        return t("core.error.discord")
    return t("core.error.generic")
