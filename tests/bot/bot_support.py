"""Helpers of the bot's tests: a real CometBot (real discord.py) on the emulator, and the
subprocess plumbing of the process tests. (A uniquely named module: every tests/ folder has its own
conftest.py, so test modules import helpers from here, not from ``conftest``.)"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from prometheus_client import CollectorRegistry

from comet.core.bot import CometBot
from comet.core.config import Settings
from comet.core.demo_guild import DEMO
from comet.core.telemetry import Telemetry
from discord_emulator import Emulator
from discord_emulator.testing.client import TEST_TOKEN, fast_ready, start_client

#: The bot's extensions in these tests: the ones this area owns plus a test-only cog of failure paths.
TEST_EXTENSIONS = ("comet.features.cogs.monitoring", "comet.features.cogs.demo", "bot_failures_ext")


@dataclass
class CometEnv:
    emulator: Emulator
    bot: CometBot
    registry: CollectorRegistry
    telemetry: Telemetry

    def sample(self, name: str, **labels: str) -> float:
        # What a scrape shows once the hooks' pending batch is written (they write every 0.1 s).
        self.bot.flush_metrics()
        value = self.registry.get_sample_value(name, labels)
        return 0.0 if value is None else value

    def registry_text(self) -> str:
        from prometheus_client import generate_latest

        self.bot.flush_metrics()
        return generate_latest(self.registry).decode()

    def commands(self, command: str, kind: str, outcome: str) -> float:
        return self.sample("comet_commands_total", command=command, kind=kind, outcome=outcome)

    async def until(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Wait for a condition on the bot's side (metrics), yielding to the loop between checks."""
        await wait_until(predicate, timeout)

    async def ask(self, content: str, *, author: int | None = None, channel: int | None = None) -> Any:
        """Send ``content`` as a member and return the bot's reply as users see it."""
        channel = channel or DEMO.general_channel_id
        msg = await self.emulator.send_message(channel, author or DEMO.member_ids[0], content)
        return await self.emulator.wait_for_reply(channel, after=msg, timeout=5)

    async def slash(
        self,
        name: str,
        options: dict[str, Any] | None = None,
        *,
        author: int | None = None,
        channel: int | None = None,
        subcommand: str | None = None,
    ) -> Any:
        channel = channel or DEMO.general_channel_id
        inter = await self.emulator.send_slash(
            channel, author or DEMO.member_ids[0], name, options or {}, subcommand=subcommand
        )
        return await self.emulator.wait_for_reply(channel, after=inter, timeout=5)


async def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.005)  # yield to the bot's tasks; the condition is re-checked, not assumed


def make_settings(emulator: Emulator, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "token": TEST_TOKEN,
        "extensions": TEST_EXTENSIONS,
        "discord_api_base": emulator.api_base,
        "discord_gateway_url": emulator.gateway_url,
        "log_path": None,
    }
    values.update(overrides)
    return Settings(**values)


async def start_comet(emulator: Emulator, **overrides: Any) -> tuple[CometEnv, asyncio.Task[None]]:
    settings = make_settings(emulator, **overrides)
    registry = CollectorRegistry()
    telemetry = Telemetry.create(registry, settings)
    bot = CometBot(settings, telemetry)
    fast_ready(bot)
    task = await start_client(bot, emulator, token=TEST_TOKEN)
    env = CometEnv(emulator=emulator, bot=bot, registry=registry, telemetry=telemetry)
    # Connected and every shard up (the listeners run as tasks right after READY).
    await wait_until(lambda: env.sample("comet_ready") == 1.0)
    return env, task


# -- processes -----------------------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]


def base_env(tmp_path: Path, name: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMET_")}
    env.update(
        PYTHONPATH=str(ROOT),
        COMET_METRICS_PORT="0",
        COMET_LOG_PATH=str(tmp_path / f"{name}.log"),
        COMET_DATABASE_PATH=str(tmp_path / f"{name}.db"),
        COMET_EXTENSIONS="comet.features.cogs.monitoring",
    )
    env.update(extra)
    return env


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""


async def wait_for_line(
    path: Path,
    pattern: str,
    proc: asyncio.subprocess.Process,
    timeout: float = 30,  # noqa: ASYNC109
) -> str:
    """The first match of ``pattern`` in a process's output file (the process writes it as it starts)."""
    deadline = time.monotonic() + timeout
    regex = re.compile(pattern)
    while time.monotonic() < deadline:
        match = regex.search(read(path))
        if match:
            return match.group(1)
        if proc.returncode is not None:
            raise AssertionError(f"process exited {proc.returncode}: {read(path)[-3000:]}")
        await asyncio.sleep(0.05)  # the process is writing its output; look again
    raise TimeoutError(f"{pattern!r} not in {path}: {read(path)[-3000:]}")


async def wait_http(http: aiohttp.ClientSession, url: str, status: int = 200, timeout: float = 30) -> Any:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            async with http.get(url) as resp:
                last = (resp.status, await resp.text())
                if resp.status == status:
                    return last[1]
        except aiohttp.ClientError as exc:
            last = exc
        await asyncio.sleep(0.1)
    raise TimeoutError(f"{url}: last answer {last!r}")


async def start(args: list[str], env: dict[str, str], out: Path) -> asyncio.subprocess.Process:
    handle = out.open("wb")
    try:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            *args,
            env=env,
            cwd=str(out.parent),
            stdout=handle,
            stderr=asyncio.subprocess.STDOUT,
        )
    finally:
        handle.close()


async def stop(proc: asyncio.subprocess.Process, timeout: float = 15) -> int:  # noqa: ASYNC109
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise
    assert proc.returncode is not None
    return proc.returncode


def metric(text: str, name: str, **labels: str) -> float | None:
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        series, _, value = line.rpartition(" ")
        head, _, rest = series.partition("{")
        if head != name:
            continue
        have = ",".join(sorted(rest.rstrip("}").split(","))) if rest else ""
        if have == wanted:
            return float(value)
    return None
