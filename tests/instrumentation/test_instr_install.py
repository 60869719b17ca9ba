"""``instrument(bot)``: one call instruments a bot that knows nothing of COMET, ``close()`` undoes it.

Real discord.py against the emulator, real HTTP to the metrics server on a free port.
"""

from __future__ import annotations

import asyncio
import base64
import gc
import socket
import threading
from collections.abc import Iterator
from typing import Any

import aiohttp
import discord
import pytest
from discord.ext import commands
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from waiting import wait_until

from comet.core.demo_guild import DEMO
from discord_emulator import Emulator
from discord_emulator.testing.client import fast_ready, start_client, stop_client, test_intents
from instrumentation import InstrumentationHandle, instrument
from instrumentation.ext import settings_from_env
from instrumentation.install import handle_of
from instrumentation.metrics import default_registry
from instrumentation.recorder import Trace
from instrumentation.server import PortInUseError
from instrumentation.taps import AnyBot

GENERAL = DEMO.general_channel_id
MEMBER = DEMO.member_ids[0]
MESSAGES_ROUTE = {"route": "/channels/{channel_id}/messages", "method": "POST", "status": "2xx"}


# -- helpers ---------------------------------------------------------------------------------------


async def get(handle: InstrumentationHandle, path: str, auth: tuple[str, str] | None = None) -> Any:
    """(status, body) of one GET to the handle's server."""
    headers = {}
    if auth is not None:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
    async with aiohttp.ClientSession() as session:
        async with session.get(handle.url + path, headers=headers) as response:
            return response.status, await response.text()


def samples(text: str) -> Iterator[tuple[str, dict[str, str], float]]:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            yield sample.name, sample.labels, sample.value


def value(text: str, name: str, labels: dict[str, str] | None = None) -> float | None:
    """The sample ``name{labels}`` of a /metrics body (None when absent)."""
    wanted = labels or {}
    for sample_name, sample_labels, sample_value in samples(text):
        if sample_name == name and sample_labels == wanted:
            return sample_value
    return None


def count(text: str, command: str, kind: str, outcome: str = "success") -> float:
    labels = {"command": command, "kind": kind, "outcome": outcome}
    return value(text, "comet_commands_total", labels) or 0.0


async def scrape(handle: InstrumentationHandle) -> str:
    status, text = await get(handle, "/metrics")
    assert status == 200, text
    return str(text)


async def ask(emulator: Emulator, channel: int, content: str) -> str:
    message = await emulator.send_message(channel, MEMBER, content)
    return (await emulator.wait_for_reply(channel, after=message)).content


async def slash(emulator: Emulator, channel: int, name: str) -> str:
    interaction = await emulator.send_slash(channel, MEMBER, name)
    return (await emulator.wait_for_reply(channel, after=interaction)).content


