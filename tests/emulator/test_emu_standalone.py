"""The emulator on its own: a package that imports nothing of the bot it serves, and a standalone
server (``python -m discord_emulator``) that an ordinary discord.py bot, knowing nothing of COMET,
logs in to on Discord's root gateway path as well as on ``/gateway``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import discord
import pytest
import pytest_asyncio
from discord.ext import commands
from processes import Children, child_env

from discord_emulator.endpoints import point_discord_at, restoring_endpoints
from discord_emulator.seeds import EXAMPLE
from discord_emulator.testing.client import fast_ready, start_client, stop_client, test_intents

ROOT = Path(__file__).resolve().parents[2]

IMPORT_EVERYTHING = """
import pkgutil, importlib, sys
import discord_emulator
for info in pkgutil.walk_packages(discord_emulator.__path__, "discord_emulator."):
    importlib.import_module(info.name)
print(sorted(m for m in sys.modules if m.split(".")[0] in ("comet", "instrumentation", "tests")))
"""


def test_the_package_imports_nothing_of_the_bot() -> None:
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_EVERYTHING], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest_asyncio.fixture
async def standalone(children: Children, tmp_path: Path) -> dict[str, Any]:
    """``python -m discord_emulator`` with its defaults (the example guild), on a free port."""
    child = await children.start(
        "discord_emulator", "--port", "0", env=child_env(), out=tmp_path / "emu.out", cwd=ROOT
    )
    info: dict[str, Any] = json.loads(await child.wait_for_line(r'(\{"url": .*\})'))
    return info


@pytest.mark.asyncio
@pytest.mark.parametrize("path", ["/", "/gateway"])
async def test_an_ordinary_bot_logs_in_sends_and_syncs(standalone: dict[str, Any], path: str) -> None:
    bot = fast_ready(commands.Bot(command_prefix="!", intents=test_intents()))

    @bot.command()
    async def hello(ctx: commands.Context[commands.Bot]) -> None:
        await ctx.send(f"hello {ctx.author.name}")

    @bot.tree.command(description="Greets you")
    async def greet(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("greetings")

    assert standalone["gateway_url"].endswith(":" + str(standalone["port"]) + "/")  # Discord's shape
    control = f"{standalone['url']}/_control"
    with restoring_endpoints():
        point_discord_at(standalone["api_base"], standalone["url"].replace("http", "ws", 1) + path)
        task = await start_client(bot, None)
        try:
            guild = bot.get_guild(EXAMPLE.guild_id)
            assert guild is not None and guild.name == "Example Guild"
            assert guild.get_channel(EXAMPLE.general_channel_id) is not None
            synced = await bot.tree.sync()
            assert [c.name for c in synced] == ["greet"]
            async with aiohttp.ClientSession() as http:
                async with http.get(f"{control}/state") as response:
                    sessions = (await response.json())["sessions"]
                assert [s["path"] for s in sessions] == [path]
                message = {
                    "channel_id": str(EXAMPLE.general_channel_id),
                    "author_id": EXAMPLE.member_id,
                    "content": "!hello",
                }
                async with http.post(f"{control}/messages", json=message) as response:
                    sent = await response.json()
                wait = {"channel_id": EXAMPLE.general_channel_id, "after": sent, "timeout": 15}
                async with http.post(f"{control}/wait-reply", json=wait) as response:
                    assert (await response.json())["content"] == "hello example_member"
                slash = {
                    "channel_id": str(EXAMPLE.general_channel_id),
                    "author_id": EXAMPLE.member_id,
                    "name": "greet",
                }
                async with http.post(f"{control}/interactions", json=slash) as response:
                    assert response.status == 200, await response.text()
                    interaction = await response.json()
                wait = {"channel_id": EXAMPLE.general_channel_id, "after": interaction, "timeout": 15}
                async with http.post(f"{control}/wait-reply", json=wait) as response:
                    assert (await response.json())["content"] == "greetings"
        finally:
            await stop_client(bot, task)


def test_an_unknown_seed_is_a_clear_error() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "discord_emulator", "--port", "0", "--seed", "nosuch.module:seed"],
        capture_output=True, text=True, cwd=ROOT, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2
    assert "seed 'nosuch.module:seed': cannot import nosuch.module" in result.stderr
    assert "Traceback" not in result.stderr


def _imports(path: Path) -> set[str]:
    """Every discord_emulator module ``path`` imports (also under TYPE_CHECKING)."""
    import ast

    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("discord_emulator"):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("discord_emulator"))
    return found


def test_the_core_knows_no_transport_and_transports_not_each_other() -> None:
    package = ROOT / "discord_emulator"
    # The Emulator's own modules (its composition, acting as users, observation) sit above the
    # transports: neither the core nor a transport that serves it may reach up to them.
    emulator = ("discord_emulator.server", "discord_emulator.drivers", "discord_emulator.observation")
    layers = {
        "core": ("discord_emulator.transports", "discord_emulator.testing", *emulator),
        "transports/rest": (
            "discord_emulator.transports.gateway",
            "discord_emulator.transports.control",
            *emulator,
        ),
        "transports/gateway": (
            "discord_emulator.transports.rest",
            "discord_emulator.transports.control",
            *emulator,
        ),
    }
    for folder, forbidden in layers.items():
        paths = sorted((package / folder).rglob("*.py"))
        assert paths, f"no modules under {folder}"
        for path in paths:
            bad = {m for m in _imports(path) if m.startswith(forbidden)}
            assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"
