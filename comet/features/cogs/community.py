"""Oshi (推し): ``oshi set/show/remove/ranking``, prefix and slash (with autocomplete).

Names are matched by :mod:`comet.features.talents` (Japanese or English names, nicknames, any case or
width, small typos); an ambiguous name is asked back with the candidates. When the server has a
role named after the talent (``Pekora``, ``兎田ぺこら``, ...), the member gets it and loses the
roles of other talents. Registrations live in the Store; a storage failure is answered with a clear
message and logged, and nothing is claimed saved that was not committed.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from comet.core.storage import Store, store_of
from comet.features.base import CometCog, comet_bot, hybrid_group, subcommand
from comet.features.talents import Talent, TalentDirectory

if TYPE_CHECKING:
    from comet.core.bot import CometBot

log = logging.getLogger(__name__)

RANKING_SIZE = 10
NO_MENTIONS = discord.AllowedMentions.none()


class CommunityCog(CometCog, name="Community"):
    """Oshi registration and the server's ranking."""

    def __init__(self, bot: CometBot, talents: TalentDirectory | None = None) -> None:
        super().__init__(bot)
        # Read the file afresh: editing talents.toml and reloading the extension picks it up.
        self.talents = talents or TalentDirectory.load()

    # -- helpers ------------------------------------------------------------------------------

    def store(self) -> Store:
        return store_of(self.bot)

    def prefix(self, ctx: commands.Context[Any]) -> str:
        return ctx.clean_prefix if ctx.interaction is None else "/"

    def name_of(self, talent: Talent | None, key: str) -> str:
        return talent.display(self.locale) if talent is not None else key

    def group_of(self, talent: Talent) -> str:
        branch = self.t(f"oshi.branch.{talent.branch}")
        key = "oshi.group.numbered" if talent.generation.isdigit() else "oshi.group.named"
        group = self.t(key, branch=branch, generation=talent.generation)
        return self.t("oshi.group.graduated", group=group) if talent.graduated else group

    # -- commands -----------------------------------------------------------------------------

    @hybrid_group(name="oshi", invoke_without_command=True)
    @commands.guild_only()
    async def oshi(self, ctx: commands.Context[Any]) -> None:
        """推し (oshi): register and show your favourite talent."""
        await ctx.send(self.t("oshi.usage", prefix=self.prefix(ctx)))

    @subcommand(oshi, name="set")
    @commands.guild_only()
    @app_commands.describe(name="Talent name / タレント名 (日本語・English・愛称)")
    async def oshi_set(self, ctx: commands.Context[Any], *, name: str) -> None:
        """推しを登録 / Set your oshi."""
        assert ctx.guild is not None
        result = self.talents.match(name)
        query = discord.utils.escape_mentions(name.strip())[:80]
        if result.ambiguous:
            lines = "\n".join(
                self.t("oshi.set.candidate", name=t.display(self.locale)) for t in result.candidates
            )
            await ctx.send(
                self.t(
                    "oshi.set.ambiguous",
                    query=query,
                    candidates=lines,
                    prefix=self.prefix(ctx),
                    example=result.candidates[0].name(self.locale),
                ),
                ephemeral=True,
                allowed_mentions=NO_MENTIONS,
            )
            return
        if result.talent is None:
            await ctx.send(
                self.t("oshi.set.unknown", query=query), ephemeral=True, allowed_mentions=NO_MENTIONS
            )
            return
        talent = result.talent
        previous = await self.store().set_oshi(ctx.guild.id, ctx.author.id, talent.key)
        # The registration is committed; only now is the user told.
        if previous == talent.key:
            text = self.t("oshi.set.same", talent=talent.display(self.locale))
        elif previous is not None:
            old = self.name_of(self.talents.get(previous), previous)
            text = self.t("oshi.set.changed", old=old, talent=talent.display(self.locale))
        else:
            text = self.t("oshi.set.done", talent=talent.display(self.locale))
        notes = await self.sync_roles(ctx, talent)
        await ctx.send("\n".join([text, *notes]), allowed_mentions=NO_MENTIONS)

    @oshi_set.autocomplete("name")
    async def oshi_set_autocomplete(
        self, interaction: discord.Interaction[Any], current: str
    ) -> list[app_commands.Choice[str]]:
        return [
            app_commands.Choice(name=f"{t.ja} / {t.en}"[:100], value=t.key)
            for t in self.talents.suggest(current)
        ]

    @subcommand(oshi, name="show")
    @commands.guild_only()
    @app_commands.describe(member="Member / メンバー (省略すると自分)")
    async def oshi_show(
        self,
        ctx: commands.Context[Any],
        # Not ``Optional[Member]``: discord.py would silently drop an unknown member and show the
        # author's own oshi; with a plain default an unknown member is a clear bad-argument answer.
        member: discord.Member = commands.parameter(default=None),
    ) -> None:
        """推しを表示 / Show an oshi."""
        assert ctx.guild is not None
        target = member or ctx.author
        entry = await self.store().get_oshi(ctx.guild.id, target.id)
        me = target.id == ctx.author.id
        if entry is None:
            text = (
                self.t("oshi.show.none_self", prefix=self.prefix(ctx))
                if me
                else self.t("oshi.show.none_other", member=target.display_name)
            )
        else:
            talent = self.talents.get(entry.talent_key)
            name = self.name_of(talent, entry.talent_key)
            group = self.group_of(talent) if talent is not None else "?"
            text = (
                self.t("oshi.show.self", talent=name, group=group)
                if me
                else self.t("oshi.show.other", member=target.display_name, talent=name, group=group)
            )
        await ctx.send(text, allowed_mentions=NO_MENTIONS)

    @subcommand(oshi, name="remove")
    @commands.guild_only()
    async def oshi_remove(self, ctx: commands.Context[Any]) -> None:
        """推しの登録を解除 / Remove your oshi."""
        assert ctx.guild is not None
        removed = await self.store().remove_oshi(ctx.guild.id, ctx.author.id)
        if removed is None:
            await ctx.send(self.t("oshi.remove.none"))
            return
        text = self.t("oshi.remove.done", talent=self.name_of(self.talents.get(removed), removed))
        notes = await self.sync_roles(ctx, None)
        await ctx.send("\n".join([text, *notes]), allowed_mentions=NO_MENTIONS)

    @subcommand(oshi, name="ranking")
    @commands.guild_only()
    async def oshi_ranking(self, ctx: commands.Context[Any]) -> None:
        """推しランキング / The server's most loved talents."""
        assert ctx.guild is not None
        ranking = await self.store().oshi_ranking(ctx.guild.id, RANKING_SIZE)
        if not ranking:
            await ctx.send(self.t("oshi.ranking.empty", prefix=self.prefix(ctx)))
            return
        lines = [self.t("oshi.ranking.title")]
        for rank, (key, count) in enumerate(ranking, start=1):
            lines.append(
                self.t(
                    "oshi.ranking.line",
                    rank=rank,
                    talent=self.name_of(self.talents.get(key), key),
                    count=count,
                )
            )
        await ctx.send("\n".join(lines), allowed_mentions=NO_MENTIONS)

    # -- talent roles -------------------------------------------------------------------------

    async def sync_roles(self, ctx: commands.Context[Any], talent: Talent | None) -> list[str]:
        """Give the member the role of ``talent`` (if the server has one) and remove other talent roles.

        Returns notes for the reply. A refused role change is reported, never fatal: the oshi is
        already saved.
        """
        member = ctx.author
        guild = ctx.guild
        if guild is None or not isinstance(member, discord.Member):
            return []
        wanted: discord.Role | None = None
        unwanted: list[discord.Role] = []
        for role in guild.roles:
            owner = self.talents.exact(role.name)
            if owner is None or role.is_default() or role.managed:
                continue
            if talent is not None and owner.key == talent.key:
                wanted = wanted or role
            elif role in member.roles:
                unwanted.append(role)
        notes: list[str] = []
        try:
            if unwanted:
                await member.remove_roles(*unwanted, reason="oshi changed")
                notes.extend(self.t("oshi.role.removed", role=r.name) for r in unwanted)
            if wanted is not None and wanted not in member.roles:
                await member.add_roles(wanted, reason="oshi set")
                notes.append(self.t("oshi.role.added", role=wanted.name))
        except discord.HTTPException as exc:
            log.warning(
                "could not change talent roles of member %s in guild %s: %s %s",
                member.id,
                guild.id,
                type(exc).__name__,
                exc.status,
            )
            notes.append(self.t("oshi.role.failed"))
        return notes


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(CommunityCog(comet_bot(bot)))
