"""おみくじ (omikuji): a daily fortune per member, the same answer all day, in Japanese or English.

Nothing is stored: the fortune is drawn from a hash of (day in Japan time, user id), so it is the
same all day, on every shard and after a restart, and changes at midnight JST (the fan server
follows hololive's clock). The hash makes it fair (no modulo bias worth noticing over 2^64).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import discord
from discord.ext import commands

from comet.features.base import CometCog, comet_bot, hybrid_command
from comet.features.talents import Talent, TalentDirectory

if TYPE_CHECKING:
    from comet.core.bot import CometBot

#: Japan has no daylight saving time, so a fixed offset is exact.
JST = timezone(timedelta(hours=9), "JST")

#: (rank key, weight): the usual shrine spread, kind to fans (no 大凶).
RANKS: tuple[tuple[str, int], ...] = (
    ("daikichi", 15),
    ("chukichi", 20),
    ("shokichi", 20),
    ("kichi", 25),
    ("suekichi", 12),
    ("kyo", 8),
)
ITEM_COUNT = 10  # omikuji.item.0 .. omikuji.item.9 in the catalogues


@dataclass(frozen=True)
class Fortune:
    rank: str
    item: int
    talent: Talent


def today_jst(now: datetime | None = None) -> date:
    return (now or datetime.now(JST)).astimezone(JST).date()


def draw_fortune(user_id: int, day: date, talents: TalentDirectory) -> Fortune:
    """The fortune of ``user_id`` on ``day`` (deterministic)."""
    digest = hashlib.sha256(f"comet-omikuji:{day.isoformat()}:{user_id}".encode()).digest()
    roll = int.from_bytes(digest[0:8], "big") % sum(weight for _, weight in RANKS)
    rank = RANKS[-1][0]
    for key, weight in RANKS:
        if roll < weight:
            rank = key
            break
        roll -= weight
    item = int.from_bytes(digest[8:16], "big") % ITEM_COUNT
    talent = talents.talents[int.from_bytes(digest[16:24], "big") % len(talents.talents)]
    return Fortune(rank, item, talent)


class OmikujiCog(CometCog, name="Omikuji"):
    """The daily fortune."""

    def __init__(self, bot: CometBot, talents: TalentDirectory | None = None) -> None:
        super().__init__(bot)
        # Read the file afresh: editing talents.toml and reloading the extension picks it up.
        self.talents = talents or TalentDirectory.load()

    @hybrid_command(name="omikuji", aliases=["fortune", "おみくじ"])
    async def omikuji(self, ctx: commands.Context[Any]) -> None:
        """今日のおみくじ / Today's fortune."""
        fortune = draw_fortune(ctx.author.id, today_jst(), self.talents)
        locale = self.locale
        await ctx.send(
            self.t(
                "omikuji.result",
                member=ctx.author.display_name,
                rank=self.t(f"omikuji.rank.{fortune.rank}"),
                message=self.t(f"omikuji.message.{fortune.rank}"),
                item=self.t(f"omikuji.item.{fortune.item}"),
                talent=fortune.talent.display(locale),
            ),
            allowed_mentions=discord.AllowedMentions.none(),
        )


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(OmikujiCog(comet_bot(bot)))
