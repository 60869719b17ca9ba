"""The hooks themselves: error classification, install/uninstall, labels across reloads, BotMonitor."""

from __future__ import annotations

import asyncio
import logging
import math
from typing import Any

import discord
import psutil
import pytest
from discord import app_commands
from discord.ext import commands
from harness import Harness
from prometheus_client import CollectorRegistry
from support import burn_cpu_past, cpu_percent_bounds, read_cpu
from waiting import wait_until

from comet.core.demo_guild import DEMO
from discord_emulator import Emulator
from instrumentation import cache_sizes, discord_api
from instrumentation.bot_monitor import MB, BotMonitor
from instrumentation.commands import CommandInstrumentation
from instrumentation.gateway import GatewayInstrumentation
from instrumentation.invocations import outcome_of, unwrap_error
from instrumentation.metrics import Metrics, error_label
from instrumentation.taps import DispatchTaps


def test_outcomes_and_error_labels() -> None:
    param = discord.ext.commands.parameters.Parameter(
        "x", discord.ext.commands.parameters.Parameter.POSITIONAL_ONLY
    )
    cooldown = commands.Cooldown(1, 5.0)
    cases: list[tuple[BaseException, str, str]] = [
        (commands.CommandNotFound("x"), "not_found", "CommandNotFound"),
        (app_commands.CommandNotFound("x", []), "not_found", "CommandNotFound"),
        (
            commands.CommandOnCooldown(cooldown, 3.0, commands.BucketType.user),
            "cooldown",
            "CommandOnCooldown",
        ),
        (app_commands.CommandOnCooldown(app_commands.Cooldown(1, 5.0), 3.0), "cooldown", "CommandOnCooldown"),
        (commands.MaxConcurrencyReached(1, commands.BucketType.user), "cooldown", "MaxConcurrencyReached"),
        (commands.MissingPermissions(["ban_members"]), "check_failed", "MissingPermissions"),
        (commands.NotOwner(), "check_failed", "NotOwner"),
        (app_commands.MissingPermissions(["manage_guild"]), "check_failed", "MissingPermissions"),
        (commands.DisabledCommand(), "check_failed", "DisabledCommand"),
        (commands.MissingRequiredArgument(param), "bad_argument", "MissingRequiredArgument"),
        (commands.BadArgument(), "bad_argument", "BadArgument"),
        (commands.TooManyArguments(), "bad_argument", "TooManyArguments"),
        (ZeroDivisionError(), "error", "other"),
    ]
    for exc, outcome, label in cases:
        assert outcome_of(exc) == outcome, exc
        assert error_label(exc) == label, exc


def test_wrappers_are_unwrapped_to_the_original() -> None:
    original = KeyError("k")
    wrapped = commands.CommandInvokeError(original)
    assert unwrap_error(wrapped) is original
    inner = app_commands.CommandInvokeError.__new__(app_commands.CommandInvokeError)
    inner.original = original
    assert unwrap_error(commands.HybridCommandError(inner)) is original  # type: ignore[arg-type]
    plain = commands.BadArgument()
    assert unwrap_error(plain) is plain


@pytest.mark.asyncio
async def test_uninstall_stops_counting_and_install_resumes(comet: Harness) -> None:
    env = comet
    hooks = env.bot.command_instrumentation
    tree = env.bot.tree
    hooks.uninstall()
    hooks.uninstall()  # idempotent
    assert "on_error" not in tree.__dict__ or tree.__dict__["on_error"] == env.bot.on_app_command_error
    assert "interaction_check" not in tree.__dict__
    # Wait for discord.py's own completion events, so nothing is still in flight when we re-install.
    prefix_done = asyncio.ensure_future(env.bot.wait_for("command_completion"))
    await env.ask("!ping")
    await asyncio.wait_for(prefix_done, 5)
    slash_done = asyncio.ensure_future(env.bot.wait_for("app_command_completion"))
    await env.slash("ping")
    await asyncio.wait_for(slash_done, 5)
    hooks.install()
    hooks.install()  # idempotent: one set of listeners
    await env.ask("!ping")
    await wait_until(lambda: env.commands("ping", "prefix", "success") == 1)
    await env.slash("boom")  # the bot's own error handler still answers behind the wrapper
    await wait_until(lambda: env.commands("boom", "slash", "error") == 1)
    assert env.commands("ping", "slash", "success") == 0
    assert env.bot.dispatch_taps.count("command_completion") == 1
    assert env.bot.dispatch_taps.count("socket_event_type") == 1


@pytest.mark.asyncio
async def test_counts_survive_reloading_every_extension_twice(comet: Harness) -> None:
    env = comet
    await env.ask("!ping")
    await env.ask("!work 0")
    await wait_until(lambda: env.commands("work", "prefix", "success") == 1)
    for _ in range(2):
        for name in list(env.bot.extensions):
            await env.bot.reload_extension(name)
    assert env.commands("ping", "prefix", "success") == 1
    assert env.commands("work", "prefix", "success") == 1
    await env.ask("!ping")
    await env.slash("work", {"seconds": 0})
    await wait_until(lambda: env.commands("work", "slash", "success") == 1)
    assert env.commands("ping", "prefix", "success") == 2
    assert env.sample("comet_extension_reloads_total", operation="load", outcome="success") == 3


