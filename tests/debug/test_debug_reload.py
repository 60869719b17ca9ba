"""Hot reload from Discord (real CometBot on the emulator): reports, refusals, and reloading every
extension twice while members keep using the bot — no count lost, no duplicated timeseries."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator

import pytest
from harness import CometFactory
from prometheus_client import generate_latest
from waiting import wait_until

from comet.core.config import DEFAULT_EXTENSIONS
from comet.core.demo_guild import DEMO


def lines(message) -> list[str]:
    return message.content.splitlines()


@pytest.mark.asyncio
@pytest.mark.parametrize("locale", ["ja", "en"])
async def test_reload_load_unload_report_each_extension(comet_factory: CometFactory, locale: str) -> None:
    h = await comet_factory(
        locale=locale,
        extensions=(
            "comet.features.cogs.monitoring",
            "comet.features.cogs.debug",
            "comet.features.cogs.reload",
        ),
    )
    t = h.bot.i18n.t

    report = lines(await h.ask("!reload debug monitoring"))
    assert report[0].startswith(
        "✅ " + t("reload.reload_done", extension="comet.features.cogs.debug", ms="").split("(")[0]
    )
    assert "comet.features.cogs.monitoring" in report[1] and report[1].startswith("✅ ")
    assert report[-1] == t("reload.summary", ok=2, total=2)
    assert h.reloads("reload", "success") == 2
    await wait_until(lambda: h.invocations("reload", "ok") >= 1)
    assert h.invocations("reload", "ok") == 1

    report = lines(await h.ask("!unload monitoring"))
    assert report[0].startswith("✅ ") and "comet.features.cogs.monitoring" in report[0]
    assert h.bot.get_command("ping") is None
    report = lines(await h.ask("!load monitoring comet.features.cogs.no_such_extension"))
    assert report[0].startswith("✅ ") and h.bot.get_command("ping") is not None
    assert report[1].startswith(
        "❌ " + t("reload.load_error", extension="comet.features.cogs.no_such_extension", error="")
    )
    assert "ExtensionNotFound" in report[1]
    assert report[-1] == t("reload.summary", ok=1, total=2)
    assert h.reloads("load", "error") == 1
    await wait_until(lambda: h.invocations("load", "error") >= 1)
    assert h.invocations("load", "error") == 1

    refused = lines(await h.ask("!unload reload"))
    assert refused[0] == "❌ " + t("reload.refused_unload", extension="comet.features.cogs.reload")
    assert "comet.features.cogs.reload" in h.bot.extensions

    modules = lines(await h.ask("!reload instrumentation.metrics comet.core.bot comet.no_such_module"))
    assert modules[0] == "❌ " + t("reload.module_refused", module="instrumentation.metrics")
    assert modules[1] == "❌ " + t("reload.module_refused", module="comet.core.bot")
    assert modules[2] == "❌ " + t("reload.module_missing", module="comet.no_such_module")

    assert (await h.ask("!reload")).content == t("reload.usage", command="reload")


@pytest.fixture
def restore_talents_module() -> Iterator[None]:
    """Give ``comet.features.talents`` its namespace back after the test reloaded it in this process.

    ``importlib.reload`` re-executes the module in place: later tests would otherwise hold the old
    classes (``TalentDataError``, ...) while the module raises and returns the new ones.
    """
    import comet.features.talents

    saved = dict(vars(comet.features.talents))
    yield
    vars(comet.features.talents).clear()
    vars(comet.features.talents).update(saved)


@pytest.mark.asyncio
@pytest.mark.usefixtures("restore_talents_module")
async def test_a_helper_module_reload_also_reloads_the_extensions_using_it(
    comet_factory: CometFactory,
) -> None:
    extensions = ("comet.features.cogs.debug", "comet.features.cogs.reload", "comet.features.cogs.community")
    h = await comet_factory(extensions=extensions)
    report = lines(await h.ask("!reload comet.features.talents"))
    assert report[0] == "✅ モジュール comet.features.talents をリロードしました"  # the seed's message
    assert report[1].startswith("✅ ") and "comet.features.cogs.community" in report[1]
    assert report[-1] == h.bot.i18n.t("reload.summary", ok=2, total=2)


def counter_samples(registry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    samples = {}
    for family in registry.collect():
        if family.type != "counter":
            continue
        for sample in family.samples:
            if sample.name.endswith("_total"):
                samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


async def chatter(
    h, channel: int, author: int, stop: asyncio.Event, answered: list[str], answered_ids: list[int]
) -> None:
    """A member using ``!ping`` over and over, each time waiting for the bot's answer."""
    while not stop.is_set():
        message = await h.say("!ping", author=author, channel=channel)
        reply = await h.emulator.wait_for_reply(channel, after=message, timeout=10)
        answered.append(reply.content)
        answered_ids.append(reply.id)


