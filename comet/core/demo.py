"""The offline demo: the emulator's fan-server guild, the bot on it, and synthetic members using it.

``comet run`` without a token starts an in-process :class:`discord_emulator.Emulator` (on
``COMET_EMULATOR_PORT``, 0 = any free port), points discord.py at it, starts the real bot with the
demo extension, and lets the members of the seeded guild chat and run commands — prefix and slash —
at ``COMET_DEMO_RATE`` per second. A share ``COMET_DEMO_SLOW_RATIO`` runs the slow ``work`` command
(``COMET_DEMO_SLOW_SECONDS``), a share ``COMET_DEMO_FAIL_RATIO`` runs ``boom``, which fails; the rest
is everyday traffic with the occasional user mistake. So ``/metrics``, the dashboards and the alerts
have live data without Discord.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from comet.core.config import DEMO_EXTENSION, Settings
from comet.core.launcher import (
    Runtime,
    ShutdownSignals,
    StartupError,
    install_signal_handlers,
    start_runtime,
    wait_until_stopped,
)

log = logging.getLogger(__name__)

#: Any string works as a token for the emulator; it is still scrubbed like a real one. Random, so
#: that its last segment (scrubbed on its own, like a real token's signature) matches nothing else.
DEMO_TOKEN = f"ZGVtbw.{secrets.token_urlsafe(6)}.{secrets.token_urlsafe(27)}"
#: How long the bot may take to log in to the local emulator.
READY_TIMEOUT = 60.0
#: Most synthetic actions in flight at once (slow commands must not pile up without bound).
MAX_IN_FLIGHT = 32
#: Extra synthetic members, so that each one chats at a human pace: with only the seeded eight, any
#: demo rate above a few actions per second reads as spam and the anti-spam rule times them all out.
CROWD_SIZE = 60
CROWD_NAMES = ("野うさぎ", "宝鐘の一味", "星詠み", "35P", "ころねすきー", "Deadbeat", "Chumbud", "Takodachi")


@dataclass(frozen=True)
class Action:
    """One synthetic user action: a chat line, or a command (``prefix`` or ``slash``)."""

    kind: str  # "chat" | "spam" | "prefix" | "slash"
    command: str = ""
    argument: str = ""
    options: tuple[tuple[str, Any], ...] = ()

    def content(self, prefix: str) -> str:
        return f"{prefix}{self.command}{' ' + self.argument if self.argument else ''}"


#: Everyday traffic (weights): chat, the monitoring commands, community commands when loaded,
#: and a few user mistakes (bad argument, unknown command) so every outcome shows on the dashboards.
EVERYDAY: tuple[tuple[float, Action], ...] = (
    (30, Action("chat")),
    (12, Action("prefix", "ping")),
    (12, Action("slash", "ping")),
    (6, Action("prefix", "health")),
    (6, Action("slash", "health")),
    (4, Action("prefix", "stats")),
    (4, Action("slash", "stats")),
    (6, Action("prefix", "work", "0.05")),
    (6, Action("slash", "work", options=(("seconds", 0.05),))),
    (5, Action("prefix", "omikuji")),
    (5, Action("slash", "omikuji")),
    (3, Action("prefix", "oshi ranking")),
    (2, Action("prefix", "work", "many")),  # bad argument
    (2, Action("prefix", "helth")),  # unknown command (a typo)
    (1, Action("spam")),  # one member floods a channel: the anti-spam rule answers with a timeout
)
CHAT_LINES = (
    "こんにちは！",
    "ぺこらの配信最高だった",
    "今日のマリン船長の歌枠よかった",
    "すいちゃんは今日もかわいい",
    "おつかれさまでした〜",
    "Did anyone catch the collab stream?",
)


class DemoDriver:
    """Synthetic members of the demo guild, acting at ``settings.demo_rate`` per second."""

    def __init__(
        self,
        emulator: Any,
        settings: Settings,
        *,
        channel_ids: Sequence[int],
        member_ids: Sequence[int],
        available: Callable[[str], bool] = lambda name: True,
        rng: random.Random | None = None,
    ) -> None:
        if not channel_ids or not member_ids:
            raise ValueError("the demo needs at least one channel and one member")
        self.emulator = emulator
        self.settings = settings
        self.channel_ids = list(channel_ids)
        self.member_ids = list(member_ids)
        self.available = available
        self.rng = rng or random.Random()
        self.sent = 0
        self.failed = 0
        self.refused = 0  # a member timed out by the anti-spam rule cannot post, as on Discord
        self._slots = asyncio.Semaphore(MAX_IN_FLIGHT)
        self._tasks: set[asyncio.Task[None]] = set()

    def choose(self) -> Action:
        s = self.settings
        roll = self.rng.random()
        slash = self.rng.random() < 0.5
        if roll < s.demo_fail_ratio:
            return Action("slash" if slash else "prefix", "boom")
        if roll < s.demo_fail_ratio + s.demo_slow_ratio:
            seconds = round(s.demo_slow_seconds, 2)
            if slash:
                return Action("slash", "work", options=(("seconds", seconds),))
            return Action("prefix", "work", f"{seconds}")
        candidates = [(w, a) for w, a in EVERYDAY if a.kind in ("chat", "spam") or self.available(a.command)]
        weights = [w for w, _ in candidates]
        return self.rng.choices([a for _, a in candidates], weights=weights, k=1)[0]

    async def perform(self, action: Action) -> None:
        channel = self.rng.choice(self.channel_ids)
        member = self.rng.choice(self.member_ids)
        if action.kind == "chat":
            await self.emulator.send_message(channel, member, self.rng.choice(CHAT_LINES))
        elif action.kind == "spam":
            for _ in range(self.settings.antispam_messages + 1):
                await self.emulator.send_message(channel, member, self.rng.choice(CHAT_LINES))
        elif action.kind == "prefix":
            await self.emulator.send_message(channel, member, action.content(self.settings.prefix))
        else:
            name, _, sub = action.command.partition(" ")
            await self.emulator.send_slash(
                channel, member, name, options=dict(action.options), subcommand=sub or None
            )

    async def _run_one(self, action: Action) -> None:
        try:
            await self.perform(action)
            self.sent += 1
        except PermissionError as exc:
            # The emulator refuses a timed-out member's message like Discord does: expected, no stack.
            self.refused += 1
            log.debug("demo action %s refused: %s", action.kind, exc)
        except Exception:
            self.failed += 1
            log.debug("demo action %s failed", action, exc_info=True)
        finally:
            self._slots.release()

    async def run(self) -> None:
        """Act forever (until cancelled), paced by the configured rate with Poisson-like gaps."""
        rate = self.settings.demo_rate
        try:
            while True:
                # Pacing of synthetic traffic, not a wait for a condition.
                await asyncio.sleep(self.rng.expovariate(rate))
                await self._slots.acquire()
                task = asyncio.get_running_loop().create_task(self._run_one(self.choose()))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        finally:
            for task in list(self._tasks):
                task.cancel()


def demo_settings(settings: Settings, emulator: Any) -> Settings:
    extensions = settings.extensions
    if DEMO_EXTENSION not in extensions:
        extensions = (*extensions, DEMO_EXTENSION)
    return replace(
        settings,
        token=DEMO_TOKEN,
        discord_api_base=emulator.api_base,
        discord_gateway_url=emulator.gateway_url,
        extensions=extensions,
    )


async def start_demo(settings: Settings) -> tuple[Any, Runtime, DemoDriver]:
    """Emulator, bot runtime (connected and ready) and the driver (not yet running)."""
    from comet.core.demo_guild import DEMO, seed_fan_server
    from discord_emulator import Emulator

    emulator = Emulator(
        host="127.0.0.1",
        port=settings.emulator_port,
        shard_count=settings.shard_count or 1,
        seed=seed_fan_server,
    )
    try:
        await emulator.start()
    except OSError as exc:
        raise StartupError(
            f"COMET_EMULATOR_PORT: cannot listen on 127.0.0.1:{settings.emulator_port} "
            f"({exc.strerror or exc}); choose a free port or 0"
        ) from exc
    crowd = [
        emulator.add_member(
            DEMO.guild_id,
            name=f"{CROWD_NAMES[i % len(CROWD_NAMES)]}{i // len(CROWD_NAMES) + 1}",
            roles=[DEMO.member_role_id],
        )
        for i in range(CROWD_SIZE)
    ]
    try:
        runtime = await start_runtime(demo_settings(settings, emulator))
    except BaseException:
        await emulator.stop()
        raise
    bot = runtime.bot
    _speed_up_start(bot)
    bot_task = runtime.start_bot(DEMO_TOKEN)
    ready = asyncio.ensure_future(bot.wait_until_ready())
    await asyncio.wait([ready, bot_task], timeout=READY_TIMEOUT, return_when=asyncio.FIRST_COMPLETED)
    if not ready.done():
        ready.cancel()
        error = bot_task.exception() if bot_task.done() and not bot_task.cancelled() else None
        await runtime.close()
        await emulator.stop()
        reason = f"{type(error).__name__}: {error}" if error else f"not ready within {READY_TIMEOUT:g} s"
        raise StartupError(f"The demo bot could not connect to the emulator ({reason})")
    driver = DemoDriver(
        emulator,
        runtime.settings,
        channel_ids=[DEMO.general_channel_id, DEMO.oshi_talk_channel_id, DEMO.bot_commands_channel_id],
        member_ids=[*DEMO.member_ids, *crowd],
        available=lambda name: bot.get_command(name) is not None,
    )
    return emulator, runtime, driver


def _speed_up_start(bot: Any) -> None:
    # The emulator sends every guild at once: no need to wait discord.py's 2 s for stragglers.
    from discord_emulator.testing.client import fast_ready

    fast_ready(bot)


async def run_demo(settings: Settings, *, announce: Callable[[str], None] = print) -> int:
    """``comet run`` without a token: run the demo until SIGINT/SIGTERM."""
    signals = ShutdownSignals()
    remove_handlers = install_signal_handlers(signals)
    try:
        emulator, runtime, driver = await start_demo(settings)
    except BaseException:
        remove_handlers()
        raise
    driver_task = asyncio.get_running_loop().create_task(driver.run(), name="comet-demo-driver")
    try:
        announce("C.O.M.E.T. offline demo (no COMET_TOKEN: a local Discord emulator, synthetic members)")
        announce(f"emulator: {emulator.url}")
        for name, url in runtime.endpoints().items():
            announce(f"{name:>8}: {url}")
        announce(
            f"traffic: {settings.demo_rate:g} actions/s, {settings.demo_slow_ratio:.1%} slow "
            f"({settings.demo_slow_seconds:g} s), {settings.demo_fail_ratio:.1%} failing on purpose "
            "(`boom`: its tracebacks below are expected). Ctrl+C stops."
        )
        error = await wait_until_stopped(runtime, signals.stop, driver_task)
    finally:
        # The synthetic members stop first, so the bot drains only what they had already asked for.
        driver_task.cancel()
        with contextlib.suppress(BaseException):
            await driver_task
        try:
            await runtime.close(hurry=signals.hurry)
            await emulator.stop()
        finally:
            remove_handlers()
    if error is not None:
        announce(f"The demo stopped: {type(error).__name__}: {error}")
        return 1
    return 0
