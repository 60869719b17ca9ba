"""The ``!ping`` bot of ``bench/bench_peers.py``, one process per measured round.

    python bench/peer_bot.py --variant V --api-base URL --gateway-url URL --metrics-port P

Builds ``commands.Bot(command_prefix="!", intents=test_intents())`` with one command, ``ping``
(replies ``pong``), installs the variant's instrumentation the way its documentation says, logs in
to the emulator and prints one JSON line once ready (and once its metrics port accepts
connections): ``{"ready": true, "metrics_url": ..., "pid": ...}``. Then it answers lines on stdin:

``lag``   ``{"lag_ms": ...}``: the worst lateness of a 2 ms wake-up on the bot's loop since the
          previous ``lag`` (the same measure as ``bench.bench_bot.LagProbe``, which cannot be
          imported here: bench_bot imports ``comet``, which the peers' venv does not have);
``quit``  closes the instrumentation (``handle.close()`` for COMET) and the bot, and exits.

It runs in the project venv (plain, COMET) and in ``bench/.peers-venv`` (the peers), so it imports
only discord.py, ``discord_emulator`` and, inside the variant's branch, that variant's library.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
from typing import Any

from discord.ext import commands

from discord_emulator.endpoints import point_discord_at
from discord_emulator.testing.client import fast_ready, start_client, stop_client, test_intents

VARIANTS = (
    "plain",
    "plain-control",
    "discord-ext-prometheus",
    "argus-dpy",
    "comet-instrument",
    "comet-taps",
)
PEER_VARIANTS = ("discord-ext-prometheus", "argus-dpy")
PROBE_INTERVAL = 0.002
START_TIMEOUT = 30.0


class Probe:
    """The worst lateness of a repeated ``PROBE_INTERVAL`` sleep, since the last :meth:`take`."""

    def __init__(self) -> None:
        self.worst = 0.0

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            expected = loop.time() + PROBE_INTERVAL
            await asyncio.sleep(PROBE_INTERVAL)
            self.worst = max(self.worst, loop.time() - expected)

    def take(self) -> float:
        worst, self.worst = self.worst, 0.0
        return worst


def build_bot(variant: str) -> commands.Bot:
    if variant == "comet-taps":
        from instrumentation.taps import DispatchTaps

        class TapsBot(commands.Bot):
            """What ``comet/core/bot.py``'s CometBot does: the instrumentation runs as dispatch taps."""

            def __init__(self, **kwargs: Any) -> None:
                self.dispatch_taps = DispatchTaps()  # before super().__init__: the state keeps dispatch
                super().__init__(**kwargs)

            def dispatch(self, event_name: str, /, *args: Any, **kwargs: Any) -> None:
                self.dispatch_taps.run(event_name, args)
                super().dispatch(event_name, *args, **kwargs)

        bot: commands.Bot = TapsBot(command_prefix="!", intents=test_intents())
    else:
        bot = commands.Bot(command_prefix="!", intents=test_intents())

    @bot.command()
    async def ping(ctx: commands.Context[commands.Bot]) -> None:
        await ctx.send("pong")

    return bot


async def wait_listening(port: int) -> None:
    """Until something accepts connections on ``port`` (ext-prometheus starts its server in on_ready)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + START_TIMEOUT
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            if loop.time() > deadline:
                raise TimeoutError(f"nothing listens on port {port} after {START_TIMEOUT:g} s") from None
            await asyncio.sleep(0.01)  # the server is being started: look again
        else:
            writer.close()
            await writer.wait_closed()
            return


def say(payload: dict[str, Any]) -> None:
    print(json.dumps(payload), flush=True)


async def run(variant: str, api_base: str, gateway_url: str, port: int) -> None:
    point_discord_at(api_base, gateway_url)
    bot = build_bot(variant)
    fast_ready(bot)
    handle: Any = None
    if variant == "discord-ext-prometheus":
        from discord.ext.prometheus import PrometheusCog

        await bot.add_cog(PrometheusCog(bot, port=port))
    elif variant == "argus-dpy":
        from argus import Argus

        Argus(bot, port=port, host="127.0.0.1")  # its default host is 0.0.0.0
    elif variant.startswith("comet-"):
        import instrumentation

        handle = await instrumentation.instrument(bot, host="127.0.0.1", port=port)
    task: asyncio.Task[None] | None = None
    probe = Probe()
    probe_task = asyncio.create_task(probe.run())
    try:
        task = await start_client(bot, timeout=START_TIMEOUT)
        metrics_url = None
        if not variant.startswith("plain"):
            await wait_listening(port)
            metrics_url = f"http://127.0.0.1:{port}/metrics"
        probe.take()
        say({"ready": True, "metrics_url": metrics_url, "pid": os.getpid()})
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while line := await reader.readline():
            command = line.decode().strip()
            if command == "lag":
                say({"lag_ms": probe.take() * 1000})
            elif command == "quit":
                break
            else:
                say({"error": f"unknown command {command!r}"})
    finally:
        probe_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await probe_task
        if handle is not None:
            await handle.close()
        await stop_client(bot, task)


def main() -> None:
    parser = argparse.ArgumentParser(description="The !ping bot of bench/bench_peers.py")
    parser.add_argument("--variant", choices=VARIANTS, required=True)
    parser.add_argument("--api-base", required=True)
    parser.add_argument("--gateway-url", required=True)
    parser.add_argument("--metrics-port", type=int, required=True)
    args = parser.parse_args()
    asyncio.run(run(args.variant, args.api_base, args.gateway_url, args.metrics_port))


if __name__ == "__main__":
    main()
