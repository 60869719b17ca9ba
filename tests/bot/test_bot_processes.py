"""Real processes: `python -m comet run` against a standalone emulator — shards split over two
processes, each with its own /metrics; graceful SIGTERM; a metrics port in use stops start-up."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from bot_support import base_env, metric
from processes import Child, Children, read, wait_http
from waiting import wait_until

from comet.core.demo_guild import DEMO, FAN_SERVER_SEED, seed_fan_server
from discord_emulator.testing.client import TEST_TOKEN

SHARDS = 4


def pings(text: str) -> float | None:
    return metric(text, "comet_commands_total", command="ping", kind="prefix", outcome="success")


async def scrape_until(http: aiohttp.ClientSession, base: str, done: Callable[[str], bool]) -> str:
    """The process's /metrics text once ``done(text)`` (or the last one read after 10 s)."""
    scraped: list[str] = []

    async def answered() -> bool:
        scraped.append(await wait_http(http, f"{base}/metrics"))
        return done(scraped[-1])

    try:
        await wait_until(answered, 10, interval=0.05, what=f"{base}/metrics")
    except TimeoutError:
        pass  # the caller's assertion shows what the last scrape said
    return scraped[-1]


@pytest_asyncio.fixture
async def standalone_emulator(tmp_path: Path, children: Children) -> AsyncIterator[dict[str, Any]]:
    emulator = await children.start(
        "discord_emulator",
        "--seed",
        FAN_SERVER_SEED,
        "--port",
        "0",
        "--shards",
        str(SHARDS),
        env=base_env(tmp_path, "emu"),
        out=tmp_path / "emulator.out",
    )
    yield json.loads(await emulator.wait_for_line(r"(\{.*\"gateway_url\".*\})"))
    await emulator.stop()  # fails the test if it does not stop within the bound (it is killed then)


@pytest.mark.asyncio
@pytest.mark.timeout(120)
async def test_two_processes_split_four_shards(
    tmp_path: Path, standalone_emulator: dict[str, Any], children: Children
) -> None:
    control = f"{standalone_emulator['url']}/_control"
    async with aiohttp.ClientSession() as http:
        # Guilds until every shard has at least two: (guild_id >> 22) % 4 decides the shard.
        guilds: dict[int, list[dict[str, Any]]] = {s: [] for s in range(SHARDS)}
        for i in range(80):
            if all(len(g) >= 2 for g in guilds.values()):
                break
            async with http.post(f"{control}/guilds", json={"name": f"fan-{i}", "members": 1}) as resp:
                assert resp.status == 200, await resp.text()
                guild = await resp.json()
            guilds[(int(guild["guild_id"]) >> 22) % SHARDS].append(guild)
        assert all(guilds.values()), "could not place a guild on every shard"

        procs: dict[str, Child] = {}
        for name, ids in (("a", "0,1"), ("b", "2,3")):
            env = base_env(
                tmp_path,
                name,
                COMET_TOKEN=TEST_TOKEN,
                COMET_DISCORD_API_BASE=standalone_emulator["api_base"],
                COMET_DISCORD_GATEWAY_URL=standalone_emulator["gateway_url"],
                COMET_SHARD_COUNT=str(SHARDS),
                COMET_SHARD_IDS=ids,
            )
            procs[name] = await children.start("comet", "run", env=env, out=tmp_path / f"{name}.out")
        try:
            urls = {}
            for name, proc in procs.items():
                urls[name] = await proc.wait_for_line(r"metrics: (http://\S+)/metrics")
                await wait_http(http, f"{urls[name]}/readyz")

            # Every guild, on every shard, is answered (by whichever process runs its shard).
            for shard_guilds in guilds.values():
                for guild in shard_guilds:
                    channel, author = guild["channel_ids"][0], guild["member_ids"][0]
                    async with http.post(
                        f"{control}/messages",
                        json={"channel_id": channel, "author_id": author, "content": "!ping"},
                    ) as resp:
                        message = await resp.json()
                    async with http.post(
                        f"{control}/wait-reply",
                        json={"channel_id": channel, "after": message["id"], "timeout": 10},
                    ) as resp:
                        assert resp.status == 200, await resp.text()
                        assert (await resp.json())["content"].startswith("🏓")

            for name, own, other in (("a", (0, 1), (2, 3)), ("b", (2, 3), (0, 1))):
                expected = sum(len(guilds[s]) for s in own)
                text = await scrape_until(http, urls[name], lambda text, n=expected: pings(text) == n)
                assert pings(text) == expected, (name, pings(text), expected)
                # The emulator's seeded fan-server guild lives on a shard too.
                seeded = 1 if (DEMO.guild_id >> 22) % SHARDS in own else 0
                assert metric(text, "comet_guilds") == expected + seeded
                assert metric(text, "comet_ready") == 1
                for shard in own:
                    assert metric(text, "comet_shard_up", shard=str(shard)) == 1
                    assert metric(text, "comet_gateway_disconnects_total", shard=str(shard)) == 0
                for shard in other:
                    assert f'shard="{shard}"' not in text, f"process {name} shows shard {shard}"
        finally:
            codes = {name: await proc.stop() for name, proc in procs.items()}
        # SIGTERM is a graceful shutdown: exit 0.
        assert codes == {"a": 0, "b": 0}, {n: (tmp_path / f"{n}.out").read_text()[-2000:] for n in codes}


@pytest.mark.asyncio
async def test_metrics_port_in_use_is_a_clear_start_up_error(tmp_path: Path, children: Children) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = base_env(tmp_path, "busy", COMET_TOKEN=TEST_TOKEN, COMET_METRICS_PORT=str(port))
        proc = await children.start("comet", "run", env=env, out=tmp_path / "busy.out")
        code = await proc.wait(30)
    output = read(proc.out)
    assert code == 1, output
    assert f"127.0.0.1:{port}" in output
    assert "COMET_METRICS_PORT" in output
    assert "Traceback" not in output


@pytest.mark.asyncio
async def test_a_refused_token_is_a_clear_error_without_the_token(tmp_path: Path, children: Children) -> None:
    from discord_emulator import Emulator

    wrong = "wrong-token.abc.SIGNATUREPART"
    async with Emulator(token="the-right.token.value", seed=seed_fan_server) as emu:
        env = base_env(
            tmp_path,
            "refused",
            COMET_TOKEN=wrong,
            COMET_DISCORD_API_BASE=emu.api_base,
            COMET_DISCORD_GATEWAY_URL=emu.gateway_url,
        )
        proc = await children.start("comet", "run", env=env, out=tmp_path / "refused.out")
        code = await proc.wait(30)
    output = read(proc.out) + read(tmp_path / "refused.log")
    assert code == 1, output
    assert "COMET_TOKEN: Discord refused the token" in output
    assert "SIGNATUREPART" not in output and wrong not in output
