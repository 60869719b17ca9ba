"""The owner's tools as the owner sees them in Discord (real CometBot on the emulator), ja and en."""

from __future__ import annotations

import asyncio
import json
import logging
import tracemalloc

import pytest
from harness import CometFactory
from waiting import wait_until

from comet.core.demo_guild import DEMO

WORDS = {
    "ja": {
        "result": "結果",
        "error": "エラー",
        "timeit_ok": "で完了しました",
        "timeit_error": "で失敗しました",
    },
    "en": {"result": "Result", "error": "Error", "timeit_ok": "finished in", "timeit_error": "failed after"},
}


def body(message) -> str:
    """A reply's text without the code fence."""
    content = message.content
    if content.startswith("```\n") and content.endswith("\n```"):
        return content[4:-4]
    return content


@pytest.mark.asyncio
@pytest.mark.parametrize("locale", ["ja", "en"])
async def test_debug_results_errors_output_and_scope(comet_factory: CometFactory, locale: str) -> None:
    h = await comet_factory(locale=locale)
    w = WORDS[locale]

    assert body(await h.ask("!debug 1 + 1")) == f"{w['result']}: 2"
    assert body(await h.ask("!debug 1 / 0")) == f"{w['error']}: ZeroDivisionError: division by zero (line 1)"
    assert body(await h.ask("!debug x = ")).startswith(f"{w['error']}: SyntaxError")
    printed = await h.ask(
        '!debug\n```py\nfor i in range(3):\n    print("line", i)\nawait asyncio.sleep(0)\n```'
    )
    assert body(printed) == "line 0\nline 1\nline 2"
    scope = await h.ask("!debug (guild.id, channel.id, author.id, ctx.prefix, bot.user.id)")
    expected = (DEMO.guild_id, DEMO.general_channel_id, DEMO.owner_id, "!", DEMO.bot_user_id)
    assert body(scope) == f"{w['result']}: {expected}"
    assert body(await h.ask("!debug _ [2]")) == f"{w['result']}: {DEMO.owner_id}"  # `_` is the last result
    assert body(await h.ask("!debug raise SystemExit")) == f"{w['error']}: SystemExit (line 1)"
    assert not h.bot.is_closed()  # SystemExit in the owner's code does not stop the bot

    await wait_until(lambda: h.invocations("debug", "ok") >= 4)
    assert h.invocations("debug", "ok") == 4
    await wait_until(lambda: h.invocations("debug", "error") >= 3)
    assert h.invocations("debug", "error") == 3


@pytest.mark.asyncio
async def test_debug_output_never_mentions_anyone(comet_factory: CometFactory) -> None:
    h = await comet_factory()
    await h.ask(f"!debug '@everyone <@{DEMO.member_ids[0]}> <@&{DEMO.moderator_role_id}>'")
    sent = h.emulator.requests_to("/channels/{channel_id}/messages", "POST")[-1]
    assert sent.json["allowed_mentions"]["parse"] == []
    assert "@everyone" in sent.json["content"]


@pytest.mark.asyncio
async def test_long_output_is_paginated_and_very_long_output_sent_as_a_file(
    comet_factory: CometFactory,
) -> None:
    h = await comet_factory()
    message = await h.say("!debug print('x' * 4000)")
    await wait_until(lambda: len(h.replies_after(message)) >= 3)
    pages = h.replies_after(message)
    assert len(pages) == 3
    assert all(len(p.content) <= 1900 for p in pages)
    assert "".join(body(p) for p in pages) == "x" * 4000

    big = await h.ask("!debug\nfor i in range(2000):\n    print(f'row {i:05d}')")
    assert big.content == h.bot.i18n.t("debug.output_file", chars=len("row 00000\n") * 2000 - 1)
    assert len(big.files) == 1
    name, data = big.files[0]
    assert name == "output.txt"
    assert data.decode().splitlines()[0] == "row 00000" and data.decode().splitlines()[-1] == "row 01999"


@pytest.mark.asyncio
@pytest.mark.parametrize("locale", ["ja", "en"])
async def test_memory_report_tracing_and_collect(comet_factory: CometFactory, locale: str) -> None:
    h = await comet_factory(locale=locale)
    tracker = h.bot.telemetry.memory
    h.bot.tracked_probe = type("Probe", (), {})()
    tracker.track(h.bot.tracked_probe)

    report = body(await h.ask("!memory"))
    assert report.splitlines()[0] == h.bot.i18n.t("debug.memory.title")
    for key in ("tracked_objects: 1", "gc_objects:", "rss_bytes:", "MiB", "tracked_by_kind: Probe=1"):
        assert key in report, key
    assert h.bot.i18n.t("debug.memory.trace_off") in report

    was_tracing = tracemalloc.is_tracing()
    try:
        assert (await h.ask("!memory trace start")).content == h.bot.i18n.t("debug.memory.trace_started")
        assert tracemalloc.is_tracing()
        await h.ask("!debug bot.ballast = [bytearray(1024) for _ in range(2000)]")
        traced = body(await h.ask("!memory"))
        assert h.bot.i18n.t("debug.memory.growth_title") in traced
        assert "KiB" in traced and "<debug>" in traced  # the allocation site of the ballast
        assert (await h.ask("!memory trace stop")).content == h.bot.i18n.t("debug.memory.trace_stopped")
    finally:
        if not was_tracing:
            tracker.stop_tracing()
    assert tracemalloc.is_tracing() == was_tracing

    collected = body(await h.ask("!memory collect"))
    assert collected.splitlines()[0].startswith(h.bot.i18n.template("debug.memory.collected").split("{")[0])
    assert collected.splitlines()[1] == h.bot.i18n.t("debug.memory.title")
    await wait_until(lambda: h.invocations("memory", "ok") >= 5)
    assert h.invocations("memory", "ok") == 5


