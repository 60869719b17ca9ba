"""The anti-spam rule end to end: N messages within T seconds -> timeout, mod-log, metric; not below."""

from __future__ import annotations

import logging

import pytest
from community_support import CHANNEL, MEMBERS, MOD
from harness import CometFactory, Harness
from waiting import wait_until

from comet.core.demo_guild import DEMO

GUILD = DEMO.guild_id
MEMBER_ROUTE = "/guilds/{guild_id}/members/{user_id}"


def timed_out(harness: Harness, user_id: int) -> bool:
    return harness.emulator.world.guilds[GUILD].members[user_id].communication_disabled_until is not None


async def barrier(harness: Harness) -> None:
    """Wait until the bot has handled every message sent so far (a command answered after them).

    The anti-spam listener counts a message before its first await, and discord.py runs listeners
    in arrival order, so once a later command is answered the earlier messages were counted.
    """
    await harness.ask("!omikuji", author=MEMBERS[7])


@pytest.mark.asyncio
async def test_triggers_at_the_threshold_and_not_below(comet_factory: CometFactory) -> None:
    harness: Harness = await comet_factory(antispam_messages=4, antispam_seconds=60.0)
    spammer, calm = MEMBERS[0], MEMBERS[1]
    for n in range(3):
        await harness.emulator.send_message(CHANNEL, spammer, f"buy now {n}")
        await harness.emulator.send_message(CHANNEL, calm, f"hello {n}")
    await barrier(harness)
    assert not timed_out(harness, spammer) and not timed_out(harness, calm)
    assert harness.sample("comet_automod_actions_total", action="timeout") == 0
    assert harness.mod_log() == []

    fourth = await harness.emulator.send_message(CHANNEL, spammer, "buy now 3")  # the 4th within 60 s
    await wait_until(lambda: len(harness.mod_log()) == 1)
    assert timed_out(harness, spammer)
    assert not timed_out(harness, calm)
    assert harness.mod_log()[0] == (
        f"🤖 **自動タイムアウト（連投）** 対象: nousagi_fan ({spammer}) / 期間: 5分 / 4 件を 60 秒以内に投稿"
    )
    # The bot's first message after the 4th one (the notice follows the mod-log entry, maybe already).
    notice = await harness.emulator.wait_for_reply(CHANNEL, after=fourth)
    assert notice.content == "🔇 nousagi_fan さんは短時間に投稿しすぎたため 5分 タイムアウトされました。"
    assert harness.sample("comet_automod_actions_total", action="timeout") == 1
    actions = await harness.store.list_actions(GUILD, target_id=spammer)
    assert [(a.action, a.moderator_id) for a in actions] == [("automod_timeout", DEMO.bot_user_id)]


@pytest.mark.asyncio
async def test_english_mod_log_and_moderators_are_exempt(comet_factory: CometFactory) -> None:
    harness: Harness = await comet_factory(
        locale="en", antispam_messages=3, antispam_seconds=60.0, antispam_timeout_seconds=600
    )
    for n in range(5):
        await harness.emulator.send_message(CHANNEL, MOD, f"announcement {n}")
    await barrier(harness)
    assert not timed_out(harness, MOD)
    for n in range(3):
        await harness.emulator.send_message(CHANNEL, MEMBERS[2], f"spam {n}")
    await wait_until(lambda: len(harness.mod_log()) == 1)
    assert harness.mod_log()[0].startswith("🤖 **Automatic timeout (spam)** member: hoshiyomi")
    assert "for: 10m / 3 messages within 60 s" in harness.mod_log()[0]


@pytest.mark.asyncio
async def test_a_refused_timeout_is_logged_and_not_counted(
    comet_factory: CometFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    harness: Harness = await comet_factory(antispam_messages=2, antispam_seconds=60.0)
    harness.emulator.faults.forbidden(route=f"PATCH {MEMBER_ROUTE}")
    with caplog.at_level(logging.WARNING, logger="comet.features.cogs.moderation"):
        await harness.emulator.send_message(CHANNEL, MEMBERS[3], "a")
        await harness.emulator.send_message(CHANNEL, MEMBERS[3], "b")
        await wait_until(lambda: bool(harness.emulator.requests_to(MEMBER_ROUTE, "PATCH")))
        await barrier(harness)
    assert any("anti-spam: could not time out" in r.getMessage() for r in caplog.records)
    assert harness.sample("comet_automod_actions_total", action="timeout") == 0
    assert not timed_out(harness, MEMBERS[3])
    assert harness.mod_log() == []
