"""Graceful shutdown through the launcher the product uses (``start_runtime`` → ``Runtime.close``),
with real discord.py on the emulator and slow REST: running commands finish and reply, new ones are
refused, the grace period is a bound, and an error reply that cannot be sent never raises."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp
import pytest
from discord.ext import commands
from harness import CometFactory
from waiting import wait_until

from comet.core.demo_guild import DEMO
from discord_emulator import Emulator

#: Every REST call of the bot takes this long in these tests (a slow Discord, as in production).
REST_LATENCY = 0.15
CHANNEL = DEMO.general_channel_id
OTHER_CHANNEL = DEMO.bot_commands_channel_id
THIRD_CHANNEL = DEMO.oshi_talk_channel_id


async def start_in_flight(emulator: Emulator, seconds: float) -> dict[str, Any]:
    """Post ``!work <seconds>`` and return once the bot is known to be running it.

    The gateway delivers events in order and discord.py starts their listener tasks in that order,
    so once the ``!ping`` posted after it (same shard) has been answered, ``work`` is running.
    """
    work = await emulator.send_message(CHANNEL, DEMO.member_ids[0], f"!work {seconds}")
    ping = await emulator.send_message(OTHER_CHANNEL, DEMO.member_ids[1], "!ping")
    await emulator.wait_for_reply(OTHER_CHANNEL, after=ping, timeout=10)
    return work


def problems(records: list[logging.LogRecord]) -> list[str]:
    """Log lines no clean shutdown may print."""
    bad = []
    for record in records:
        text = record.getMessage()
        if record.levelno >= logging.ERROR or "Ignoring exception" in text or "Session is closed" in text:
            bad.append(f"{record.levelname} {record.name}: {text}")
    return bad


@pytest.mark.asyncio
async def test_close_lets_a_running_command_finish_and_reply(
    emulator: Emulator, comet_factory: CometFactory, caplog: pytest.LogCaptureFixture
) -> None:
    h = await comet_factory()
    runtime = h.runtime
    emulator.faults.slow_rest(REST_LATENCY)
    work = await start_in_flight(emulator, 1.0)
    caplog.set_level(logging.INFO)
    await runtime.close()
    # The reply was sent before the HTTP session closed: it is in the channel now.
    reply = await emulator.wait_for_reply(CHANNEL, after=work, timeout=0.5)
    assert "1.0" in reply.content
    assert h.commands("work", "prefix", "success") == 1
    assert h.commands("work", "prefix", "cancelled") == 0
    assert problems(caplog.records) == []
    assert any("running command(s) finished" in r.getMessage() for r in caplog.records)
    assert runtime.bot.is_closed()


@pytest.mark.asyncio
async def test_draining_refuses_new_commands_and_reports_not_ready(
    emulator: Emulator, comet_factory: CometFactory
) -> None:
    h = await comet_factory(locale="en")
    runtime = h.runtime
    emulator.faults.slow_rest(REST_LATENCY)
    work = await start_in_flight(emulator, 1.5)
    closing = asyncio.ensure_future(runtime.close())
    await wait_until(lambda: not runtime.bot.work.accepting)
    async with aiohttp.ClientSession() as http, http.get(f"{runtime.server.url}/readyz") as resp:
        assert resp.status == 503
        assert (await resp.json())["status"] == "draining"
    late_prefix = await emulator.send_message(OTHER_CHANNEL, DEMO.member_ids[2], "!ping")
    late_slash = await emulator.send_slash(THIRD_CHANNEL, DEMO.member_ids[3], "ping")
    answer = await emulator.wait_for_reply(THIRD_CHANNEL, after=late_slash, timeout=10)
    assert "restarting" in answer.content
    await closing
    # The command that was running finished; the prefix command sent while draining never started.
    assert "1.5" in (await emulator.wait_for_reply(CHANNEL, after=work, timeout=0.5)).content
    with pytest.raises(TimeoutError):
        await emulator.wait_for_reply(OTHER_CHANNEL, after=late_prefix, timeout=0.2)
    assert h.commands("ping", "prefix", "success") == 1  # start_in_flight's own ping only
    assert h.commands("ping", "slash", "success") == 0


@pytest.mark.asyncio
async def test_the_grace_period_bounds_the_wait_and_counts_what_it_cancels(
    emulator: Emulator, comet_factory: CometFactory, caplog: pytest.LogCaptureFixture
) -> None:
    h = await comet_factory(shutdown_grace_seconds=0.3)
    runtime = h.runtime
    work = await start_in_flight(emulator, 8.0)
    await emulator.send_slash(CHANNEL, DEMO.member_ids[2], "work", options={"seconds": 8.0})
    await wait_until(lambda: any(t.get_name() == "CommandTree-invoker" for t in asyncio.all_tasks()))
    caplog.set_level(logging.INFO)
    await runtime.close()
    assert h.commands("work", "prefix", "cancelled") == 1
    assert h.commands("work", "slash", "cancelled") == 1
    assert h.commands("work", "prefix", "success") == 0
    with pytest.raises(TimeoutError):
        await emulator.wait_for_reply(CHANNEL, after=work, timeout=0.2)
    assert any("2 cancelled after the 0.3 s grace period" in r.getMessage() for r in caplog.records)
    assert problems(caplog.records) == []


@pytest.mark.asyncio
async def test_a_second_signal_ends_the_grace_period(emulator: Emulator, comet_factory: CometFactory) -> None:
    h = await comet_factory(shutdown_grace_seconds=60)
    runtime = h.runtime
    await start_in_flight(emulator, 8.0)
    hurry = asyncio.Event()
    closing = asyncio.ensure_future(runtime.close(hurry=hurry))
    await wait_until(lambda: not runtime.bot.work.accepting)
    assert not closing.done()
    hurry.set()
    await asyncio.wait_for(closing, 10)
    assert h.commands("work", "prefix", "cancelled") == 1


@pytest.mark.asyncio
async def test_an_error_reply_that_cannot_be_sent_is_logged_once_and_never_raises(
    emulator: Emulator,
    comet_factory: CometFactory,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    h = await comet_factory()
    runtime = h.runtime

    async def closed_session(self: commands.Context[Any], *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("Session is closed")

    monkeypatch.setattr(commands.Context, "reply", closed_session)
    caplog.set_level(logging.INFO)
    await emulator.send_message(CHANNEL, DEMO.member_ids[0], "!boom")
    await wait_until(lambda: any("Could not answer" in r.getMessage() for r in caplog.records))
    await runtime.close()
    unsent = [r for r in caplog.records if "Could not answer" in r.getMessage()]
    assert len(unsent) == 1
    assert unsent[0].levelno == logging.WARNING and "RuntimeError" in unsent[0].getMessage()
    assert not any("Ignoring exception" in r.getMessage() for r in caplog.records)
    assert h.commands("boom", "prefix", "error") == 1
