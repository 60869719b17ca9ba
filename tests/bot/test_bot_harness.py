"""The shared test plumbing does what the other tests rely on: the harness is the launcher's runtime
and closes like ``comet run`` on SIGTERM; ``wait_until`` waits for a condition and fails when it
never holds; child processes print their ready line, stop with SIGTERM, are killed after the bound,
and never outlive their test."""

from __future__ import annotations

import asyncio
import logging
import signal
import textwrap
from pathlib import Path

import aiohttp
import pytest
from harness import Harness
from processes import Children, child_env, read, run_python
from waiting import wait_until

from comet.core.launcher import Runtime
from discord_emulator import Emulator
from discord_emulator.testing.client import TEST_TOKEN
from instrumentation.logging import MARKER

# -- the harness -------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_the_harness_is_the_launchers_runtime_and_closes_through_it(
    comet: Harness, emulator: Emulator, tmp_path: Path
) -> None:
    assert isinstance(comet.runtime, Runtime)
    settings = comet.settings
    assert (settings.token, settings.discord_api_base, settings.discord_gateway_url) == (
        TEST_TOKEN,
        emulator.api_base,
        emulator.gateway_url,
    )
    assert settings.database_path == str(tmp_path / "comet.db") and comet.bot.store is comet.store
    assert comet.runtime.server.port != 0  # the launcher's metrics server, on the port it was given
    status, body = await comet.scrape("readyz")
    assert status == 200 and '"healthy"' in body
    # The product's logging, as start_runtime installs it: its handlers, writing the log file.
    product = [h for h in logging.getLogger().handlers if getattr(h, MARKER, False)]
    assert product
    for handler in product:
        handler.flush()
    assert comet.log_path == tmp_path / "comet.log" and "Synced" in read(comet.log_path)

    metrics_url = comet.runtime.endpoints()["metrics"]
    await comet.close()
    assert comet.bot.is_closed()
    assert comet.runtime.bot_task is not None and comet.runtime.bot_task.done()
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.ClientConnectionError):
            await http.get(metrics_url)
    await comet.close()  # a second close (the fixture's) does nothing


# -- wait_until ----------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_wait_until_returns_once_the_condition_holds() -> None:
    flag = asyncio.Event()
    asyncio.get_running_loop().call_soon(flag.set)
    await wait_until(flag.is_set)
    assert flag.is_set()

    probes: list[int] = []

    async def third_probe() -> bool:
        probes.append(1)
        return len(probes) == 3

    await wait_until(third_probe, interval=0)
    assert len(probes) == 3


@pytest.mark.asyncio
async def test_wait_until_fails_when_the_condition_never_holds_and_passes_errors_on() -> None:
    with pytest.raises(TimeoutError, match=r"never: not true within 0\.05 s"):
        await wait_until(lambda: False, 0.05, what="never")

    def broken() -> bool:
        raise LookupError("the predicate's own error")

    with pytest.raises(LookupError, match="the predicate's own error"):
        await wait_until(broken)


# -- child processes ---------------------------------------------------------------------------------

STUBBORN = """
import signal
import time

signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("stubborn ready", flush=True)
while True:
    time.sleep(1)
"""


@pytest.mark.asyncio
async def test_a_child_prints_its_ready_line_and_stops_on_sigterm(tmp_path: Path, children: Children) -> None:
    server = await children.start(
        "http.server",
        "0",
        "--bind",
        "127.0.0.1",
        env=child_env(PYTHONUNBUFFERED="1"),
        out=tmp_path / "http.out",
    )
    port = await server.wait_for_line(r"port (\d+)")
    assert int(port) > 0
    assert await server.stop() == -signal.SIGTERM  # http.server does not handle SIGTERM: it dies of it


@pytest.mark.asyncio
async def test_a_child_that_exits_before_its_ready_line_fails_the_wait(
    tmp_path: Path, children: Children
) -> None:
    quitter = await children.start("json.tool", "--help", env=child_env(), out=tmp_path / "quitter.out")
    with pytest.raises(AssertionError, match="exited before printing"):
        await quitter.wait_for_line(r"never printed", timeout=30)
    assert quitter.returncode == 0


@pytest.mark.asyncio
async def test_a_child_ignoring_sigterm_is_killed_after_the_bound_and_reaped(tmp_path: Path) -> None:
    (tmp_path / "stubborn_child.py").write_text(textwrap.dedent(STUBBORN), encoding="utf-8")
    started = Children(stop_timeout=0.2)
    try:
        stubborn = await started.start("stubborn_child", env=child_env(), out=tmp_path / "stubborn.out")
        await stubborn.wait_for_line("stubborn ready")
        with pytest.raises(AssertionError, match=r"did not exit within 0\.2 s"):
            await stubborn.stop(timeout=0.2)
        assert stubborn.returncode == -signal.SIGKILL

        again = await started.start("stubborn_child", env=child_env(), out=tmp_path / "again.out")
        await again.wait_for_line("stubborn ready")
    finally:
        await started.reap_all()  # what the ``children`` fixture does when a test ends, passed or failed
    assert again.returncode == -signal.SIGKILL


def test_run_python_runs_a_command_to_its_end_without_the_shells_comet_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COMET_LOCALE", "en")
    result = run_python("-c", "import os; print(sorted(k for k in os.environ if k.startswith('COMET_')))")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
