"""SIGTERM of real `comet run` processes under traffic, with every REST call slowed to 150 ms.

Members of a test guild keep sending commands (oshi registrations, slow work, pings) through the
emulator's control API; one command is known to be running when the signal arrives. Each stop must
exit 0 with a clean log (no "Ignoring exception", no "Session is closed", no traceback, no false
"Command … failed"), answer the command that was running, and keep every write that was
acknowledged to its member. Token mode against a standalone emulator, the offline demo, and two
shard processes.

``SIGTERM_ROUNDS=20 .venv/bin/pytest tests/bot/test_bot_sigterm.py`` runs more stops than CI's three.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from bot_support import base_env
from processes import Child, Children, read, wait_http
from waiting import wait_until

from comet.core.demo_guild import FAN_SERVER_SEED
from comet.features.talents import default_directory
from discord_emulator.testing.client import TEST_TOKEN

REST_LATENCY = 0.15
ROUNDS = int(os.environ.get("SIGTERM_ROUNDS", "3"))
MEMBERS = 5
#: Output no clean stop may contain (the log file is read too: it has every level down to DEBUG).
FORBIDDEN = ("Ignoring exception", "Session is closed", "Traceback", "ServerDisconnectedError")
FALSE_FAILURE = re.compile(r"Command \S+ failed")
EXTENSIONS = "comet.features.cogs.monitoring,comet.features.cogs.community,comet.features.cogs.demo"


def talent_keys() -> list[str]:
    """Talent keys that match exactly one talent, as a member would type them."""
    directory = default_directory()
    keys = []
    for talent in directory.talents:
        result = directory.match(talent.key)
        if result.talent is talent and not result.ambiguous:
            keys.append(talent.key)
    assert len(keys) >= MEMBERS * 4
    return keys


@dataclass
class Member:
    """One member in a channel of its own, so that the next bot message there is the reply."""

    user_id: str
    channel_id: str
    talents: list[str]
    acked: str | None = None  # the last registration the bot confirmed
    after_ack: list[str] = field(default_factory=list)  # sent since, not (yet) confirmed
    replies: int = 0


class Control:
    def __init__(self, http: aiohttp.ClientSession, base: str) -> None:
        self.http = http
        self.base = f"{base}/_control"

    async def post(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        async with self.http.post(f"{self.base}/{path}", json=body) as resp:
            return resp.status, await resp.json()

    async def say(self, channel_id: str, author_id: str, content: str) -> dict[str, Any]:
        status, message = await self.post(
            "messages", {"channel_id": channel_id, "author_id": author_id, "content": content}
        )
        assert status == 200, message
        return message  # type: ignore[no-any-return]

    async def reply_to(self, channel_id: str, message: dict[str, Any], timeout: float) -> str | None:  # noqa: ASYNC109
        status, body = await self.post(
            "wait-reply", {"channel_id": channel_id, "after": message["id"], "timeout": timeout}
        )
        return str(body["content"]) if status == 200 else None

    async def ask(self, channel_id: str, author_id: str, content: str, timeout: float = 10) -> str | None:  # noqa: ASYNC109
        return await self.reply_to(channel_id, await self.say(channel_id, author_id, content), timeout)

    async def guild(self, members: int) -> dict[str, Any]:
        status, guild = await self.post(
            "guilds", {"name": "sigterm", "members": members, "channels": members + 2}
        )
        assert status == 200, guild
        return guild  # type: ignore[no-any-return]


async def member_traffic(control: Control, member: Member, stopping: asyncio.Event) -> None:
    """Commands one after another until ``stopping``; registrations are tracked for the check.

    One command at a time: the next is sent only once the previous one is answered (or the test is
    stopping), so the first bot message after a command in the member's channel is its reply. (With
    a give-up timeout instead, a late reply would be read as the answer to the next command, and a
    late "💖" as the confirmation of a registration that was never committed.)
    """
    step = 0
    while not stopping.is_set():
        kind = step % 3
        if kind == 0:
            talent = member.talents[step // 3 % len(member.talents)]
            member.after_ack.append(talent)
            content = f"!oshi set {talent}"
        else:
            content = "!work 0.3" if kind == 1 else "!ping"
        message = await control.say(member.channel_id, member.user_id, content)
        reply = None
        while reply is None and not stopping.is_set():
            reply = await control.reply_to(member.channel_id, message, 3)
        if reply is None:
            return  # stopping, unanswered: a registration stays in after_ack
        if kind == 0 and reply.startswith("💖"):
            member.acked, member.after_ack = talent, []
        member.replies += 1
        step += 1


async def wait_answering(control: Control, channel_id: str, author_id: str) -> None:
    """Until the bot answers in this channel (it learns of a new guild from GUILD_CREATE)."""

    async def answered() -> bool:
        return await control.ask(channel_id, author_id, "!ping", 1) is not None

    await wait_until(answered, 60, interval=0, what="the bot answering in the test guild")


async def sigterm_under_traffic(
    control: Control, guild: dict[str, Any], members: list[Member], procs: list[Child]
) -> None:
    """Traffic, then SIGTERM while a known command runs; asserts that command was answered."""
    spare_channel, probe_channel = guild["channel_ids"][-2:]
    spare_author, probe_author = guild["member_ids"][:2]
    stopping = asyncio.Event()
    drivers = [asyncio.ensure_future(member_traffic(control, m, stopping)) for m in members]
    try:
        # Traffic is flowing: every member got answers.
        try:
            await wait_until(lambda: all(m.replies >= 2 for m in members), 60, what="members answered")
        except TimeoutError:
            pass  # the assertion below shows how far each member got
        assert all(m.replies >= 2 for m in members), [m.replies for m in members]
        # Events reach discord.py in order and start in order: once the ping posted after `work` is
        # answered, `work` is running, so the signal lands in the middle of it.
        work = await control.say(spare_channel, spare_author, "!work 1.2")
        assert await control.ask(probe_channel, probe_author, "!ping") is not None
        # Asked before the signal: the demo's emulator lives in the bot's process and goes with it.
        work_reply = asyncio.ensure_future(control.reply_to(spare_channel, work, 10))
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        codes = [await proc.wait(30) for proc in procs]
    finally:
        stopping.set()
        await asyncio.gather(*drivers, return_exceptions=True)
    outputs = {str(p.out): read(p.out) + read(p.out.with_suffix(".log")) for p in procs}
    assert codes == [0] * len(procs), outputs
    for name, text in outputs.items():
        for needle in FORBIDDEN:
            assert needle not in text, (name, needle, text[-4000:])
        assert not FALSE_FAILURE.search(text), (name, text[-4000:])
        assert "running command(s) finished" in text, (name, text[-4000:])
    # The command that was running when the signal came was answered before the bot closed.
    assert await work_reply is not None


def assert_writes_kept(db: Path, guild_id: str, members: list[Member]) -> None:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        rows = dict(conn.execute("SELECT user_id, talent_key FROM oshi WHERE guild_id = ?", (int(guild_id),)))
    confirmed = [m for m in members if m.acked is not None]
    assert confirmed, "no registration was confirmed"
    for member in confirmed:
        # The confirmed value, or one sent after it whose commit raced the stop.
        allowed = {member.acked, *member.after_ack}
        assert rows.get(int(member.user_id)) in allowed, (member, rows.get(int(member.user_id)))


def make_members(guild: dict[str, Any]) -> list[Member]:
    keys = talent_keys()
    return [
        Member(str(uid), str(channel), keys[i * 4 : i * 4 + 4])
        for i, (uid, channel) in enumerate(zip(guild["member_ids"][2:], guild["channel_ids"], strict=False))
    ]


async def wait_ready(http: aiohttp.ClientSession, proc: Child) -> str:
    """Until the process printed its metrics URL and its /readyz says ready; the metrics base URL."""
    metrics = await proc.wait_for_line(r"metrics: (http://\S+)/metrics")
    await wait_http(http, f"{metrics}/readyz")
    return metrics


async def slow_test_guild(
    http: aiohttp.ClientSession, emulator_url: str
) -> tuple[Control, dict[str, Any], list[Member]]:
    """A guild of members with a channel each, on an emulator whose every REST call is slow."""
    control = Control(http, emulator_url)
    assert (await control.post("faults", {"fault": "slow_rest", "delay": REST_LATENCY}))[0] == 200
    guild = await control.guild(MEMBERS + 2)
    return control, guild, make_members(guild)


@pytest_asyncio.fixture
async def standalone(tmp_path: Path, children: Children) -> AsyncIterator[tuple[dict[str, Any], Path]]:
    proc = await children.start(
        "discord_emulator",
        "--seed",
        FAN_SERVER_SEED,
        "--port",
        "0",
        "--shards",
        "2",
        env=base_env(tmp_path, "emu"),
        out=tmp_path / "emulator.out",
    )
    yield json.loads(await proc.wait_for_line(r"(\{.*\"gateway_url\".*\})")), proc.out
    await proc.stop()  # fails the test if it does not stop within the bound (it is killed then)


def bot_env(tmp_path: Path, name: str, emulator: dict[str, Any], **extra: str) -> dict[str, str]:
    return base_env(
        tmp_path,
        name,
        COMET_TOKEN=TEST_TOKEN,
        COMET_DISCORD_API_BASE=emulator["api_base"],
        COMET_DISCORD_GATEWAY_URL=emulator["gateway_url"],
        COMET_EXTENSIONS=EXTENSIONS,
        COMET_DATABASE_PATH=str(tmp_path / "comet.db"),
        COMET_SHARD_COUNT="2",
        **extra,
    )


@pytest.mark.asyncio
@pytest.mark.timeout(60 + 40 * ROUNDS)
async def test_sigterm_of_comet_run_under_traffic_is_clean_and_loses_no_write(
    tmp_path: Path, standalone: tuple[dict[str, Any], Path], children: Children
) -> None:
    emulator, _ = standalone
    async with aiohttp.ClientSession() as http:
        control, guild, members = await slow_test_guild(http, emulator["url"])
        for round_ in range(ROUNDS):  # the same database across restarts
            env = bot_env(tmp_path, f"bot{round_}", emulator)
            proc = await children.start("comet", "run", env=env, out=tmp_path / f"bot{round_}.out")
            await wait_ready(http, proc)
            await wait_answering(control, guild["channel_ids"][-1], guild["member_ids"][1])
            await sigterm_under_traffic(control, guild, members, [proc])
            assert_writes_kept(tmp_path / "comet.db", guild["guild_id"], members)


@pytest.mark.asyncio
@pytest.mark.timeout(120)
async def test_sigterm_of_two_shard_processes_under_traffic(
    tmp_path: Path, standalone: tuple[dict[str, Any], Path], children: Children
) -> None:
    emulator, _ = standalone
    async with aiohttp.ClientSession() as http:
        control, guild, members = await slow_test_guild(http, emulator["url"])
        procs = []
        for shard in (0, 1):
            env = bot_env(tmp_path, f"shard{shard}", emulator, COMET_SHARD_IDS=str(shard))
            procs.append(await children.start("comet", "run", env=env, out=tmp_path / f"shard{shard}.out"))
        for proc in procs:
            await wait_ready(http, proc)
        await wait_answering(control, guild["channel_ids"][-1], guild["member_ids"][1])
        # The test guild is on one shard; the other process is stopped while idle or serving
        # the emulator's seeded guild: both must stop cleanly.
        await sigterm_under_traffic(control, guild, members, procs)
        assert_writes_kept(tmp_path / "comet.db", guild["guild_id"], members)


@pytest.mark.asyncio
@pytest.mark.timeout(180)
async def test_sigterm_of_the_offline_demo_under_traffic(tmp_path: Path, children: Children) -> None:
    async with aiohttp.ClientSession() as http:
        for round_ in range(2):
            env = base_env(
                tmp_path,
                f"demo{round_}",
                COMET_DEMO_RATE="15",
                COMET_DEMO_FAIL_RATIO="0",  # `boom` fails on purpose, with a traceback: not here
                COMET_DEMO_SLOW_RATIO="0.2",
                COMET_DEMO_SLOW_SECONDS="0.5",
                COMET_DATABASE_PATH=str(tmp_path / "demo.db"),
            )
            del env["COMET_EXTENSIONS"]  # every extension, as `make run` starts it
            proc = await children.start("comet", "run", env=env, out=tmp_path / f"demo{round_}.out")
            base = await proc.wait_for_line(r"emulator: (http://\S+)")
            await wait_ready(http, proc)
            control, guild, members = await slow_test_guild(http, base)
            await wait_answering(control, guild["channel_ids"][-1], guild["member_ids"][1])
            await sigterm_under_traffic(control, guild, members, [proc])
            assert_writes_kept(tmp_path / "demo.db", guild["guild_id"], members)
