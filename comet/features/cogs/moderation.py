"""Moderation: ``warn``, ``warnings``, ``clearwarns``, ``timeout``, ``purge`` and the anti-spam rule.

Only members with the matching Discord permission (``moderate_members`` for warnings and timeouts,
``manage_messages`` for purge) or the configured moderator role may use them (``comet.features.checks``).
Every action is recorded in the Store and posted to the mod-log channel
(``settings.mod_log_channel``). The anti-spam listener times out a member who sends
``antispam_messages`` messages within ``antispam_seconds`` and counts it in
``comet_automod_actions_total{action="timeout"}``.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from comet.core.storage import StorageError, store_of
from comet.features.automod import SpamDetector
from comet.features.base import CometCog, comet_bot, hybrid_command
from comet.features.checks import is_moderator, member_is_moderator
from instrumentation.failures import CommandFailed, CommandRefused, InvalidArgument

if TYPE_CHECKING:
    from comet.core.bot import CometBot

log = logging.getLogger(__name__)

NO_MENTIONS = discord.AllowedMentions.none()
#: Discord refuses member timeouts longer than 28 days.
MAX_TIMEOUT = timedelta(days=28)
#: Durations are read up to this bound (about 27 years); a longer one reads as the bound, which is
#: refused as too long like any other, so no input can overflow timedelta (whose limit is ~2.7M years:
#: "9999999w" twenty times is beyond it). ``format_duration`` shows it as "at least 10000d".
DURATION_LIMIT = timedelta(days=10_000)
_LIMIT_SECONDS = int(DURATION_LIMIT.total_seconds())
#: Bulk delete takes 100 messages per request; discord.py's purge chunks larger counts.
MAX_PURGE = 1000
REASON_LIMIT = 400

_UNITS = {
    "s": 1, "sec": 1, "秒": 1,
    "m": 60, "min": 60, "分": 60,
    "h": 3600, "時間": 3600,
    "d": 86400, "日": 86400,
    "w": 604800, "週": 604800, "週間": 604800,
}  # fmt: skip
_PART = re.compile(r"(\d{1,7})(週間|時間|sec|min|[smhdw秒分日週])")


def parse_duration(text: str) -> timedelta | None:
    """``10m``, ``1h30m``, ``2d``, ``90s``, ``1w``, ``10分``, ``1時間30分`` -> timedelta; None if unreadable.

    Full-width digits and spaces are accepted; a bare number (no unit) is refused as ambiguous.
    Never raises: anything longer than :data:`DURATION_LIMIT` saturates at it.
    """
    s = unicodedata.normalize("NFKC", text).strip().lower().replace(" ", "")
    if not s:
        return None
    total = 0
    position = 0
    for match in _PART.finditer(s):
        if match.start() != position:
            return None
        total = min(total + int(match.group(1)) * _UNITS[match.group(2)], _LIMIT_SECONDS)
        position = match.end()
    if position != len(s) or total <= 0:
        return None
    return timedelta(seconds=total)


def format_duration(delta: timedelta, t: Any) -> str:
    """``1h 30m`` / ``1時間30分`` (the unit words come from the catalogue).

    :data:`DURATION_LIMIT` or more shows as ``at least 10000d`` / ``10000日以上``: what
    :func:`parse_duration` read may have been cut at the limit.
    """
    if delta >= DURATION_LIMIT:
        return str(t("mod.duration.at_least", duration=_format_seconds(_LIMIT_SECONDS, t)))
    return _format_seconds(int(delta.total_seconds()), t)


def _format_seconds(seconds: int, t: Any) -> str:
    parts: list[str] = []
    for key, size in (("days", 86400), ("hours", 3600), ("minutes", 60), ("seconds", 1)):
        amount, seconds = divmod(seconds, size)
        if amount:
            parts.append(str(t(f"mod.duration.{key}", n=amount)))
    return str(t("mod.duration.separator")).join(parts) or str(t("mod.duration.seconds", n=0))


def _clip(text: str | None, limit: int = REASON_LIMIT) -> str | None:
    if text is None:
        return None
    text = text.strip()
    return text[:limit] if text else None


def _who(user: discord.abc.User) -> str:
    return f"{user.display_name} ({user.id})"


class ModerationCog(CometCog, name="Moderation"):
    """Warnings, timeouts, purge, the mod-log and the anti-spam rule."""

    def __init__(self, bot: CometBot) -> None:
        super().__init__(bot)
        settings = bot.settings
        self.spam = SpamDetector(settings.antispam_messages, settings.antispam_seconds)
        self.spam_timeout = timedelta(seconds=settings.antispam_timeout_seconds)

    # -- helpers ------------------------------------------------------------------------------

    def mod_log_channel(self, guild: discord.Guild) -> discord.TextChannel | None:
        name = self.bot.settings.mod_log_channel
        return discord.utils.get(guild.text_channels, name=name)

    async def post_mod_log(self, guild: discord.Guild, text: str) -> bool:
        """Post ``text`` to the guild's mod-log channel; a missing channel or refusal is logged only."""
        channel = self.mod_log_channel(guild)
        if channel is None:
            log.warning("mod-log channel not found in guild %s; the action is only in the database", guild.id)
            return False
        try:
            await channel.send(text, allowed_mentions=NO_MENTIONS)
        except discord.HTTPException as exc:
            log.warning(
                "could not post to mod-log in guild %s: %s %s", guild.id, type(exc).__name__, exc.status
            )
            return False
        return True

    def target_problem(self, ctx: commands.Context[Any], member: discord.Member) -> str | None:
        """Why ``member`` cannot be acted on by the invoking moderator (an i18n text), or None."""
        author = ctx.author
        if member.id == author.id:
            return self.t("mod.target.self")
        if member.bot:
            return self.t("mod.target.bot")
        guild = ctx.guild
        assert guild is not None
        if isinstance(author, discord.Member) and author.id != guild.owner_id:
            if member.id == guild.owner_id or member.top_role >= author.top_role:
                return self.t("mod.target.higher", member=member.display_name)
        return None

    def reason_text(self, reason: str | None) -> str:
        return reason or self.t("mod.no_reason")

    # -- warnings -----------------------------------------------------------------------------

    @hybrid_command(name="warn")
    @commands.guild_only()
    @is_moderator("moderate_members")
    @app_commands.describe(member="Member / メンバー", reason="Reason / 理由")
    async def warn(self, ctx: commands.Context[Any], member: discord.Member, *, reason: str) -> None:
        """メンバーに警告 / Warn a member."""
        assert ctx.guild is not None
        problem = self.target_problem(ctx, member)
        if problem is not None:
            raise CommandRefused(problem)
        text = self.reason_text(_clip(reason))
        store = store_of(self.bot)
        await store.add_warning(ctx.guild.id, member.id, ctx.author.id, text)
        count = len(await store.list_warnings(ctx.guild.id, member.id))
        # The mod-log first: once the moderator sees the confirmation, the log has the entry.
        await self.post_mod_log(
            ctx.guild, self.t("mod.log.warn", target=_who(member), moderator=_who(ctx.author), reason=text)
        )
        await ctx.send(
            self.t("mod.warn.done", member=member.display_name, count=count, reason=text),
            allowed_mentions=NO_MENTIONS,
        )

    @hybrid_command(name="warnings")
    @commands.guild_only()
    @is_moderator("moderate_members")
    @app_commands.describe(member="Member / メンバー")
    async def warnings(self, ctx: commands.Context[Any], member: discord.Member) -> None:
        """警告の一覧 / List a member's warnings."""
        assert ctx.guild is not None
        records = await store_of(self.bot).list_warnings(ctx.guild.id, member.id)
        if not records:
            await ctx.send(
                self.t("mod.warnings.none", member=member.display_name), allowed_mentions=NO_MENTIONS
            )
            return
        lines = [self.t("mod.warnings.title", member=member.display_name, count=len(records))]
        for record in records[-20:]:
            moderator = ctx.guild.get_member(record.moderator_id)
            when = discord.utils.format_dt(datetime.fromisoformat(record.created_at), "d")
            lines.append(
                self.t(
                    "mod.warnings.line",
                    id=record.id,
                    date=when,
                    reason=record.reason,
                    moderator=moderator.display_name if moderator else record.moderator_id,
                )
            )
        await ctx.send("\n".join(lines)[:2000], allowed_mentions=NO_MENTIONS)

    @hybrid_command(name="clearwarns")
    @commands.guild_only()
    @is_moderator("moderate_members")
    @app_commands.describe(member="Member / メンバー")
    async def clearwarns(self, ctx: commands.Context[Any], member: discord.Member) -> None:
        """警告を全て削除 / Clear a member's warnings."""
        assert ctx.guild is not None
        removed = await store_of(self.bot).clear_warnings(ctx.guild.id, member.id, ctx.author.id)
        if removed == 0:
            await ctx.send(
                self.t("mod.clearwarns.none", member=member.display_name), allowed_mentions=NO_MENTIONS
            )
            return
        await self.post_mod_log(
            ctx.guild,
            self.t("mod.log.clearwarns", target=_who(member), moderator=_who(ctx.author), count=removed),
        )
        await ctx.send(
            self.t("mod.clearwarns.done", member=member.display_name, count=removed),
            allowed_mentions=NO_MENTIONS,
        )

    # -- timeout ------------------------------------------------------------------------------

    @hybrid_command(name="timeout")
    @commands.guild_only()
    @is_moderator("moderate_members")
    @app_commands.describe(
        member="Member / メンバー", duration="10m, 1h, 1d, 1h30m (max 28d)", reason="Reason / 理由"
    )
    async def timeout(
        self, ctx: commands.Context[Any], member: discord.Member, duration: str, *, reason: str | None = None
    ) -> None:
        """メンバーをタイムアウト / Time out a member."""
        assert ctx.guild is not None
        delta = parse_duration(duration)
        if delta is None:
            value = discord.utils.escape_mentions(duration)[:32]
            raise InvalidArgument(self.t("mod.timeout.bad_duration", value=value))
        if delta > MAX_TIMEOUT:
            raise InvalidArgument(self.t("mod.timeout.too_long", duration=format_duration(delta, self.t)))
        problem = self.target_problem(ctx, member)
        if problem is not None:
            raise CommandRefused(problem)
        text = _clip(reason)
        try:
            await member.timeout(delta, reason=f"{ctx.author} ({ctx.author.id}): {text or '-'}"[:512])
        except discord.HTTPException as exc:
            raise CommandFailed(
                self.t("mod.timeout.forbidden", member=member.display_name), cause=exc
            ) from exc
        shown = format_duration(delta, self.t)
        stored: StorageError | None = None
        try:
            await store_of(self.bot).record_action(
                ctx.guild.id,
                "timeout",
                member.id,
                ctx.author.id,
                f"{int(delta.total_seconds())}s: {text or ''}",
            )
        except StorageError as exc:
            stored = exc  # the timeout is in place: the mod-log still shows it
        await self.post_mod_log(
            ctx.guild,
            self.t(
                "mod.log.timeout",
                target=_who(member),
                moderator=_who(ctx.author),
                duration=shown,
                reason=self.reason_text(text),
            ),
        )
        if stored is not None:
            raise stored  # the action is in place and in the mod-log, but not recorded: a failure
        await ctx.send(
            self.t(
                "mod.timeout.done", member=member.display_name, duration=shown, reason=self.reason_text(text)
            ),
            allowed_mentions=NO_MENTIONS,
        )

    # -- purge --------------------------------------------------------------------------------

    @hybrid_command(name="purge")
    @commands.guild_only()
    @is_moderator("manage_messages")
    @app_commands.describe(count=f"1..{MAX_PURGE}")
    async def purge(self, ctx: commands.Context[Any], count: int) -> None:
        """メッセージを一括削除 / Delete recent messages."""
        assert ctx.guild is not None
        if not 1 <= count <= MAX_PURGE:
            raise InvalidArgument(self.t("mod.purge.range", max=MAX_PURGE, count=count))
        channel = ctx.channel
        if not isinstance(channel, discord.TextChannel | discord.Thread | discord.VoiceChannel):
            raise CommandRefused(self.t("mod.purge.forbidden"))
        await ctx.defer(ephemeral=True)  # a large purge takes longer than Discord's 3 s
        try:
            deleted = await channel.purge(
                limit=count,
                before=ctx.message if ctx.interaction is None else None,
                reason=f"purge by {ctx.author} ({ctx.author.id})",
            )
        except discord.HTTPException as exc:
            raise CommandFailed(self.t("mod.purge.forbidden"), cause=exc) from exc
        stored: StorageError | None = None
        try:
            await store_of(self.bot).record_action(
                ctx.guild.id, "purge", None, ctx.author.id, f"#{channel.name}: {len(deleted)}"
            )
        except StorageError as exc:
            stored = exc
        await self.post_mod_log(
            ctx.guild,
            self.t(
                "mod.log.purge", channel=f"#{channel.name}", moderator=_who(ctx.author), count=len(deleted)
            ),
        )
        if stored is not None:
            raise stored  # the action is in place and in the mod-log, but not recorded: a failure
        await ctx.send(self.t("mod.purge.done", count=len(deleted)), ephemeral=True)

    # -- anti-spam ----------------------------------------------------------------------------

    @commands.Cog.listener("on_message")
    async def antispam(self, message: discord.Message) -> None:
        author = message.author
        if message.guild is None or author.bot or not isinstance(author, discord.Member):
            return
        if member_is_moderator(author, self.bot.settings):
            return  # moderators are trusted (and must be able to post announcements in bursts)
        if not self.spam.hit(message.guild.id, author.id):
            return
        await self.punish_spammer(message, author)

    async def punish_spammer(self, message: discord.Message, member: discord.Member) -> None:
        guild = member.guild
        count, seconds = self.spam.max_messages, self.spam.per_seconds
        reason = self.t("mod.automod.reason", count=count, seconds=f"{seconds:g}")
        try:
            await member.timeout(self.spam_timeout, reason=reason)
        except discord.HTTPException as exc:
            log.warning(
                "anti-spam: could not time out member %s in guild %s: %s %s",
                member.id,
                guild.id,
                type(exc).__name__,
                exc.status,
            )
            return
        self.bot.telemetry.metrics.automod_actions.labels("timeout").inc()
        log.info(
            "anti-spam: member %s timed out in guild %s (%d messages / %gs)",
            member.id,
            guild.id,
            count,
            seconds,
        )
        bot_id = self.bot.user.id if self.bot.user is not None else 0
        try:
            await store_of(self.bot).record_action(guild.id, "automod_timeout", member.id, bot_id, reason)
        except StorageError as exc:
            log.error("anti-spam: could not record the timeout of member %s: %s", member.id, exc)
        shown = format_duration(self.spam_timeout, self.t)
        await self.post_mod_log(
            guild,
            self.t(
                "mod.log.automod_timeout",
                target=_who(member),
                duration=shown,
                count=count,
                seconds=f"{seconds:g}",
            ),
        )
        try:
            await message.channel.send(
                self.t("mod.automod.notice", member=member.display_name, duration=shown),
                allowed_mentions=NO_MENTIONS,
            )
        except discord.HTTPException as exc:
            log.warning("anti-spam: could not post the notice: %s %s", type(exc).__name__, exc.status)


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(ModerationCog(comet_bot(bot)))
