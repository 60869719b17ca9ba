"""The cache-size collector: comet_guilds, comet_users and comet_channels, read from the bot per scrape."""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Counter, generate_latest

from instrumentation import cache_sizes
from instrumentation.cache_sizes import CacheSizes
from instrumentation.fail_open import HookFailures
from instrumentation.metrics import Metrics


def guild(channels: int) -> SimpleNamespace:
    return SimpleNamespace(channels=[object() for _ in range(channels)])


def cached_bot(guilds: list[SimpleNamespace], users: int) -> Any:
    """What the collector reads of a discord.py client: ``guilds`` and the connection's user dict."""
    return SimpleNamespace(guilds=guilds, _connection=SimpleNamespace(_users=dict.fromkeys(range(users))))


def sizes(registry: CollectorRegistry) -> tuple[float | None, float | None, float | None]:
    return (
        registry.get_sample_value("comet_guilds"),
        registry.get_sample_value("comet_users"),
        registry.get_sample_value("comet_channels"),
    )


@pytest.fixture
def failures() -> tuple[CollectorRegistry, HookFailures]:
    # A registry of their own: reading the failure count must not scrape (and so read) the cache again.
    registry = CollectorRegistry()
    counter = Counter("comet_instrumentation_errors", "Exceptions.", ["hook"], registry=registry)
    return registry, HookFailures(counter, cache_sizes.HOOKS.names)


def test_sizes_are_zero_until_a_bot_is_bound(registry: CollectorRegistry, metrics: Metrics) -> None:
    assert sizes(registry) == (0.0, 0.0, 0.0)


def test_sizes_are_read_from_the_bot_at_each_scrape(
    registry: CollectorRegistry, metrics: Metrics, failures: tuple[CollectorRegistry, HookFailures]
) -> None:
    bot = cached_bot([guild(3), guild(2)], users=4)
    metrics.cache_sizes.read_from(bot, failures[1])
    assert sizes(registry) == (2.0, 4.0, 5.0)
    # Nothing is pushed to the collector: the next scrape just sees the bot's cache as it now is.
    bot.guilds.append(guild(6))
    bot._connection._users.update(dict.fromkeys(range(100, 110)))
    assert sizes(registry) == (3.0, 14.0, 11.0)
    bot.guilds.clear()
    assert sizes(registry) == (0.0, 14.0, 0.0)


def test_exposition_keeps_the_gauges_names_and_help(registry: CollectorRegistry, metrics: Metrics) -> None:
    text = generate_latest(registry).decode()
    for name, help_text in (
        ("comet_guilds", "Guilds in the bot's cache."),
        ("comet_users", "Users in the bot's cache."),
        ("comet_channels", "Guild channels in the bot's cache."),
    ):
        assert f"# HELP {name} {help_text}\n# TYPE {name} gauge\n{name} 0.0\n" in text


def test_a_failed_reading_keeps_its_last_value_and_is_counted(
    registry: CollectorRegistry,
    metrics: Metrics,
    failures: tuple[CollectorRegistry, HookFailures],
    caplog: pytest.LogCaptureFixture,
) -> None:
    failure_registry, hook_failures = failures

    def failed(hook: str) -> float | None:
        return failure_registry.get_sample_value("comet_instrumentation_errors_total", {"hook": hook})

    bot = cached_bot([guild(1), guild(1)], users=3)
    metrics.cache_sizes.read_from(bot, hook_failures)
    assert sizes(registry) == (2.0, 3.0, 2.0)
    connection, bot._connection = bot._connection, None  # the user count can no longer be read
    bot.guilds.append(guild(5))
    with caplog.at_level(logging.ERROR, logger="instrumentation.fail_open"):
        text = generate_latest(registry).decode()  # the scrape itself does not fail
    assert "comet_users 3.0\n" in text and "comet_guilds 3.0\n" in text and "comet_channels 7.0\n" in text
    assert failed("cache_users") == 1
    assert failed("cache_guilds") == 0 and failed("cache_channels") == 0
    assert any(record.exc_info for record in caplog.records)  # logged with its traceback
    bot._connection = connection
    assert sizes(registry) == (3.0, 3.0, 7.0)
    assert failed("cache_users") == 1


def test_registering_reads_nothing(failures: tuple[CollectorRegistry, HookFailures]) -> None:
    # auto_describe registries ask describe() for the names; a bot that cannot be read must not matter.
    failure_registry, hook_failures = failures
    collector = CacheSizes("comet")
    collector.read_from(SimpleNamespace(), hook_failures)  # type: ignore[arg-type]
    CollectorRegistry(auto_describe=True).register(collector)
    for hook in cache_sizes.HOOKS.names:
        assert failure_registry.get_sample_value("comet_instrumentation_errors_total", {"hook": hook}) == 0


def test_each_size_has_its_own_hook_label() -> None:
    assert cache_sizes.HOOKS.names == ("cache_guilds", "cache_users", "cache_channels")
    assert [size.hook for size in cache_sizes.SIZES] == list(cache_sizes.HOOKS.names)