@pytest.mark.asyncio
async def test_a_command_added_later_is_labelled_by_its_name(comet: Harness) -> None:
    env = comet

    @commands.command(name="latecomer")
    async def latecomer(ctx: commands.Context[Any]) -> None:
        await ctx.send("late")

    env.bot.add_command(latecomer)  # no refresh: the hook registers the bounded name itself
    assert (await env.ask("!latecomer")).content == "late"
    await wait_until(lambda: env.commands("latecomer", "prefix", "success") == 1)
    assert env.commands("unknown", "prefix", "success") == 0
    assert "latecomer" in env.bot.refresh_command_labels()


@pytest.mark.asyncio
async def test_bot_monitor_reports_the_seed_fields(comet: Harness) -> None:
    env = comet
    monitor = env.bot.monitor
    await env.ask("!ping")
    await env.ask("!boom")
    await env.ask("!nosuch")
    await wait_until(lambda: env.commands("unknown", "prefix", "not_found") == 1)
    # cpu_usage is the CPU used since the previous reading of the one kept Process: take one reading,
    # burn CPU until psutil itself shows the counter moved, and take the next. collect_metrics() never
    # awaits anything, so nothing else reads that Process in between.
    before_first = read_cpu()
    await monitor.collect_metrics()
    after_first = read_cpu()
    burn_cpu_past(after_first.cpu + 0.05)
    before = read_cpu()
    metrics = await monitor.collect_metrics()
    after = read_cpu()
    assert set(metrics) == {"commands_executed", "errors_count", "memory_usage", "cpu_usage"}
    assert metrics["commands_executed"] == 2  # ping + boom; an unknown command is not executed
    assert metrics["errors_count"] == 1
    low, high = cpu_percent_bounds((before_first, after_first), (before, after))
    assert low <= metrics["cpu_usage"] <= high, (low, metrics["cpu_usage"], high)
    assert metrics["cpu_usage"] > 0
    assert metrics["memory_usage"] == pytest.approx(psutil.Process().memory_info().rss / MB, rel=0.05)
    health = await monitor.health_check()
    assert health["status"] == "healthy" and health["guilds"] == 1
    assert health["latency"] is None or math.isfinite(health["latency"])

    # discord.py's NaN (not connected) never reaches the JSON.
    idle = BotMonitor(discord.Client(intents=discord.Intents.none()))
    assert (await idle.health_check())["latency"] is None
    assert (await idle.health_check())["status"] == "unhealthy"
    assert DEMO.guild_id in {g.id for g in env.bot.guilds}


@pytest.mark.asyncio
async def test_any_discord_py_bot_is_measured_through_listeners(
    emulator: Emulator, discord_bot: commands.Bot
) -> None:
    """A plain commands.Bot (no dispatch taps): the same numbers through listeners and a check-once."""
    bot = discord_bot
    registry = CollectorRegistry()
    metrics = Metrics.for_registry(registry)

    @commands.hybrid_command(name="hello", description="hi")
    async def hello(ctx: commands.Context[Any]) -> None:
        await ctx.send("hi")

    bot.add_command(hello)
    await bot.tree.sync()
    # A long batch interval: nothing is written until flush() (or uninstall) says so.
    hooks = CommandInstrumentation(bot, metrics, flush_interval=60)
    gateway = GatewayInstrumentation(bot, metrics, flush_interval=60)
    hooks.install()
    gateway.install()

    def count(kind: str, outcome: str = "success", command: str = "hello") -> float:
        labels = {"command": command, "kind": kind, "outcome": outcome}
        return registry.get_sample_value("comet_commands_total", labels) or 0.0

    async def run(content: str | None, event: str) -> None:
        # discord.py starts an event's listeners as tasks in the order they were added, and the
        # instrumentation's never awaits: when this one (added after it) runs, the note is taken.
        seen = asyncio.Event()

        async def after_instrumentation(*_: Any) -> None:
            seen.set()

        bot.add_listener(after_instrumentation, f"on_{event}")
        try:
            if content is None:
                inter = await emulator.send_slash(channel, DEMO.member_ids[0], "hello", {})
                assert (await emulator.wait_for_reply(channel, after=inter)).content == "hi"
            else:
                await emulator.send_message(channel, DEMO.member_ids[0], content)
            await asyncio.wait_for(seen.wait(), 5)
        finally:
            bot.remove_listener(after_instrumentation, f"on_{event}")

    channel = DEMO.general_channel_id
    await run("!hello", "command_completion")
    await run(None, "app_command_completion")
    await run("!nope", "command_error")
    assert count("prefix") == 0 and count("slash") == 0  # noted, not yet written
    hooks.flush()
    assert count("prefix") == 1 and count("slash") == 1 and count("prefix", "not_found", "unknown") == 1
    assert (registry.get_sample_value("comet_gateway_events_total", {"event": "MESSAGE_CREATE"}) or 0) == 0
    gateway.uninstall()  # writes what is pending
    assert registry.get_sample_value("comet_gateway_events_total", {"event": "MESSAGE_CREATE"}) >= 3
    assert len(bot._check_once) == 1  # the prefix clock
    hooks.uninstall()
    assert bot._check_once == [] and not bot.extra_events.get("on_command_completion")


