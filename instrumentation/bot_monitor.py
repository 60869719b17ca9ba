"""``BotMonitor``: the bot's own view of its health, with real numbers behind every field.

``collect_metrics()`` returns a dict (``commands_executed``, ``errors_count``,
``memory_usage`` in MB, ``cpu_usage`` in percent) and ``health_check()`` the health fields
(``status``, ``uptime``, ``latency``, ``guilds``), which ``/readyz`` serves. Deliberate choices,
on purpose:

- the command counts are read from the Prometheus counters the hooks feed, so the ``health`` and
  ``stats`` commands agree with ``/metrics``;
- one ``psutil.Process`` is kept: ``cpu_percent()`` on a fresh ``Process`` always reads 0.0;
- ``latency`` is ``None`` while discord.py reports NaN (not connected) or inf (no heartbeat ACK yet),
  so the JSON never carries NaN/Infinity;
- ``status`` is ``healthy`` only while the bot is ready *and* its gateway connections are up.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import discord
import psutil

from instrumentation.gateway import finite_or_none
from instrumentation.metrics import COMMAND_OUTCOMES, UNKNOWN, Metrics

MB = 1024 * 1024


@dataclass
class CommandSummary:
    """Commands seen so far, read from ``comet_commands_total`` and ``comet_command_duration_seconds``."""

    by_outcome: dict[str, float] = field(default_factory=lambda: dict.fromkeys(COMMAND_OUTCOMES, 0.0))
    by_command: dict[str, float] = field(default_factory=dict)
    duration_sum: dict[str, float] = field(default_factory=dict)
    duration_count: dict[str, float] = field(default_factory=dict)

    @property
    def executed(self) -> int:
        """Invocations of real commands (every outcome except ``not_found``)."""
        return int(sum(v for k, v in self.by_outcome.items() if k != "not_found"))

    @property
    def errors(self) -> int:
        """Invocations that raised inside the command (outcome ``error``)."""
        return int(self.by_outcome.get("error", 0.0))

    def top(self, n: int = 5) -> list[tuple[str, int]]:
        ranked = sorted(
            ((name, int(count)) for name, count in self.by_command.items() if count > 0 and name != UNKNOWN),
            key=lambda item: (-item[1], item[0]),
        )
        return ranked[:n]

    def slowest(self, n: int = 5) -> list[tuple[str, float]]:
        averages = [
            (name, self.duration_sum[name] / count)
            for name, count in self.duration_count.items()
            if count > 0 and name != UNKNOWN
        ]
        averages.sort(key=lambda item: (-item[1], item[0]))
        return averages[:n]


def summarize_commands(metrics: Metrics) -> CommandSummary:
    """Sum the command counters and histograms over ``kind`` (on demand, never on the hot path)."""
    summary = CommandSummary()
    for family in metrics.commands.collect():
        for sample in family.samples:
            if not sample.name.endswith("_total"):
                continue
            outcome = sample.labels["outcome"]
            command = sample.labels["command"]
            summary.by_outcome[outcome] = summary.by_outcome.get(outcome, 0.0) + sample.value
            if outcome != "not_found":
                summary.by_command[command] = summary.by_command.get(command, 0.0) + sample.value
    for family in metrics.command_duration.collect():
        for sample in family.samples:
            command = sample.labels.get("command", UNKNOWN)
            if sample.name.endswith("_sum"):
                summary.duration_sum[command] = summary.duration_sum.get(command, 0.0) + sample.value
            elif sample.name.endswith("_count"):
                summary.duration_count[command] = summary.duration_count.get(command, 0.0) + sample.value
    return summary


class BotMonitor:
    """The monitor of one bot (``collect_metrics``, ``health_check``)."""

    def __init__(
        self,
        bot: discord.Client,
        *,
        metrics: Metrics | None = None,
        process: psutil.Process | None = None,
        shards_up: Callable[[], dict[int, bool]] | None = None,
        before_read: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.bot = bot
        self._metrics = metrics
        self._clock = clock
        self.start_time = clock()
        self.metrics: dict[str, float] = {
            "commands_executed": 0,
            "errors_count": 0,
            "memory_usage": 0,
            "cpu_usage": 0,
        }
        # ONE Process for the life of the monitor: cpu_percent() measures since this object's last call.
        self._process = process if process is not None else psutil.Process()
        self._shards_up = shards_up
        # Called before the counters are read: the hooks write them in batches (instrumentation.taps).
        self._before_read = before_read
        try:
            self._process.cpu_percent(None)  # prime it, so the first real reading is not 0.0
        except psutil.Error:
            pass

    def command_summary(self) -> CommandSummary:
        if self._metrics is None:
            return CommandSummary()
        if self._before_read is not None:
            self._before_read()
        return summarize_commands(self._metrics)

    async def collect_metrics(self) -> dict[str, float]:
        """メトリクス収集 — commands run, errors, memory (MB) and CPU (percent) of this process."""
        if self._metrics is not None:
            summary = self.command_summary()
            self.metrics["commands_executed"] = summary.executed
            self.metrics["errors_count"] = summary.errors
        try:
            self.metrics["memory_usage"] = self._process.memory_info().rss / MB
            self.metrics["cpu_usage"] = self._process.cpu_percent(None)
        except psutil.Error:
            pass  # keep the previous readings; a vanished /proc entry must not break a command
        return dict(self.metrics)

    def uptime(self) -> float:
        return max(0.0, self._clock() - self.start_time)

    def latency(self) -> float | None:
        return finite_or_none(self.bot.latency)

    def connected(self) -> bool:
        """Every gateway connection of this process is up."""
        if self._shards_up is not None:
            states = self._shards_up()
            if states:
                return all(states.values())
        bot = self.bot
        if isinstance(bot, discord.AutoShardedClient):
            shards: Iterable[discord.ShardInfo] = bot.shards.values()
            infos = list(shards)
            return bool(infos) and not any(info.is_closed() for info in infos)
        ws: Any = getattr(bot, "ws", None)
        return ws is not None and bool(getattr(ws, "open", False))

    def is_healthy(self) -> bool:
        bot = self.bot
        return bot.is_ready() and not bot.is_closed() and self.connected()

    async def health_check(self) -> dict[str, Any]:
        """ヘルスチェック — JSON-safe (no NaN/inf)."""
        bot = self.bot
        result: dict[str, Any] = {
            "status": "healthy" if self.is_healthy() else "unhealthy",
            "uptime": self.uptime(),
            "latency": self.latency(),
            "guilds": len(bot.guilds),
        }
        if isinstance(bot, discord.AutoShardedClient):
            result["shards"] = {str(shard_id): finite_or_none(latency) for shard_id, latency in bot.latencies}
        return result
