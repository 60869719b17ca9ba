"""Several processes at once: a sharded bot split over two processes, and the standalone emulator
driven through its control API by another process."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import aiohttp
import discord
import pytest
import pytest_asyncio
from discord.ext import commands
from processes import Children, child_env

from comet.core.demo_guild import DEMO, FAN_SERVER_SEED
from discord_emulator import Emulator
from discord_emulator.endpoints import point_discord_at, restoring_endpoints
from discord_emulator.testing.client import fast_ready, start_client, stop_client
from discord_emulator.testing.pytest_plugin import test_intents

HERE = Path(__file__).parent
ROOT = HERE.parent.parent


@pytest.mark.asyncio
async def test_sharded_bot_split_over_two_processes(
    emulator: Emulator, children: Children, tmp_path: Path
) -> None:
    emulator.shard_count = 2
    demo_shard = (DEMO.guild_id >> 22) % 2  # 1
    local_shard = 1 - demo_shard
    other_guild = emulator.add_guild("shard-local", members=2, shard=local_shard)
    other_channel = emulator.world.guilds[other_guild].channel_ids[0]
    other_member = next(u for u in emulator.world.guilds[other_guild].members if u != DEMO.bot_user_id)

    proc = await children.spawn(
        sys.executable,
        str(HERE / "emu_shard_bot.py"),
        emulator.api_base,
        emulator.gateway_url,
        "2",
        str(demo_shard),
        env=child_env(),
        out=tmp_path / "shard.out",
        cwd=ROOT,
    )
    bot = fast_ready(
        commands.AutoShardedBot(
            command_prefix="!", intents=test_intents(), shard_count=2, shard_ids=[local_shard]
        )
    )

    @bot.command()
    async def who(ctx: commands.Context[commands.AutoShardedBot]) -> None:
        await ctx.send(f"pid {os.getpid()} shard {ctx.guild.shard_id if ctx.guild else None}")

    task = await start_client(bot, emulator)
    try:
        await emulator.wait_for(lambda: sorted(emulator.gateway.shards_connected()) == [0, 1], timeout=30)
        assert [g.id for g in bot.guilds] == [other_guild]  # the demo guild belongs to the other process
        msg = await emulator.send_message(DEMO.general_channel_id, DEMO.member_ids[0], "!who")
        remote = await emulator.wait_for_reply(DEMO.general_channel_id, after=msg, timeout=15)
        assert remote.content == f"pid {proc.pid} shard {demo_shard}"
        msg = await emulator.send_message(other_channel, other_member, "!who")
        local = await emulator.wait_for_reply(other_channel, after=msg)
        assert local.content == f"pid {os.getpid()} shard {local_shard}"
    finally:
        await stop_client(bot, task)
        await proc.stop()


@pytest_asyncio.fixture
async def standalone(children: Children, tmp_path: Path) -> dict[str, Any]:
    """``python -m discord_emulator`` in its own process; the addresses it prints once listening."""
    child = await children.start(
        "discord_emulator", "--seed", FAN_SERVER_SEED, "--port", "0", "--shards", "2",
        env=child_env(), out=tmp_path / "emulator.out", cwd=ROOT,
    )  # fmt: skip
    info: dict[str, Any] = json.loads(await child.wait_for_line(r'(\{"url": .*\})'))
    return info


@pytest.mark.asyncio
async def test_standalone_emulator_with_control_api(standalone: dict[str, Any]) -> None:
    control = f"{standalone['url']}/_control"
    bot = fast_ready(commands.AutoShardedBot(command_prefix="!", intents=test_intents()))

    @bot.command()
    async def ping(ctx: commands.Context[commands.AutoShardedBot]) -> None:
        await ctx.send("pong")

    resumed: set[int] = set()
    both_resumed = asyncio.Event()

    @bot.event
    async def on_shard_resumed(shard_id: int) -> None:
        resumed.add(shard_id)
        if len(resumed) == 2:
            both_resumed.set()

    with restoring_endpoints():
        point_discord_at(standalone["api_base"], standalone["gateway_url"])
        task = await start_client(bot, None)
        try:
            assert bot.shard_count == 2  # recommended by the standalone's /gateway/bot
            async with aiohttp.ClientSession() as http:
                message = {
                    "channel_id": str(DEMO.general_channel_id),
                    "author_id": DEMO.member_ids[0],
                    "content": "!ping",
                }
                async with http.post(f"{control}/messages", json=message) as response:
                    assert response.status == 200
                    sent = await response.json()
                wait = {"channel_id": DEMO.general_channel_id, "after": sent, "timeout": 10}
                async with http.post(f"{control}/wait-reply", json=wait) as response:
                    assert response.status == 200 and (await response.json())["content"] == "pong"
                async with http.post(f"{control}/faults", json={"fault": "reconnect"}) as response:
                    assert (await response.json())["affected"] == 2
                async with http.post(f"{control}/messages", json=message) as response:
                    sent = await response.json()
                async with http.post(f"{control}/wait-reply", json={**wait, "after": sent}) as response:
                    assert (await response.json())["content"] == "pong"
                await asyncio.wait_for(
                    both_resumed.wait(), 10
                )  # the reply proves only the demo shard's RESUME
                async with http.get(f"{control}/state") as response:
                    state = await response.json()
                assert state["resume_count"] >= 2 and state["identify_count"] == 2
                assert sorted(s["shard"][0] for s in state["sessions"]) == [0, 1]
                route = {"route": "/channels/{channel_id}/messages"}
                async with http.get(f"{control}/requests", params=route) as response:
                    assert [r["json"]["content"] for r in await response.json()] == ["pong", "pong"]
                async with http.get(f"{control}/channels/{DEMO.general_channel_id}/messages") as response:
                    assert [m["content"] for m in await response.json()] == ["pong", "pong"]
        finally:
            await stop_client(bot, task)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("method", "path", "body", "reason"),
    [
        ("POST", "/messages", b"{not json", "malformed JSON"),
        ("POST", "/messages", b"[1, 2]", "JSON object"),
        ("POST", "/messages", b'{"channel_id": 1}', "author_id"),
        ("POST", "/messages", b'{"channel_id": "x", "author_id": 1, "content": "a"}', "integer id"),
        ("POST", "/messages", b'{"channel_id": 1, "author_id": 1, "content": "a"}', "unknown"),
        ("POST", "/interactions", b'{"channel_id": 555666777, "author_id": 1, "name": 5}', "string"),
        ("POST", "/faults", b'{"fault": "meteor"}', "unknown fault"),
        ("POST", "/faults", b'{"fault": "slow_rest"}', "delay"),
        ("POST", "/faults", b'{"fault": "server_error", "status": 404}', "5xx"),
        ("POST", "/faults", b'{"fault": "rate_limit", "retry_after": 1, "count": 0}', "count"),
        ("POST", "/self-destruct", b"{}", "unknown control command"),
        ("GET", "/requests?limit=lots", b"", "limit"),
        ("GET", "/channels/abc/messages", b"", "integer"),
    ],
)
async def test_control_api_rejects_bad_input_with_400(
    emulator: Emulator, method: str, path: str, body: bytes, reason: str
) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.request(method, f"{emulator.url}/_control{path}", data=body) as response:
            assert response.status == 400
            assert response.headers["Content-Type"] == "application/json"
            assert reason in (await response.json())["error"]
        async with http.get(f"{emulator.url}/_control/state") as response:  # still serving
            assert response.status == 200
    assert emulator.faults.active is False


@pytest.mark.asyncio
async def test_control_api_drives_an_in_process_bot(emulator: Emulator, discord_bot: commands.Bot) -> None:
    @discord_bot.tree.command(description="echo")
    async def echo(interaction: discord.Interaction, text: str) -> None:
        await interaction.response.send_message(text)

    async with aiohttp.ClientSession() as http:
        payload = {"channel_id": DEMO.general_channel_id, "author_id": DEMO.member_ids[0], "name": "echo",
                   "options": {"text": "ぺこ"}}  # fmt: skip
        async with http.post(f"{emulator.url}/_control/interactions", json=payload) as response:
            interaction = await response.json()
        reply = await emulator.wait_for_reply(DEMO.general_channel_id, after=interaction)
        assert reply.content == "ぺこ"
        fault = {"fault": "rate_limit", "retry_after": 0.01, "route": "POST /channels/{channel_id}/messages"}
        async with http.post(f"{emulator.url}/_control/faults", json=fault) as response:
            assert response.status == 200
        assert emulator.faults.active
        hook = {"channel_id": DEMO.alerts_channel_id, "name": "alertmanager"}
        async with http.post(f"{emulator.url}/_control/webhooks", json=hook) as response:
            created = await response.json()
        assert created["url"].startswith(f"{emulator.url}/api/webhooks/")
