"""Nothing acknowledged to a user is lost: the real launcher (``python -m comet run``) in a subprocess,
connected to the emulator, gets a stream of ``warn`` / ``oshi set`` commands and is SIGKILLed in the
middle of it. Every write whose answer a user saw is in the database file, and the restarted bot
shows it.
"""

from __future__ import annotations

import asyncio
import re
import signal
import sqlite3
from pathlib import Path

import pytest
import pytest_asyncio
from community_support import MEMBERS, MOD
from processes import Child, Children, child_env, read
from waiting import wait_until

from comet.core.demo_guild import DEMO
from discord_emulator import Emulator
from discord_emulator.testing.client import TEST_TOKEN

CHANNEL = DEMO.general_channel_id
GUILD = DEMO.guild_id
WARNINGS = 48
# One oshi per member, each a different talent, so the answer names the member's write.
OSHI = dict(
    zip(MEMBERS, ["Pekora", "Marine", "Suisei", "Miko", "Korone", "Lamy", "Kanata", "Towa"], strict=True)
)
OSHI_KEYS = {
    "Pekora": "usada_pekora",
    "Marine": "houshou_marine",
    "Suisei": "hoshimachi_suisei",
    "Miko": "sakura_miko",
    "Korone": "inugami_korone",
    "Lamy": "yukihana_lamy",
    "Kanata": "amane_kanata",
    "Towa": "tokoyami_towa",
}
OSHI_JA = {
    "usada_pekora": "兎田ぺこら",
    "houshou_marine": "宝鐘マリン",
    "hoshimachi_suisei": "星街すいせい",
    "sakura_miko": "さくらみこ",
    "inugami_korone": "戌神ころね",
    "yukihana_lamy": "雪花ラミィ",
    "amane_kanata": "天音かなた",
    "tokoyami_towa": "常闇トワ",
}
ACKS_BEFORE_KILL = 12


class BotProcess:
    """``python -m comet run`` against the emulator, output in files under ``workdir``."""

    def __init__(self, emu: Emulator, children: Children, workdir: Path, db_path: Path) -> None:
        self.emu = emu
        self.children = children
        self.workdir = workdir
        self.db_path = db_path
        self.child: Child | None = None
        self.runs = 0

    async def start(self) -> None:
        env = child_env(
            COMET_TOKEN=TEST_TOKEN,
            COMET_DISCORD_API_BASE=self.emu.api_base,
            COMET_DISCORD_GATEWAY_URL=self.emu.gateway_url,
            COMET_DATABASE_PATH=str(self.db_path),
            COMET_METRICS_PORT="0",
            COMET_LOG_PATH=str(self.workdir / "comet.log"),
            COMET_ANTISPAM_MESSAGES="1000",
            COMET_LOCALE="ja",
        )
        self.runs += 1
        out = self.workdir / f"bot-{self.runs}.out"
        self.child = await self.children.start("comet", "run", env=env, out=out, cwd=self.workdir)
        await self.wait_ready()

    async def wait_ready(self, deadline: float = 60.0) -> None:
        """Ask ``!omikuji`` until the bot answers (it ignores messages until its guild is ready)."""
        child = self.child
        assert child is not None

        async def answers() -> bool:
            assert child.returncode is None, self.output()
            message = await self.emu.send_message(CHANNEL, MOD, "!omikuji")
            try:
                await self.emu.wait_for_reply(CHANNEL, after=message, timeout=1.0)
            except TimeoutError:
                return False
            return True

        try:
            await wait_until(answers, deadline, interval=0, what="the bot answering !omikuji")
        except TimeoutError:
            raise AssertionError(f"the bot did not answer within {deadline}s\n{self.output()}") from None

    def output(self) -> str:
        return "\n".join(read(p)[-3000:] for p in sorted(self.workdir.glob("bot-*.out")))

    async def kill(self) -> None:
        assert self.child is not None
        assert await self.child.kill() == -signal.SIGKILL

    async def stop(self) -> int:
        assert self.child is not None
        return await self.child.stop()


