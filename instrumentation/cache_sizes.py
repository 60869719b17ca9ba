"""The bot's cache sizes (``comet_guilds``, ``comet_users``, ``comet_channels``), read at scrape time.

Keeping gauges up to date on every guild, member and channel event would put work on the gateway's
hot path for numbers that are only looked at when Prometheus scrapes; this collector reads them
then. It runs in the metrics server's request thread while the event loop mutates the cache, so the
readers take sizes and one atomic copy and never iterate a live dict. A reading that fails keeps
its previous value and is counted as a hook failure (``cache_guilds``, ...) rather than failing the
whole scrape.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from instrumentation.fail_open import Hook, HookFailures, HookRegistry

if TYPE_CHECKING:
    import discord

__all__ = ["HOOKS", "SIZES", "CacheSizes"]

#: The ``hook`` labels a failed reading is counted under (``cache_<name>``).
HOOKS = HookRegistry()


@dataclass(frozen=True, slots=True)
class CacheSize:
    """One gauge: ``{prefix}_{name}``, its HELP text, how it is read, and its hook label."""

    name: str
    help: str
    read: Callable[[discord.Client], int]
    hook: Hook


def _guilds(bot: discord.Client) -> int:
    return len(bot.guilds)


def _users(bot: discord.Client) -> int:
    # ``Client.users`` copies every cached user into a new list: too much for each scrape.
    return len(bot._connection._users)


def _channels(bot: discord.Client) -> int:
    # ``guilds`` is copied once (one C-level list(), safe against the loop adding a guild meanwhile);
    # ``len(guild.channels)`` is the size of the guild's dict, no copy.
    return sum(len(guild.channels) for guild in bot.guilds)


def _size(name: str, help: str, read: Callable[[discord.Client], int]) -> CacheSize:
    return CacheSize(name, help, read, HOOKS.declare(f"cache_{name}"))


SIZES = (
    _size("guilds", "Guilds in the bot's cache.", _guilds),
    _size("users", "Users in the bot's cache.", _users),
    _size("channels", "Guild channels in the bot's cache.", _channels),
)


class CacheSizes(Collector):
    """Yields one gauge family per :data:`SIZES` entry, read from the bound bot at each scrape.

    Until :meth:`read_from` binds a bot every size is 0, so the series exist from the start.
    """

    def __init__(self, prefix: str) -> None:
        self._prefix = prefix
        # The bot and where its failures are counted, swapped as one reference: the scrape thread
        # never sees one without the other.
        self._source: tuple[discord.Client, HookFailures] | None = None
        self._last = {size.name: 0.0 for size in SIZES}

    def read_from(self, bot: discord.Client, failures: HookFailures) -> None:
        """Read ``bot``'s cache from the next scrape on; a failed reading is counted by ``failures``."""
        self._source = (bot, failures)

    def describe(self) -> Iterable[Metric]:
        # Names only, so registering never reads the bot.
        return [GaugeMetricFamily(f"{self._prefix}_{size.name}", size.help) for size in SIZES]

    def collect(self) -> Iterator[Metric]:
        source = self._source
        for size in SIZES:
            value = self._last[size.name]
            if source is not None:
                bot, failures = source
                try:
                    value = float(size.read(bot))
                except Exception:
                    failures.record(size.hook)
                else:
                    self._last[size.name] = value
            yield GaugeMetricFamily(f"{self._prefix}_{size.name}", size.help, value=value)
