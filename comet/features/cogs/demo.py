"""Demo-only commands that the offline demo's synthetic members use (loaded in demo mode only).

``work [seconds]`` takes that long (slow responses for the dashboards and the slow-response alert);
``boom`` always raises (errors for the error-ratio alert). The failure is answered by the global
error handler like any other, and counted with outcome ``error``.
"""

from __future__ import annotations

import asyncio
import math
from typing import TYPE_CHECKING, Any

from discord.ext import commands

from comet.features.base import CometCog, comet_bot, hybrid_command

if TYPE_CHECKING:
    pass

MAX_WORK_SECONDS = 10.0


class DemoFailure(RuntimeError):
    """Raised on purpose by ``boom``."""


class Demo(CometCog, name="Demo"):
    """Synthetic workload for the offline demo."""

    @hybrid_command(name="work", description="Simulated slow work (demo) / 遅い処理のデモ")
    async def work(
        self, ctx: commands.Context[Any], seconds: commands.Range[float, 0.0, MAX_WORK_SECONDS] = 1.0
    ) -> None:
        """指定した秒数だけ作業して返事をします (デモ用)。"""
        # Discord enforces the option's range client-side; an API client need not, so check again.
        if not (math.isfinite(seconds) and 0.0 <= seconds <= MAX_WORK_SECONDS):
            raise commands.RangeError(seconds, minimum=0.0, maximum=MAX_WORK_SECONDS)
        if seconds > 2.0:
            await ctx.defer()  # a slash command must be acknowledged within 3 s
        await asyncio.sleep(seconds)
        await ctx.send(self.bot.i18n.t("core.demo.work", seconds=seconds))

    @hybrid_command(name="boom", description="Always fails (demo) / 必ず失敗します")
    async def boom(self, ctx: commands.Context[Any]) -> None:
        """必ず失敗します (デモ用のエラー)。"""
        raise DemoFailure("demo failure: boom")


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(Demo(comet_bot(bot)))