def add_commands(bot: AnyBot) -> None:
    """What any bot has: a prefix command, a slash command, a hybrid one and one that fails."""

    @bot.command()
    async def ping(ctx: commands.Context[Any]) -> None:
        await ctx.send("pong")

    @bot.command()
    async def boom(ctx: commands.Context[Any]) -> None:
        raise RuntimeError("the command failed")

    @commands.hybrid_command(description="say hi")
    async def hi(ctx: commands.Context[Any]) -> None:
        await ctx.send("hi!")

    bot.add_command(hi)

    @bot.tree.command(description="hello")
    async def hello(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("hello!")


def new_bot(cls: type[AnyBot] = commands.Bot) -> AnyBot:
    bot = cls(command_prefix="!", intents=test_intents())
    fast_ready(bot)
    add_commands(bot)
    return bot


async def warm_default_executor() -> None:
    # asyncio's default executor is the loop's (shared, ends with the loop); LoopLagMonitor.stop()
    # joins its watchdog through it. Started here, so that its one idle thread is there before and after.
    await asyncio.to_thread(int)


def refused(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


async def exercise_and_check(
    emulator: Emulator, handle: InstrumentationHandle, base: str, shards: list[str]
) -> str:
    """Run a prefix and a slash command; /metrics shows them, the gateway, the loop, the process."""
    bot = handle.bot
    await bot.tree.sync()
    assert await ask(emulator, GENERAL, "!ping") == "pong"
    assert await slash(emulator, GENERAL, "hello") == "hello!"
    before_prefix, before_slash = count(base, "ping", "prefix"), count(base, "hello", "slash")

    async def counted() -> bool:
        text = await scrape(handle)
        return count(text, "ping", "prefix") == before_prefix + 1 and count(text, "hello", "slash") == (
            before_slash + 1
        )

    await wait_until(counted, what="the prefix and the slash command on /metrics")

    async def loop_sampled() -> bool:
        return (value(await scrape(handle), "comet_event_loop_lag_seconds_count") or 0) > 0

    await wait_until(loop_sampled, what="a loop-lag sample")
    text = await scrape(handle)
    assert (value(text, "comet_gateway_events_total", {"event": "MESSAGE_CREATE"}) or 0) >= 1
    assert (value(text, "comet_gateway_events_total", {"event": "INTERACTION_CREATE"}) or 0) >= 1
    for shard in shards:
        assert value(text, "comet_shard_up", {"shard": shard}) == 1
    assert value(text, "comet_ready") == 1
    assert (value(text, "process_resident_memory_bytes") or 0) > 0
    assert value(text, "python_gc_collections_total", {"generation": "0"}) is not None
    assert (value(text, "comet_guilds") or 0) >= 1
    # Discord REST: the reply to !ping was a timed call.
    assert (value(text, "comet_discord_request_duration_seconds_count", MESSAGES_ROUTE) or 0) >= 1
    status, body = await get(handle, "/healthz")
    assert (status, body) == (200, '{"status": "alive"}')
    status, body = await get(handle, "/readyz")
    assert status == 200 and '"status": "healthy"' in body, body
    return text


# -- the one call ------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_plain_bot_with_the_one_call_serves_commands_gateway_loop_and_process(
    emulator: Emulator,
) -> None:
    bot = new_bot()
    registry = default_registry()  # what instrument() uses without registry=
    base = registry_text(registry)
    handle = await instrument(bot, port=0)  # before start: each REST attempt is traced too
    assert handle.registry is registry and handle_of(bot) is handle
    task = await start_client(bot, emulator)
    try:
        text = await exercise_and_check(emulator, handle, base, ["0"])
        # Per-attempt tracing, fixed when the HTTP session was created at login.
        attempts = "comet_discord_request_attempts_total"
        assert (value(text, attempts, MESSAGES_ROUTE) or 0) > (value(base, attempts, MESSAGES_ROUTE) or 0)
        # A failed command is kept by the flight recorder and served on loopback.
        await emulator.send_message(GENERAL, MEMBER, "!boom")

        async def failure_kept() -> bool:
            status, body = await get(handle, "/debug/invocations/last")
            return status == 200 and '"command": "boom"' in body

        await wait_until(failure_kept, what="the failed invocation on /debug/invocations/last")
    finally:
        await stop_client(bot, task)
        await handle.close()
    assert handle.closed and handle_of(bot) is None


@pytest.mark.asyncio
async def test_a_finished_invocations_trace_is_freed_at_once_not_by_the_cycle_collector(
    emulator: Emulator,
) -> None:
    # discord.py's Context sits in reference cycles (its StringView), so it waits for the cycle
    # collector; a trace it held would wait too, survive into the older generations and make every
    # collection longer. With the collector off, nothing but the kept invocations may stay.
    bot = new_bot()
    handle = await instrument(bot, port=0, registry=CollectorRegistry(auto_describe=True))
    task = await start_client(bot, emulator)
    gc.collect()
    gc.disable()
    try:
        await bot.tree.sync()
        for _ in range(5):
            assert await ask(emulator, GENERAL, "!ping") == "pong"
            assert await ask(emulator, GENERAL, "!hi") == "hi!"
            assert await slash(emulator, GENERAL, "hello") == "hello!"
            assert await slash(emulator, GENERAL, "hi") == "hi!"

        def traces() -> list[Trace]:  # not kept (a slow one, on a loaded machine, would be)
            found = (obj for obj in gc.get_objects() if isinstance(obj, Trace))
            return [trace for trace in found if handle.recorder.get(trace.id) is None]

        # Until the last invocation has ended (its completion handler runs after the reply is sent).
        await wait_until(lambda: not traces(), what="no trace alive but the kept ones")
    finally:
        gc.enable()
        await stop_client(bot, task)
        await handle.close()


def registry_text(registry: CollectorRegistry) -> str:
    return generate_latest(registry).decode()


@pytest.mark.asyncio
async def test_an_auto_sharded_bot_with_two_shards(emulator: Emulator) -> None:
    emulator.shard_count = 2
    bot = new_bot(commands.AutoShardedBot)
    registry = CollectorRegistry(auto_describe=True)
    handle = await instrument(bot, port=0, registry=registry)
    task = await start_client(bot, emulator)
    try:
        assert bot.shard_count == 2
        await exercise_and_check(emulator, handle, "", ["0", "1"])
        status, body = await get(handle, "/readyz")
        assert status == 200 and '"shards": {"0":' in body, body
    finally:
        await stop_client(bot, task)
        await handle.close()


class SetupHookBot(commands.Bot):
    """Instruments itself in setup_hook: the HTTP session exists by then."""

    handle: InstrumentationHandle

    async def setup_hook(self) -> None:
        self.handle = await instrument(self, port=0, registry=CollectorRegistry(auto_describe=True))


@pytest.mark.asyncio
async def test_from_setup_hook_dms_and_hybrids_each_counted_once(
    emulator: Emulator,
) -> None:
    bot = new_bot(SetupHookBot)
    assert isinstance(bot, SetupHookBot)
    task = await start_client(bot, emulator)
    handle = bot.handle
    try:
        await bot.tree.sync()
        dm = emulator.open_dm(MEMBER)
        assert await ask(emulator, dm, "!ping") == "pong"  # guild=None
        assert await slash(emulator, dm, "hello") == "hello!"
        assert await ask(emulator, GENERAL, "!hi") == "hi!"
        assert await slash(emulator, GENERAL, "hi") == "hi!"
        assert await slash(emulator, GENERAL, "hi") == "hi!"

        async def counted() -> bool:
            text = await scrape(handle)
            return count(text, "hi", "slash") >= 2 and count(text, "hello", "slash") >= 1

        await wait_until(counted, what="the hybrid and DM commands on /metrics")
        text = await scrape(handle)
        assert count(text, "ping", "prefix") == 1
        assert count(text, "hello", "slash") == 1
        # A hybrid is counted once per use, under the kind it was used as.
        assert count(text, "hi", "prefix") == 1
        assert count(text, "hi", "slash") == 2
        assert value(text, "comet_command_duration_seconds_count", {"command": "hi", "kind": "slash"}) == 2
        # REST calls timed and their attempts seen, though the HTTP session predates instrument().
        sent = value(text, "comet_discord_request_duration_seconds_count", MESSAGES_ROUTE) or 0
        assert sent >= 1
        assert value(text, "comet_discord_request_attempts_total", MESSAGES_ROUTE) == sent
    finally:
        await stop_client(bot, task)
        await handle.close()


# -- close ---------------------------------------------------------------------------------------------


def bot_state(bot: AnyBot) -> dict[str, Any]:
    return {
        "listeners": {name: list(fns) for name, fns in bot.extra_events.items() if fns},
        "check_once": list(bot._check_once),
        "tree": {k: v for k, v in bot.tree.__dict__.items() if k in ("interaction_check", "on_error")},
        "request": bot.http.__dict__.get("request"),
        "http_trace": bot.http.http_trace,  # left alone: a bot's own trace is not touched
    }


@pytest.mark.asyncio
async def test_close_leaves_no_port_thread_task_or_hook(discord_bot: commands.Bot) -> None:
    bot = discord_bot
    registry = CollectorRegistry(auto_describe=True)
    await warm_default_executor()
    threads_before = set(threading.enumerate())
    tasks_before = asyncio.all_tasks()
    state_before = bot_state(bot)

    handle = await instrument(bot, port=0, registry=registry)
    port = handle.port
    with pytest.raises(RuntimeError, match="already instrumented"):
        await instrument(bot, port=0, registry=registry)
    assert "process_resident_memory_bytes" in await scrape(handle)  # the render thread has run
    assert not refused(port) and bot_state(bot) != state_before
    assert set(threading.enumerate()) != threads_before  # the watchdog and the render thread

    await handle.close()
    assert refused(port)
    assert set(threading.enumerate()) == threads_before
    assert {t for t in asyncio.all_tasks() if not t.done()} - tasks_before == set()
    assert bot_state(bot) == state_before
    assert registry.get_sample_value("process_resident_memory_bytes") is None  # collectors removed
    await handle.close()  # idempotent

    # Instrumenting again after close works, the runtime collectors included.
    again = await instrument(bot, port=0, registry=registry)
    try:
        assert "process_resident_memory_bytes" in await scrape(again)
    finally:
        await asyncio.gather(again.close(), again.close())
    assert refused(again.port) and bot_state(bot) == state_before


@pytest.mark.asyncio
async def test_a_port_in_use_rolls_everything_back() -> None:
    bot = new_bot()
    await warm_default_executor()
    threads_before = set(threading.enumerate())
    state_before = bot_state(bot)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(PortInUseError, match=str(taken.getsockname()[1])):
            await instrument(bot, port=taken.getsockname()[1], registry=CollectorRegistry())
    assert handle_of(bot) is None and bot_state(bot) == state_before
    assert set(threading.enumerate()) == threads_before


# -- the extension ---------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_the_extension_from_environment_variables(
    discord_bot: commands.Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    bot = discord_bot
    monkeypatch.setenv("COMET_METRICS_HOST", "127.0.0.1")
    monkeypatch.setenv("COMET_METRICS_PORT", "0")
    monkeypatch.setenv("COMET_METRICS_BASIC_AUTH", "prom:s3cret")
    await bot.load_extension("instrumentation.ext")
    handle = handle_of(bot)
    assert handle is not None
    try:
        assert (await get(handle, "/metrics"))[0] == 401
        assert (await get(handle, "/healthz"))[0] == 200  # liveness stays open
        status, text = await get(handle, "/metrics", auth=("prom", "s3cret"))
        assert status == 200 and "comet_commands_total" in text
        # Loaded into a connected bot: its shard is up although its connect event is past.
        assert value(text, "comet_shard_up", {"shard": "0"}) == 1 and value(text, "comet_ready") == 1
        status, body = await get(handle, "/readyz", auth=("prom", "s3cret"))
        assert status == 200 and '"status": "healthy"' in body
    finally:
        await bot.unload_extension("instrumentation.ext")
    assert handle.closed and handle_of(bot) is None and refused(handle.port)


@pytest.mark.parametrize(
    ("variable", "text", "message"),
    [
        ("COMET_METRICS_PORT", "abc", r"COMET_METRICS_PORT: expected a port number 0-65535 \(ASCII digits\)"),
        ("COMET_METRICS_PORT", "٩١٠٨", "COMET_METRICS_PORT"),  # Arabic-Indic digits: isdigit() says yes
        ("COMET_METRICS_PORT", "65536", "COMET_METRICS_PORT"),
        ("COMET_METRICS_PORT", "-1", "COMET_METRICS_PORT"),
        ("COMET_METRICS_PORT", " 9108", "COMET_METRICS_PORT"),
        ("COMET_METRICS_HOST", "local host", "COMET_METRICS_HOST: expected a host name or IP address"),
        ("COMET_METRICS_BASIC_AUTH", "prom-without-password", "COMET_METRICS_BASIC_AUTH: expected user:pass"),
        ("COMET_METRICS_BASIC_AUTH", ":hunter2", "COMET_METRICS_BASIC_AUTH"),
    ],
)
@pytest.mark.asyncio
async def test_the_extension_refuses_a_bad_value_clearly(
    variable: str, text: str, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    bot = new_bot()
    monkeypatch.setenv(variable, text)
    state_before = bot_state(bot)
    with pytest.raises(commands.ExtensionFailed) as failed:
        await bot.load_extension("instrumentation.ext")
    cause = failed.value.original
    assert isinstance(cause, ValueError)
    with pytest.raises(ValueError, match=message) as direct:
        settings_from_env()
    assert str(cause) == str(direct.value)
    if variable == "COMET_METRICS_BASIC_AUTH":
        assert "hunter2" not in str(cause) and "prom-without-password" not in str(cause)
    assert handle_of(bot) is None and bot_state(bot) == state_before
    assert "instrumentation.ext" not in bot.extensions


def test_extension_settings_defaults_and_values() -> None:
    defaults = settings_from_env({})
    assert (defaults.host, defaults.port, defaults.basic_auth) == ("127.0.0.1", 9108, None)
    empty = settings_from_env({"COMET_METRICS_PORT": "", "COMET_METRICS_BASIC_AUTH": ""})
    assert (empty.port, empty.basic_auth) == (9108, None)
    given = settings_from_env(
        {"COMET_METRICS_HOST": "::1", "COMET_METRICS_PORT": "0", "COMET_METRICS_BASIC_AUTH": "u:p:w"}
    )
    assert (given.host, given.port, given.basic_auth) == ("::1", 0, ("u", "p:w"))
    assert "p:w" not in repr(given)