@pytest.mark.asyncio
async def test_reload_every_extension_twice_under_traffic_keeps_every_count(
    comet_factory: CometFactory, caplog
) -> None:
    extensions = tuple(e for e in DEFAULT_EXTENSIONS)
    h = await comet_factory(extensions=extensions, antispam_messages=100_000)
    assert set(extensions) <= set(h.bot.extensions), h.bot.extensions
    caplog.set_level(logging.WARNING)
    registry = h.registry
    channels = [DEMO.oshi_talk_channel_id, DEMO.bot_commands_channel_id, DEMO.general_channel_id]
    members = DEMO.member_ids[:3]

    stop = asyncio.Event()
    answered: list[str] = []
    answered_ids: list[int] = []

    # In each `reload ~`, one extension's reload waits until a member's ping sent after the command
    # has been answered: that the bot answers while a reload runs is then a fact the test checks,
    # not an accident of timing (a bot that stopped answering during reloads would fail here).
    real_reload = h.bot.reload_extension
    mod_log = h.emulator.world.channels[DEMO.mod_log_channel_id]
    paused: list[str] = []

    async def reload_while_members_are_answered(name: str, *, package: str | None = None) -> None:
        if name == extensions[0]:
            command_id = mod_log.last_message_id  # the `!reload ~` being run (its report comes after)
            await wait_until(lambda: any(i > command_id for i in answered_ids), timeout=10)
            paused.append(name)
        await real_reload(name, package=package)

    h.bot.reload_extension = reload_while_members_are_answered
    traffic = [
        asyncio.create_task(chatter(h, c, m, stop, answered, answered_ids))
        for c, m in zip(channels, members, strict=True)
    ]
    try:
        await wait_until(lambda: len(answered) >= 6, timeout=10)  # traffic is flowing
        before = counter_samples(registry)
        pings_before = len(answered)

        for round_ in (1, 2):
            command = await h.say("!reload ~", channel=DEMO.mod_log_channel_id)
            reply = await h.emulator.wait_for_reply(DEMO.mod_log_channel_id, after=command, timeout=20)
            report = lines(reply)
            # Members were answered while the reload ran (ids are snowflakes: they order in time).
            assert paused == [extensions[0]] * round_
            assert any(int(command["id"]) < i < reply.id for i in answered_ids), round_
            assert all(line.startswith("✅ ") for line in report[:-1]), report
            assert report[-1] == h.bot.i18n.t("reload.summary", ok=len(extensions), total=len(extensions))
            assert h.reloads("reload", "success") == round_ * len(extensions)
            # Messages kept flowing during the reload.
            seen = len(answered)
            await wait_until(lambda seen=seen: len(answered) >= seen + 3, timeout=10)
    finally:
        stop.set()
        results = await asyncio.gather(*traffic, return_exceptions=True)
    assert not [r for r in results if isinstance(r, BaseException)], results

    assert len(answered) > pings_before
    pongs = sum(a.startswith("🏓") for a in answered)
    assert pongs >= len(answered) - 6  # at most a few land in the instant a cog is swapped

    def ping_successes() -> float:
        return h.commands("ping", "prefix", "success")

    # The count is recorded when the command completes, just after its reply went out.
    try:
        await wait_until(lambda: ping_successes() >= pongs, timeout=5)
    except TimeoutError:
        pass  # the assertion below shows the count
    assert ping_successes() >= pongs, (ping_successes(), pongs)
    after = counter_samples(registry)
    for key, value in before.items():  # no counter lost its value (or its series)
        assert key in after, key
        assert after[key] >= value, (key, value, after[key])
    assert (
        sum(
            v
            for (name, labels), v in after.items()
            if name == "comet_commands_total" and ("outcome", "error") in labels
        )
        == 0
    )
    assert sum(v for (name, _), v in after.items() if name == "comet_instrumentation_errors_total") == 0
    assert h.reloads("reload", "error") == 0
    exposition = generate_latest(registry).decode()  # renders: no duplicated timeseries anywhere
    assert "comet_extension_reloads_total" in exposition
    assert not [r for r in caplog.records if "Duplicated" in r.getMessage() or r.levelno >= logging.ERROR]


@pytest.mark.asyncio
@pytest.mark.parametrize("locale", ["ja", "en"])
async def test_reload_watch_on_and_off_in_debug_mode(comet_factory: CometFactory, locale: str) -> None:
    h = await comet_factory(locale=locale, debug_mode=True)
    reloader = h.bot.get_cog("Reload").reloader
    assert not reloader.watching
    assert (await h.ask("!reload watch on")).content == h.bot.i18n.t("reload.watch_on", seconds="1")
    assert reloader.watching
    assert (await h.ask("!reload watch off")).content == h.bot.i18n.t("reload.watch_off")
    assert not reloader.watching
    await wait_until(lambda: h.invocations("reload", "ok") >= 2)
    assert h.invocations("reload", "ok") == 2


@pytest.mark.asyncio
async def test_the_watcher_starts_with_the_bot_when_configured(comet_factory: CometFactory) -> None:
    h = await comet_factory(debug_mode=True, reload_watch=True)
    reloader = h.bot.get_cog("Reload").reloader
    assert reloader.watching
    await wait_until(reloader.watch_ready.is_set)
    assert "comet.features.cogs.debug" in reloader._watched_files()
    off = await comet_factory(debug_mode=False, reload_watch=True)
    assert not off.bot.get_cog("Reload").reloader.watching  # debug mode only
