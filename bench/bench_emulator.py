"""Message-to-reply round trips per second through the real discord.py client (``python -m bench emulator``).

A member posts ``!ping`` in one of several channels; a plain ``commands.Bot`` answers ``pong`` with
``ctx.send``; the next message in that slot goes out when the reply arrives. A fixed number of
messages are in flight (a flood would measure the queue, not the bot), spread over channels because
without rate-limit headers discord.py sends one request at a time per channel. The bot also receives
the MESSAGE_CREATE of each of its own replies, as on Discord.

1. Emulator in the bot's process (one event loop for both). Target: >= 2000 round trips/s.
2. Emulator in its own process (``python -m discord_emulator``), the load driven inside that process
   through ``POST /_control/load``, so the bot's process only runs the bot.

Then the heartbeat latency discord.py reports against the emulator's simulated round trip
(``heartbeat_ack_delay``, 50 ms): discord.py stamps a beat's send time in its keep-alive thread after
the loop wrote it, so an ACK that arrives before that thread wakes up is measured against the
previous beat and reads as a whole interval. Target: no sample does (on a quiet machine; a loaded
one can delay the thread past the round trip, which is why this is measured here and not asserted
in a test).
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import sys
from pathlib import Path
from typing import Any

import aiohttp
import discord
from discord.ext import commands

from comet.core.demo_guild import FAN_SERVER_SEED, seed_fan_server
from discord_emulator import Emulator
from discord_emulator.endpoints import point_discord_at, restoring_endpoints
from discord_emulator.load import run_load
from discord_emulator.testing.client import fast_ready, start_client, stop_client

CHANNELS = 16
IN_FLIGHT = (16, 48)
WARMUP = 1.0
DURATION = 4.0
TARGET = 2000.0
MESSAGE_LIMIT = 200  # per channel, in the emulator (keeps its heap, and GC pauses, small)
ROOT = Path(__file__).resolve().parent.parent


def make_bot() -> commands.Bot:
    intents = discord.Intents.default()
    intents.message_content = True
    bot = commands.Bot(command_prefix="!", intents=intents, max_messages=1000)
    fast_ready(bot)

    @bot.command()
    async def ping(ctx: commands.Context[commands.Bot]) -> None:
        await ctx.send("pong")

    return bot


def row(label: str, result: dict[str, Any]) -> str:
    return (
        f"{label:<34} {result['in_flight']:>9} {result['round_trips']:>8} {result['per_second']:>9.0f} "
        f"{result['p50_ms']:>8.2f} {result['p99_ms']:>8.2f} {result['timeouts']:>8}"
    )


HEADER = (
    f"{'setup':<34} {'in flight':>9} {'replies':>8} {'rt/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'timeouts':>8}"
)


async def in_process() -> list[dict[str, Any]]:
    results = []
    async with Emulator(record_size=10_000, message_limit=MESSAGE_LIMIT, seed=seed_fan_server) as emu:
        guild_id = emu.add_guild("bench", members=CHANNELS, channels=[f"load-{i}" for i in range(CHANNELS)])
        guild = emu.world.guilds[guild_id]
        channels = list(guild.channel_ids)
        authors = [u for u in guild.members if u not in (emu.world.bot.id, guild.owner_id)]
        bot = make_bot()
        task = await start_client(bot, emu)
        try:
            await run_load(
                emu, channel_ids=channels, author_ids=authors, in_flight=IN_FLIGHT[0], duration=WARMUP
            )
            for in_flight in IN_FLIGHT:
                gc.collect()
                result = await run_load(
                    emu, channel_ids=channels, author_ids=authors, in_flight=in_flight, duration=DURATION
                )
                results.append(result.as_dict())
        finally:
            await stop_client(bot, task)
    return results


async def out_of_process() -> list[dict[str, Any]]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "discord_emulator", "--seed", FAN_SERVER_SEED, "--port", "0",
        "--record-size", "10000",
        "--message-limit", str(MESSAGE_LIMIT),
        stdout=asyncio.subprocess.PIPE, env=env, cwd=str(ROOT),
    )  # fmt: skip
    results = []
    try:
        assert proc.stdout is not None
        info = json.loads(await asyncio.wait_for(proc.stdout.readline(), 30))
        control = f"{info['url']}/_control"
        timeout = aiohttp.ClientTimeout(total=DURATION * 4 + 30)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            spec = {"name": "bench", "members": CHANNELS, "channels": CHANNELS}
            async with http.post(f"{control}/guilds", json=spec) as response:
                guild = await response.json()
            point_discord_at(info["api_base"], info["gateway_url"])
            bot = make_bot()
            task = await start_client(bot, None)
            try:
                load = {"channel_ids": guild["channel_ids"], "author_ids": guild["member_ids"]}
                async with http.post(
                    f"{control}/load", json={**load, "in_flight": IN_FLIGHT[0], "duration": WARMUP}
                ) as response:
                    await response.json()
                for in_flight in IN_FLIGHT:
                    body = {**load, "in_flight": in_flight, "duration": DURATION}
                    async with http.post(f"{control}/load", json=body) as response:
                        results.append(await response.json())
            finally:
                await stop_client(bot, task)
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 5)
            except TimeoutError:
                proc.kill()
                await proc.wait()
    return results


HEARTBEAT_INTERVAL = 0.3
HEARTBEATS = 30


async def heartbeat_latency() -> list[float]:
    """Every distinct ``bot.latency`` discord.py reported over ``HEARTBEATS`` beats."""
    async with Emulator(heartbeat_interval=HEARTBEAT_INTERVAL, seed=seed_fan_server) as emu:
        bot = commands.Bot(command_prefix="!", intents=discord.Intents.default())
        task = await start_client(bot, emu)
        samples: list[float] = []
        try:

            def enough_beats() -> bool:
                latency = bot.latency
                if latency == latency and latency != float("inf") and latency not in samples[-1:]:
                    samples.append(latency)
                return sum(c.heartbeats for c in emu.connections) >= HEARTBEATS

            await emu.wait_for(enough_beats, timeout=HEARTBEAT_INTERVAL * HEARTBEATS * 3 + 10)
        finally:
            await stop_client(bot, task)
    return samples


def main() -> None:
    with restoring_endpoints():
        local = asyncio.run(in_process())
        remote = asyncio.run(out_of_process())
        latencies = asyncio.run(heartbeat_latency())
    print(
        f"\nround trips through discord.py {discord.__version__} ({os.cpu_count()} CPUs), {CHANNELS} channels"
    )
    print(HEADER)
    for result in local:
        print(row("emulator in the bot's process", result))
    for result in remote:
        print(row("emulator in its own process", result))
    best_local = max(r["per_second"] for r in local)
    best_remote = max(r["per_second"] for r in remote)
    verdict = "meets" if best_local >= TARGET else "MISSES"
    ratio = best_local / TARGET
    print(f"\nbest in-process: {best_local:.0f} rt/s ({ratio:.2f}x the {TARGET:.0f} rt/s target: {verdict})")
    print(f"own process / in-process: {best_remote / best_local:.2f}x")
    whole = [s for s in latencies if s >= HEARTBEAT_INTERVAL * 2 / 3]
    ordered = sorted(latencies)
    print(
        f"\nheartbeat latency over {len(latencies)} ACKs ({HEARTBEAT_INTERVAL} s interval, 50 ms round trip):"
        f" median {ordered[len(ordered) // 2] * 1000:.1f} ms, max {ordered[-1] * 1000:.1f} ms;"
        f" read as a whole interval: {len(whole)} ({'meets' if not whole else 'MISSES'} the target of 0)"
    )


if __name__ == "__main__":
    main()