@pytest_asyncio.fixture
async def bot_process(emulator: Emulator, children: Children, tmp_path: Path) -> BotProcess:
    """The bot's child processes are reaped by ``children`` when the test ends, passed or failed."""
    return BotProcess(emulator, children, tmp_path, tmp_path / "data" / "comet.db")


def acknowledged(emu: Emulator) -> tuple[set[str], dict[int, str]]:
    """What users were told was saved: warning reasons and oshi (member -> talent key)."""
    reasons: set[str] = set()
    oshi: dict[int, str] = {}
    by_name = {name: key for key, name in OSHI_JA.items()}
    for message in emu.bot_messages(CHANNEL):
        warned = re.search(r"さんに警告しました（累計 \d+ 件）。理由: (durability-\d+)$", message.content)
        if warned:
            reasons.add(warned.group(1))
        registered = re.match(r"💖 (\S+) \(.*\) を推しに登録しました！", message.content)
        if registered:
            key = by_name[registered.group(1)]
            member = next(m for m, short in OSHI.items() if OSHI_KEYS[short] == key)
            oshi[member] = key
    return reasons, oshi


def on_disk(db_path: Path) -> tuple[set[str], dict[int, str]]:
    conn = sqlite3.connect(db_path)
    try:
        reasons = {row[0] for row in conn.execute("SELECT reason FROM warnings WHERE guild_id = ?", (GUILD,))}
        oshi = dict(
            conn.execute("SELECT user_id, talent_key FROM oshi WHERE guild_id = ?", (GUILD,)).fetchall()
        )
    finally:
        conn.close()
    return reasons, oshi


@pytest.mark.slow
@pytest.mark.asyncio
@pytest.mark.timeout(120)
async def test_sigkill_mid_stream_loses_no_acknowledged_write(
    bot_process: BotProcess, emulator: Emulator
) -> None:
    await bot_process.start()

    commands: list[tuple[int, str]] = []
    oshi_members = list(OSHI)
    for n in range(WARNINGS):
        commands.append((MOD, f"!warn <@{MEMBERS[n % len(MEMBERS)]}> durability-{n}"))
        if n % 6 == 5:
            member = oshi_members[n // 6]
            commands.append((member, f"!oshi set {OSHI[member]}"))

    async def stream() -> None:
        for author, content in commands:
            # Each send is delivered to the bot before it returns; the stream goes on through the kill.
            await emulator.send_message(CHANNEL, author, content)

    sender = asyncio.create_task(stream())
    await wait_until(lambda: sum(map(len, acknowledged(emulator))) >= ACKS_BEFORE_KILL, timeout=30.0)
    await bot_process.kill()
    await sender

    acked_reasons, acked_oshi = acknowledged(emulator)
    stored_reasons, stored_oshi = on_disk(bot_process.db_path)
    print(
        f"commands {len(commands)}, answered {len(acked_reasons)} warn + {len(acked_oshi)} oshi, "
        f"on disk {len(stored_reasons)} warn + {len(stored_oshi)} oshi"
    )
    # The kill landed mid-stream: some commands were never answered...
    assert len(acked_reasons) + len(acked_oshi) < len(commands), "the bot answered everything before the kill"
    # ...and every answered write is on disk.
    assert acked_reasons <= stored_reasons, sorted(acked_reasons - stored_reasons)
    for member, key in acked_oshi.items():
        assert stored_oshi.get(member) == key

    # The restarted bot shows what was acknowledged.
    await bot_process.start()
    target = MEMBERS[0]
    reply = await emulator.wait_for_reply(
        CHANNEL, after=await emulator.send_message(CHANNEL, MOD, f"!warnings <@{target}>"), timeout=10.0
    )
    for reason in acked_reasons:
        if int(reason.split("-")[1]) % len(MEMBERS) == 0:
            assert reason in reply.content
    for member, key in acked_oshi.items():
        shown = await emulator.wait_for_reply(
            CHANNEL, after=await emulator.send_message(CHANNEL, MOD, f"!oshi show <@{member}>"), timeout=10.0
        )
        assert OSHI_JA[key] in shown.content
    assert await bot_process.stop() == 0, bot_process.output()
