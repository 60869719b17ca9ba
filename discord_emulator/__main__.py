"""Standalone emulator: ``python -m discord_emulator --host 127.0.0.1 --port 8765 [--shards N]``.

Prints one JSON line with the addresses once listening (drivers in other processes read it), then
serves until SIGINT/SIGTERM. Drive it through the control API under ``/_control``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys

from discord_emulator.seeds import load_seed
from discord_emulator.server import Emulator


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m discord_emulator", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    parser.add_argument("--shards", type=int, default=1, help="shard count /gateway/bot recommends")
    parser.add_argument("--record-size", type=int, default=10_000, help="REST calls kept in the record")
    parser.add_argument("--message-limit", type=int, default=1000, help="messages kept per channel")
    parser.add_argument("--heartbeat-interval", type=float, default=41.25, help="seconds, sent in HELLO")
    parser.add_argument("--token", default=None, help="accept only this bot token (default: any)")
    parser.add_argument(
        "--seed",
        default="example",
        help="what the world starts with: example (one guild, the default), none, or module:function",
    )
    args = parser.parse_args(argv)
    if args.shards < 1:
        parser.error("--shards must be >= 1")
    if args.record_size < 1:
        parser.error("--record-size must be >= 1")
    if args.message_limit < 1:
        parser.error("--message-limit must be >= 1")
    try:
        args.seed = load_seed(args.seed)
    except ValueError as exc:
        parser.error(str(exc))
    return args


async def serve(args: argparse.Namespace) -> None:
    emu = Emulator(
        args.host,
        args.port,
        record_size=args.record_size,
        shard_count=args.shards,
        seed=args.seed,
        heartbeat_interval=args.heartbeat_interval,
        token=args.token,
        message_limit=args.message_limit,
    )
    await emu.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    ready = {"url": emu.url, "api_base": emu.api_base, "gateway_url": emu.gateway_url, "port": emu.port}
    print(json.dumps(ready), flush=True)
    try:
        await stop.wait()
    finally:
        await emu.stop()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        asyncio.run(serve(args))
    except OSError as exc:
        print(f"discord_emulator: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