@pytest.mark.asyncio
@pytest.mark.parametrize("locale", ["ja", "en"])
async def test_tasks_listing_and_cancel(comet_factory: CometFactory, locale: str) -> None:
    h = await comet_factory(locale=locale)
    victim = asyncio.get_running_loop().create_task(asyncio.sleep(3600), name="victim-task")
    try:
        listing = body(await h.ask("!tasks"))
        lines = listing.splitlines()
        assert lines[0] == h.bot.i18n.t("debug.tasks.title", count=len(lines) - 1)
        number = next(int(line.split(".")[0]) for line in lines[1:] if " victim-task " in line)
        assert any(line.endswith("*") for line in lines[1:])  # the command's own task is marked

        reply = await h.ask(f"!tasks cancel {number}")
        assert reply.content == h.bot.i18n.t("debug.tasks.cancelled", number=number, name="victim-task")
        with pytest.raises(asyncio.CancelledError):
            await victim
        again = await h.ask(f"!tasks cancel {number}")
        assert again.content == h.bot.i18n.t("debug.tasks.no_such_task", number=number)
        assert (await h.ask("!tasks cancel 999")).content == h.bot.i18n.t(
            "debug.tasks.no_such_task", number=999
        )
    finally:
        victim.cancel()
    await wait_until(lambda: h.invocations("tasks", "ok") >= 4)
    assert h.invocations("tasks", "ok") == 4


@pytest.mark.asyncio
@pytest.mark.parametrize("locale", ["ja", "en"])
async def test_loglevel(comet_factory: CometFactory, locale: str) -> None:
    h = await comet_factory(locale=locale)
    logger = logging.getLogger("comet.debugtest")
    logger.setLevel(logging.INFO)
    try:
        reply = await h.ask("!loglevel warning comet.debugtest")
        assert reply.content == h.bot.i18n.t(
            "debug.loglevel.changed", logger="comet.debugtest", old="INFO", new="WARNING"
        )
        assert logger.level == logging.WARNING
        shown = await h.ask("!loglevel")
        root = logging.getLevelName(logging.getLogger().getEffectiveLevel())
        assert shown.content == h.bot.i18n.t("debug.loglevel.current", logger="root", level=root)
        bad = await h.ask("!loglevel LOUD comet.debugtest")
        levels = "DEBUG, INFO, WARNING, ERROR, CRITICAL"
        assert bad.content == h.bot.i18n.t("debug.loglevel.invalid", level="LOUD", levels=levels)
        assert logger.level == logging.WARNING
    finally:
        logger.setLevel(logging.NOTSET)
    await wait_until(lambda: h.invocations("loglevel", "ok") >= 3)
    assert h.invocations("loglevel", "ok") == 3


@pytest.mark.asyncio
@pytest.mark.parametrize("locale", ["ja", "en"])
async def test_timeit_reports_time_and_exceptions(comet_factory: CometFactory, locale: str) -> None:
    h = await comet_factory(locale=locale)
    w = WORDS[locale]

    message = await h.say("!timeit debug 6 * 7")
    await wait_until(lambda: len(h.replies_after(message)) >= 2)
    inner, report = h.replies_after(message)[:2]
    assert body(inner) == f"{w['result']}: 42"  # the command really ran, in this channel
    assert (
        report.content.startswith("⏱️ `debug`")
        and w["timeit_ok"] in report.content
        and " ms" in report.content
    )

    message = await h.say("!timeit tasks cancel not-a-number")
    await wait_until(lambda: any(w["timeit_error"] in m.content for m in h.replies_after(message)))
    failed = next(m for m in h.replies_after(message) if w["timeit_error"] in m.content)
    assert "`tasks cancel`" in failed.content and "BadArgument" in failed.content

    message = await h.say("!timeit no-such-command")
    await wait_until(lambda: any(w["timeit_error"] in m.content for m in h.replies_after(message)))
    missing = next(m for m in h.replies_after(message) if w["timeit_error"] in m.content)
    assert "CommandNotFound" in missing.content
    await wait_until(lambda: h.invocations("timeit", "ok") >= 3)
    assert h.invocations("timeit", "ok") == 3
    await wait_until(lambda: h.invocations("debug", "ok") >= 1)
    assert h.invocations("debug", "ok") == 1


@pytest.mark.asyncio
async def test_audit_lines_never_carry_the_output(comet_factory: CometFactory, caplog) -> None:
    h = await comet_factory()
    caplog.set_level(logging.DEBUG)
    await h.ask("!debug print('very-private-output'); 'another-private-value'")
    audit = [r.getMessage() for r in caplog.records if r.name == "comet.audit"]
    assert len(audit) == 1
    assert "command=debug outcome=ok" in audit[0] and f"user={DEMO.owner_id}" in audit[0]
    ours = [
        r.getMessage() for r in caplog.records if r.name.startswith("comet") and ".emulator" not in r.name
    ]
    assert ours and "private" not in json.dumps(ours)
