"""A closed-loop load driver inside the emulator: a fixed number of user messages in flight, each
slot sending its next message when the bot's reply to the previous one arrives. Used by the
benchmark (in-process, or in the standalone emulator's process through ``POST /_control/load``) so
the driver never competes with the bot for its event loop."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from discord_emulator.core.models import StoredMessage
    from discord_emulator.server import Emulator


@dataclass(frozen=True)
class LoadResult:
    round_trips: int
    seconds: float
    per_second: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    in_flight: int
    channels: int
    timeouts: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


async def run_load(
    emu: Emulator,
    *,
    channel_ids: list[int],
    author_ids: list[int],
    in_flight: int,
    duration: float,
    content: str = "!ping",
    reply_timeout: float = 10.0,
) -> LoadResult:
    if not channel_ids or not author_ids:
        raise ValueError("need at least one channel and one author")
    if in_flight < 1 or duration <= 0:
        raise ValueError("in_flight must be >= 1 and duration > 0")
    for cid in channel_ids:
        if cid not in emu.world.channels:
            raise ValueError(f"unknown channel {cid}")
    loop = asyncio.get_running_loop()
    bot_id = emu.world.bot.id
    # Each reply answers the oldest pending message of its channel: the count is exact; with
    # several in flight per channel (discord.py sends them concurrently, the bucket headers allowing
    # it) a latency may belong to a neighbour of the same channel.
    pending: dict[int, deque[asyncio.Future[None]]] = {cid: deque() for cid in channel_ids}

    def on_message(message: StoredMessage) -> None:
        if message.author_id != bot_id:
            return
        waiting = pending.get(message.channel_id)
        while waiting:
            fut = waiting.popleft()
            if not fut.done():
                fut.set_result(None)
                return

    latencies: list[float] = []
    timeouts = 0
    stop_at = loop.time() + duration
    authors = itertools.cycle(author_ids)

    async def slot(channel_id: int) -> None:
        nonlocal timeouts
        while loop.time() < stop_at:
            fut: asyncio.Future[None] = loop.create_future()
            pending[channel_id].append(fut)
            started = time.perf_counter()
            await emu.send_message(channel_id, next(authors), content)
            try:
                await asyncio.wait_for(fut, reply_timeout)
            except TimeoutError:
                timeouts += 1
                continue
            latencies.append(time.perf_counter() - started)

    emu.world.message_listeners.append(on_message)
    started = time.perf_counter()
    try:
        await asyncio.gather(*(slot(channel_ids[i % len(channel_ids)]) for i in range(in_flight)))
    finally:
        emu.world.message_listeners.remove(on_message)
    elapsed = time.perf_counter() - started
    latencies.sort()
    return LoadResult(
        round_trips=len(latencies),
        seconds=elapsed,
        per_second=len(latencies) / elapsed if elapsed else 0.0,
        p50_ms=_percentile(latencies, 0.50) * 1000,
        p95_ms=_percentile(latencies, 0.95) * 1000,
        p99_ms=_percentile(latencies, 0.99) * 1000,
        in_flight=in_flight,
        channels=len(channel_ids),
        timeouts=timeouts,
    )