#: The ``hook`` label values dashboards and alerts have always seen (the registries must keep them).
KNOWN_HOOKS = {
    "register_commands", "prefix_start", "slash_start", "command_completion", "command_error",
    "app_command_completion", "app_command_error", "interaction_check", "cancelled", "flush",
    "ready", "cache_guilds", "cache_users", "cache_channels", "socket_event_type", "shard_up",
    "shard_resumed", "shard_disconnect", "gateway_latency", "rest_call", "rest_attempt", "rest_bucket_wait",
}  # fmt: skip


def test_every_declared_hook_label_is_preinitialised() -> None:
    # A dashboard shows 0 failures per hook before the first one, instead of "no data".
    registry = CollectorRegistry()
    metrics = Metrics.for_registry(registry)
    bot = commands.Bot(command_prefix="!", intents=discord.Intents.default())
    declared = (
        *CommandInstrumentation.hooks.names,
        *GatewayInstrumentation.hooks.names,
        *cache_sizes.HOOKS.names,
        *discord_api.HOOKS.names,
    )
    assert len(declared) == len(set(declared))  # no label shared by two instrumentations
    assert set(declared) == KNOWN_HOOKS
    assert registry.get_sample_value("comet_instrumentation_errors_total", {"hook": "flush"}) is None
    CommandInstrumentation(bot, metrics)
    GatewayInstrumentation(bot, metrics)
    for hook in declared:
        assert registry.get_sample_value("comet_instrumentation_errors_total", {"hook": hook}) == 0.0, hook
    [family] = [f for f in registry.collect() if f.name == "comet_instrumentation_errors"]
    assert {s.labels["hook"] for s in family.samples if s.name.endswith("_total")} == KNOWN_HOOKS


class TappedBot(commands.Bot):
    """A bot with dispatch taps; the tests call ``dispatch_taps.run`` as ``CometBot.dispatch`` does."""

    def __init__(self) -> None:
        self.dispatch_taps = DispatchTaps()
        super().__init__(command_prefix="!", intents=discord.Intents.default())


class Broken:
    """Stands in for a Context, Interaction or command whose every attribute raises."""

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(f"no {name} here")


def hook_failures(registry: CollectorRegistry, hook: str) -> float | None:
    return registry.get_sample_value("comet_instrumentation_errors_total", {"hook": hook})


@pytest.mark.parametrize(
    ("event", "args", "hook"),
    [
        ("command", (Broken(),), "prefix_start"),
        ("command_completion", (Broken(),), "command_completion"),
        ("command_error", (Broken(), commands.CommandError("x")), "command_error"),
        ("app_command_completion", (Broken(), Broken()), "app_command_completion"),
    ],
)
def test_a_failing_command_hook_is_counted_under_its_label_and_never_raises(
    event: str, args: tuple[Any, ...], hook: str, caplog: pytest.LogCaptureFixture
) -> None:
    registry = CollectorRegistry()
    bot = TappedBot()
    instrumentation = CommandInstrumentation(bot, Metrics.for_registry(registry), flush_interval=0)
    instrumentation.install()
    with caplog.at_level(logging.ERROR):
        bot.dispatch_taps.run(event, args)
    assert hook_failures(registry, hook) == 1
    others = [h for h in CommandInstrumentation.hooks.names if h != hook]
    assert all(hook_failures(registry, other) == 0 for other in others)
    # The hook caught it itself: the taps' catch-all (which only logs) never saw an exception.
    logged = [r.name for r in caplog.records if r.name.startswith("instrumentation")]
    assert logged == ["instrumentation.fail_open"]
    instrumentation.uninstall()


@pytest.mark.asyncio
async def test_a_failing_tree_hook_lets_the_interaction_through() -> None:
    registry = CollectorRegistry()
    bot = TappedBot()
    CommandInstrumentation(bot, Metrics.for_registry(registry)).install()
    assert await bot.tree.interaction_check(Broken()) is True  # type: ignore[arg-type]
    assert hook_failures(registry, "slash_start") == 1


def test_a_failing_readiness_reading_reads_0_and_is_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    registry = CollectorRegistry()
    bot = TappedBot()
    GatewayInstrumentation(bot, Metrics.for_registry(registry)).install()

    def not_readable() -> bool:
        raise RuntimeError("no state")

    assert hook_failures(registry, "ready") == 0
    monkeypatch.setattr(bot, "is_ready", not_readable)
    assert registry.get_sample_value("comet_ready") == 0.0  # the scrape still succeeds
    monkeypatch.undo()  # readable again, so reading the counter (another scrape) adds no failure
    assert hook_failures(registry, "ready") == 1
