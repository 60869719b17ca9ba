"""The offline demo is a healthy bot by default: its deliberate slow and failing commands stay under
the thresholds of CometSlowResponses (p95 over 1 s: more than 5% of commands slow) and
CometHighErrorRatio (more than 5% failing), with room for a 5-minute window's randomness."""

from __future__ import annotations

import asyncio
import logging
import math
import random
from types import SimpleNamespace

import pytest
import yaml
from processes import ROOT

from comet.core.config import Settings
from comet.core.demo import Action, DemoDriver

#: Commands in one 5-minute window at the default rate (2 actions/s, about three in four commands).
WINDOW = 2 * 300 * 3 // 4


def alert_threshold(name: str) -> float:
    rules = yaml.safe_load((ROOT / "alerting" / "rules" / "alerts.yml").read_text())["groups"][0]["rules"]
    expr = next(r["expr"] for r in rules if r.get("alert") == name)
    first = expr.strip().splitlines()[0]
    return float(first.rsplit(">", 1)[1])


def test_default_demo_traffic_stays_under_the_alert_thresholds() -> None:
    settings = Settings()
    driver = DemoDriver(None, settings, channel_ids=[1], member_ids=[2], rng=random.Random(11))
    actions = [driver.choose() for _ in range(50_000)]
    commands = [a for a in actions if a.kind in ("prefix", "slash")]
    slow = sum(
        1
        for a in commands
        if a.command == "work"
        and settings.demo_slow_seconds > 1.0
        and (
            a.argument == f"{settings.demo_slow_seconds}"
            or dict(a.options).get("seconds") == settings.demo_slow_seconds
        )
    )
    failing = sum(1 for a in commands if a.command == "boom")
    error_limit = alert_threshold("CometHighErrorRatio")  # 0.05
    slow_limit = 1 - 0.95  # a p95 over 1 s needs more than 5% of the commands over 1 s
    for share, limit in ((slow / len(commands), slow_limit), (failing / len(commands), error_limit)):
        # Three standard deviations of a window's share below the limit: a default demo never pages.
        spread = 3 * math.sqrt(share * (1 - share) / WINDOW)
        assert share + spread < limit, (share, spread, limit)
    assert slow > 0 and failing > 0  # the panels still have slow and failing commands to show


async def _refusing_send(*args: object, **kwargs: object) -> None:
    raise PermissionError("user 1 is timed out in guild 2")


def test_a_timed_out_member_is_refused_quietly(caplog: pytest.LogCaptureFixture) -> None:
    # The anti-spam rule times out the demo's spammer; the emulator then refuses that member's
    # messages as Discord does. That is expected, so no stack trace in the log (the SIGTERM tests
    # read every log line for "Traceback").
    emulator = SimpleNamespace(send_message=_refusing_send)
    driver = DemoDriver(emulator, Settings(), channel_ids=[1], member_ids=[2], rng=random.Random(3))
    driver._slots = asyncio.Semaphore(1)
    with caplog.at_level(logging.DEBUG, logger="comet.core.demo"):
        asyncio.run(driver._run_one(Action("chat")))
    assert (driver.refused, driver.sent, driver.failed) == (1, 0, 0)
    assert [r.exc_info for r in caplog.records if r.name == "comet.core.demo"] == [None]
