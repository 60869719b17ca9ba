"""`comet run` without a token: the offline demo produces live /metrics, /healthz and /readyz."""

from __future__ import annotations

import random
from pathlib import Path

import aiohttp
import pytest
from bot_support import base_env, metric
from processes import Children, read, wait_http
from waiting import wait_until

from comet.core.config import Settings
from comet.core.demo import DemoDriver


def total(text: str, name: str, **labels: str) -> float:
    """Sum of every series of ``name`` whose labels include ``labels``."""
    result = 0.0
    for line in text.splitlines():
        if not (line.startswith(name + "{") or line.startswith(name + " ")):
            continue
        series, _, value = line.rpartition(" ")
        if all(f'{k}="{v}"' in series for k, v in labels.items()):
            result += float(value)
    return result


@pytest.mark.asyncio
@pytest.mark.timeout(90)
async def test_offline_demo_serves_live_metrics(tmp_path: Path, children: Children) -> None:
    env = base_env(
        tmp_path,
        "demo",
        COMET_DEMO_RATE="25",
        COMET_DEMO_SLOW_RATIO="0.2",
        COMET_DEMO_SLOW_SECONDS="0.3",
        COMET_DEMO_FAIL_RATIO="0.2",
    )
    del env["COMET_EXTENSIONS"]  # the demo as `make run` starts it: every extension
    proc = await children.start("comet", "run", env=env, out=tmp_path / "demo.out")
    base = await proc.wait_for_line(r"metrics: (http://\S+)/metrics")
    output = read(proc.out)
    assert f"healthz: {base}/healthz" in output and f"readyz: {base}/readyz" in output
    assert "emulator: http://127.0.0.1:" in output
    async with aiohttp.ClientSession() as http:
        assert "alive" in await wait_http(http, f"{base}/healthz")
        assert '"healthy"' in await wait_http(http, f"{base}/readyz")
        first = total(await wait_http(http, f"{base}/metrics"), "comet_commands_total")
        scraped: list[str] = []

        def seen(text: str) -> dict[str, bool]:
            return {
                # Far past the point where eight members at this rate would all be timed out by
                # the anti-spam rule (about 50 commands): the crowd keeps the demo alive.
                "rising": total(text, "comet_commands_total") > first + 200,
                "slash": total(text, "comet_commands_total", kind="slash") > 0,
                "errors": total(text, "comet_commands_total", command="boom", outcome="error") > 0,
                "slow": total(text, "comet_command_duration_seconds_bucket", command="work", le="+Inf")
                > total(text, "comet_command_duration_seconds_bucket", command="work", le="0.25"),
            }

        async def live() -> bool:
            # Live data: the command counter keeps rising, with slow, failing and slash commands.
            scraped.append(await wait_http(http, f"{base}/metrics"))
            return all(seen(scraped[-1]).values())

        try:
            await wait_until(live, 45, interval=0.2, what="live demo metrics")
        except TimeoutError:
            pass  # the assertion below shows what is missing
        text = scraped[-1]
        assert all(seen(text).values()), seen(text)
        assert metric(text, "comet_ready") == 1
        assert metric(text, "comet_guilds") == 1
        assert total(text, "comet_gateway_events_total", event="MESSAGE_CREATE") > 0
        assert total(text, "process_resident_memory_bytes") > 0
        assert "comet_event_loop_lag_seconds_count" in text
        assert total(text, "comet_log_records_total") > 0
    code = await proc.stop()
    assert code == 0, proc.output()
    output = read(proc.out)
    # Failing demo commands log their traceback (server side); nothing is left unhandled.
    assert "Ignoring exception" not in output
    assert "[REDACTED]" not in output  # nothing but secrets is scrubbed from the log


def test_the_demo_mix_follows_the_configured_ratios() -> None:
    settings = Settings(demo_slow_ratio=0.2, demo_fail_ratio=0.1, demo_slow_seconds=1.5)
    driver = DemoDriver(
        None,
        settings,
        channel_ids=[1],
        member_ids=[2],
        available=lambda name: name != "omikuji",
        rng=random.Random(7),
    )
    actions = [driver.choose() for _ in range(20_000)]
    failing = [a for a in actions if a.command == "boom"]
    slow = [
        a
        for a in actions
        if a.command == "work" and (a.argument == "1.5" or a.options == (("seconds", 1.5),))
    ]
    assert abs(len(failing) / len(actions) - 0.1) < 0.01
    assert abs(len(slow) / len(actions) - 0.2) < 0.015
    assert {a.kind for a in actions} == {"chat", "spam", "prefix", "slash"}
    assert {a.kind for a in failing} == {"prefix", "slash"} == {a.kind for a in slow}
    assert not any(a.command == "omikuji" for a in actions)  # only commands the bot has
    prefixed = {a.content("!") for a in actions if a.kind == "prefix"}
    assert {"!boom", "!work 1.5", "!ping", "!helth"} <= prefixed
