"""Everyone's monitoring commands: ``ping``, ``health`` and ``stats`` (hybrid: prefix and slash).

``health`` shows the health fields of ``/readyz`` (status, uptime, latency, guilds) plus the average and p95
response time from the rolling ``ResponseTimeMonitor``, memory and CPU from the
``BotMonitor.collect_metrics()``. ``stats`` reads the same counters ``/metrics`` serves, so Discord and
Grafana never disagree. Nothing here scans the heap: that belongs to the owner's ``memory`` command.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from discord.ext import commands

from comet.features.base import CometCog, comet_bot, hybrid_command

if TYPE_CHECKING:
    pass

TOP_N = 5


def format_duration(t: Any, seconds: float) -> str:
    total = int(max(0.0, seconds))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return str(t("core.duration", days=days, hours=hours, minutes=minutes, seconds=secs))


def format_latency(t: Any, latency: float | None) -> str:
    if latency is None:
        return str(t("core.latency.unknown"))
    return str(t("core.latency.ms", ms=latency * 1000))


class Monitoring(CometCog, name="Monitoring"):
    """Health and statistics of the bot, for everyone."""

    @hybrid_command(name="ping", description="Gateway latency / ゲートウェイ遅延")
    async def ping(self, ctx: commands.Context[Any]) -> None:
        """ゲートウェイの遅延を表示します。"""
        t = self.bot.i18n.t
        await ctx.send(t("core.ping", latency=format_latency(t, self.bot.monitor.latency())))

    @hybrid_command(name="health", description="Health check / ヘルスチェック")
    async def health(self, ctx: commands.Context[Any]) -> None:
        """ボットの状態、応答時間、メモリ、CPU を表示します。"""
        bot = self.bot
        t = bot.i18n.t
        health = await bot.monitor.health_check()
        usage = await bot.monitor.collect_metrics()
        times = bot.instrumentation.response_times
        status = t(f"core.health.status.{health['status']}")
        lines = [
            t("core.health.title"),
            t("core.health.status", status=status),
            t("core.health.uptime", uptime=format_duration(t, health["uptime"])),
            t("core.health.latency", latency=format_latency(t, health["latency"])),
            t("core.health.guilds", guilds=health["guilds"]),
        ]
        if len(times):
            lines.append(
                t(
                    "core.health.response",
                    average=times.get_average_response_time(),
                    p95=times.percentile(0.95),
                    samples=len(times),
                )
            )
            threshold = bot.settings.slow_threshold
            if times.is_slow_response(threshold):
                lines.append(t("core.health.slow", threshold=threshold))
        else:
            lines.append(t("core.health.response.empty"))
        lines.append(t("core.health.memory", memory=usage["memory_usage"]))
        lines.append(t("core.health.cpu", cpu=usage["cpu_usage"]))
        await ctx.send("\n".join(lines))

    @hybrid_command(name="stats", description="Command statistics / コマンド統計")
    @commands.cooldown(1, 5.0, commands.BucketType.user)
    async def stats(self, ctx: commands.Context[Any]) -> None:
        """実行されたコマンド数、エラー、よく使われるコマンドと遅いコマンドを表示します。"""
        t = self.bot.i18n.t
        summary = self.bot.monitor.command_summary()
        outcomes = {k: int(v) for k, v in summary.by_outcome.items()}
        lines = [
            t("core.stats.title"),
            t("core.stats.commands", count=summary.executed),
            t(
                "core.stats.errors",
                errors=summary.errors,
                bad_argument=outcomes.get("bad_argument", 0),
                check_failed=outcomes.get("check_failed", 0),
                cooldown=outcomes.get("cooldown", 0),
                not_found=outcomes.get("not_found", 0),
            ),
            t("core.stats.top"),
        ]
        top = summary.top(TOP_N)
        lines += [
            t("core.stats.top_line", rank=i, command=name, count=n) for i, (name, n) in enumerate(top, 1)
        ]
        if not top:
            lines.append(t("core.stats.none"))
        lines.append(t("core.stats.slowest"))
        slow = summary.slowest(TOP_N)
        lines += [
            t("core.stats.slow_line", rank=i, command=name, average=avg)
            for i, (name, avg) in enumerate(slow, 1)
        ]
        if not slow:
            lines.append(t("core.stats.none"))
        await ctx.send("\n".join(lines))


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(Monitoring(comet_bot(bot)))
