"""warn / warnings / clearwarns / timeout / purge through the emulator, in both languages.

Each action: the moderator's answer, the stored record, the mod-log entry; refusals for members
without the permission; bad input answered clearly.
"""

from __future__ import annotations

import datetime as dt

import pytest
from community_support import CHANNEL, MEMBERS, MOD, OWNER
from harness import CometFactory, Harness
from waiting import wait_until

from comet.core.demo_guild import DEMO
from discord_emulator import Emulator

GUILD = DEMO.guild_id
PURGE_CHANNEL = DEMO.bot_commands_channel_id
MEMBER_ROUTE = "/guilds/{guild_id}/members/{user_id}"


def timed_out_until(harness: Harness, user_id: int) -> dt.datetime | None:
    until = harness.emulator.world.guilds[GUILD].members[user_id].communication_disabled_until
    return dt.datetime.fromisoformat(until) if until else None


@pytest.mark.asyncio
async def test_warn_warnings_clearwarns_in_japanese(comet: Harness) -> None:
    target = MEMBERS[0]
    reply = await comet.ask(f"!warn <@{target}> 宣伝の連投", author=MOD)
    assert reply.content == "⚠️ nousagi_fan さんに警告しました（累計 1 件）。理由: 宣伝の連投"
    reply = await comet.ask(f"!warn <@{target}> 二回目", author=MOD)
    assert "累計 2 件" in reply.content
    stored = await comet.store.list_warnings(GUILD, target)
    assert [w.reason for w in stored] == ["宣伝の連投", "二回目"]
    assert all(w.moderator_id == MOD for w in stored)
    log = comet.mod_log()
    assert log[0] == f"⚠️ **警告** 対象: nousagi_fan ({target}) / 実行: mod_fubuki ({MOD}) / 理由: 宣伝の連投"

    reply = await comet.ask(f"!warnings <@{target}>", author=MOD)
    lines = reply.content.splitlines()
    assert lines[0] == "📋 nousagi_fan さんの警告（2 件）"
    assert lines[1].startswith(f"#{stored[0].id} ") and "宣伝の連投（実行: mod_fubuki）" in lines[1]

    reply = await comet.ask(f"!clearwarns <@{target}>", author=MOD)
    assert reply.content == "🧽 nousagi_fan さんの警告 2 件を削除しました。"
    assert await comet.store.list_warnings(GUILD, target) == []
    assert comet.mod_log()[-1].startswith("🧽 **警告削除** 対象: nousagi_fan")
    reply = await comet.ask(f"!warnings <@{target}>", author=MOD)
    assert reply.content == "nousagi_fan さんに警告はありません。"
    actions = [a.action for a in await comet.store.list_actions(GUILD)]
    assert actions == ["clearwarns", "warn", "warn"]


@pytest.mark.asyncio
async def test_warn_warnings_clearwarns_as_slash_in_english(comet_factory: CometFactory) -> None:
    harness: Harness = await comet_factory(locale="en")
    target = MEMBERS[1]
    reply = await harness.slash("warn", {"member": str(target), "reason": "spoilers"}, author=MOD)
    assert reply.content == "⚠️ houshou_pirate has been warned (1 in total). Reason: spoilers"
    reply = await harness.slash("warnings", {"member": str(target)}, author=MOD)
    assert reply.content.startswith("📋 Warnings of houshou_pirate (1)")
    assert "spoilers (by mod_fubuki)" in reply.content
    reply = await harness.slash("clearwarns", {"member": str(target)}, author=MOD)
    assert reply.content == "🧽 Cleared 1 warning(s) of houshou_pirate."
    reply = await harness.slash("clearwarns", {"member": str(target)}, author=MOD)
    assert reply.content == "houshou_pirate has no warnings to clear."
    assert harness.mod_log()[0] == (
        f"⚠️ **Warning** member: houshou_pirate ({target}) / by: mod_fubuki ({MOD}) / reason: spoilers"
    )


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("locale", "refusal"),
    [("ja", "🚫 このコマンドには次の権限が必要です"), ("en", "🚫 This command needs these permissions")],
)
async def test_members_without_permission_are_refused(
    comet_factory: CometFactory, locale: str, refusal: str
) -> None:
    harness: Harness = await comet_factory(locale=locale)
    member, other = MEMBERS[2], MEMBERS[3]
    for command in (
        f"!warn <@{other}> x",
        f"!warnings <@{other}>",
        f"!clearwarns <@{other}>",
        f"!timeout <@{other}> 10m",
    ):
        reply = await harness.ask(command, author=member)
        assert reply.content.startswith(refusal) and "moderate_members" in reply.content, command
    reply = await harness.ask("!purge 5", author=member)
    assert reply.content.startswith(refusal) and "manage_messages" in reply.content
    slash = await harness.slash("warn", {"member": str(other), "reason": "x"}, author=member)
    assert slash.content.startswith(refusal) and slash.ephemeral
    assert await harness.store.list_actions(GUILD) == []
    assert harness.mod_log() == []
    assert timed_out_until(harness, other) is None


@pytest.mark.asyncio
async def test_the_configured_moderator_role_is_enough(
    emulator: Emulator, comet_factory: CometFactory
) -> None:
    helper, target = MEMBERS[4], MEMBERS[5]
    # A role with no Discord permission at all, named as configured (set up before the bot logs in).
    role = emulator.world.add_role(GUILD, "Helper", permissions=0)
    emulator.world.guilds[GUILD].members[helper].roles.append(role.id)
    harness: Harness = await comet_factory(moderator_role="Helper")
    reply = await harness.ask(f"!warn <@{target}> helper warning", author=helper)
    assert reply.content == "⚠️ kenzoku さんに警告しました（累計 1 件）。理由: helper warning"
    reply = await harness.ask(f"!warn <@{target}> not a helper", author=MEMBERS[6])
    assert reply.content.startswith("🚫")


@pytest.mark.asyncio
async def test_timeout_in_japanese_and_english(comet_factory: CometFactory) -> None:
    harness: Harness = await comet_factory()
    target = MEMBERS[6]
    before = dt.datetime.now(dt.UTC)
    reply = await harness.ask(f"!timeout <@{target}> 1h30m 荒らし", author=MOD)
    assert reply.content == "🔇 watamate さんを 1時間30分 タイムアウトしました。理由: 荒らし"
    until = timed_out_until(harness, target)
    assert until is not None
    assert dt.timedelta(minutes=89) < until - before < dt.timedelta(minutes=91)
    assert harness.mod_log()[-1] == (
        f"🔇 **タイムアウト** 対象: watamate ({target}) / 実行: mod_fubuki ({MOD}) "
        "/ 期間: 1時間30分 / 理由: 荒らし"
    )
    actions = await harness.store.list_actions(GUILD, target_id=target)
    assert [(a.action, a.reason) for a in actions] == [("timeout", "5400s: 荒らし")]

    harness.bot.set_locale("en")
    reply = await harness.slash("timeout", {"member": str(MEMBERS[7]), "duration": "10m"}, author=MOD)
    assert reply.content == "🔇 fubuki_friend is timed out for 10m. Reason: (no reason given)"
    assert timed_out_until(harness, MEMBERS[7]) is not None


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("locale", "duration", "expected"),
    [
        ("ja", "5x", "❌ 「5x」は期間として読めません。"),
        ("en", "5x", '❌ "5x" is not a duration.'),
        ("ja", "10", "❌ 「10」は期間として読めません。"),
        ("ja", "29d", "❌ タイムアウトは最大 28 日までです（指定: 29日）。"),
        ("en", "30d", "❌ A timeout can last at most 28 days (asked: 30d)."),
    ],
)
async def test_bad_durations_are_answered_and_nothing_happens(
    comet_factory: CometFactory,
    locale: str,
    duration: str,
    expected: str,
) -> None:
    harness: Harness = await comet_factory(locale=locale)
    target = MEMBERS[0]
    reply = await harness.ask(f"!timeout <@{target}> {duration} reason", author=MOD)
    assert reply.content.startswith(expected)
    assert timed_out_until(harness, target) is None
    assert not harness.emulator.requests_to(MEMBER_ROUTE, "PATCH")
    assert await harness.store.list_actions(GUILD) == []
    # A user's mistake: counted apart from failures and from successes.
    harness.bot.flush_metrics()
    assert (
        harness.sample("comet_commands_total", command="timeout", kind="prefix", outcome="bad_argument") == 1
    )
    assert harness.sample("comet_commands_total", command="timeout", kind="prefix", outcome="success") == 0


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("locale", "expected"),
    [
        ("ja", "❌ このサーバーにメンバー `{}` は見つかりません。"),
        ("en", "❌ No member `{}` in this server."),
    ],
)
async def test_a_member_not_in_the_server_is_answered(
    comet_factory: CometFactory, locale: str, expected: str
) -> None:
    harness: Harness = await comet_factory(locale=locale)
    for command, who in (
        ("!warn 4242424242 x", "4242424242"),
        ("!timeout 4242424242 10m", "4242424242"),
        ("!warnings @nobody", "@nobody"),
    ):
        reply = await harness.ask(command, author=MOD)
        assert reply.content.startswith(expected.format(who)), (command, reply.content)
    assert await harness.store.list_actions(GUILD) == []


@pytest.mark.asyncio
async def test_targets_that_cannot_be_moderated(comet: Harness) -> None:
    reply = await comet.ask(f"!warn <@{MOD}> me", author=MOD)
    assert reply.content == "❌ 自分自身には使えません。"
    reply = await comet.ask(f"!timeout <@{OWNER}> 10m", author=MOD)
    assert reply.content == "🚫 hfs_owner さんはあなたと同じか上の役職なので操作できません。"
    comet.bot.flush_metrics()
    assert comet.sample("comet_commands_total", command="timeout", kind="prefix", outcome="check_failed") == 1
    other_bot = comet.emulator.world.add_user(name="other-bot", bot=True).id
    comet.emulator.add_member(GUILD, other_bot)
    await wait_until(lambda: comet.bot.get_guild(GUILD).get_member(other_bot) is not None)  # type: ignore[union-attr]
    reply = await comet.ask(f"!warn <@{other_bot}> bot", author=MOD)
    assert reply.content == "❌ ボットには使えません。"
    reply = await comet.ask(f"!warn <@{MOD}> the owner may warn a moderator", author=OWNER)
    assert "mod_fubuki さんに警告しました" in reply.content
    assert timed_out_until(comet, OWNER) is None


@pytest.mark.asyncio
async def test_timeout_refused_by_discord_is_reported(comet: Harness) -> None:
    comet.emulator.faults.forbidden(route=f"PATCH {MEMBER_ROUTE}")
    reply = await comet.ask(f"!timeout <@{MEMBERS[0]}> 10m", author=MOD)
    assert "タイムアウトできませんでした" in reply.content
    assert await comet.store.list_actions(GUILD) == []
    assert comet.mod_log() == []
    # The user was told it failed, so it is a failure in the metrics too, under Discord's refusal.
    comet.bot.flush_metrics()
    assert comet.sample("comet_commands_total", command="timeout", kind="prefix", outcome="error") == 1
    assert comet.sample("comet_commands_total", command="timeout", kind="prefix", outcome="success") == 0
    assert comet.sample("comet_command_errors_total", command="timeout", error="Forbidden") == 1


async def _fill(harness: Harness, count: int) -> None:
    for n in range(count):
        await harness.emulator.send_message(PURGE_CHANNEL, MEMBERS[n % len(MEMBERS)], f"message {n}")


@pytest.mark.asyncio
async def test_purge_deletes_exactly_the_asked_count(comet: Harness) -> None:
    await _fill(comet, 30)
    reply = await comet.ask("!purge 10", author=MOD, channel=PURGE_CHANNEL)
    assert reply.content == "🧹 10 件のメッセージを削除しました。"
    remaining = [m for m in comet.emulator.messages(PURGE_CHANNEL) if m.author_id != DEMO.bot_user_id]
    texts = [m.payload["content"] for m in remaining]
    assert texts[:20] == [f"message {n}" for n in range(20)]  # the 10 newest before the command went
    assert texts[20:] == ["!purge 10"]
    assert (
        comet.mod_log()[-1] == f"🧹 **一括削除** チャンネル: #bot-commands / 実行: mod_fubuki ({MOD}) / 10 件"
    )
    actions = await comet.store.list_actions(GUILD)
    assert [(a.action, a.reason) for a in actions] == [("purge", "#bot-commands: 10")]


@pytest.mark.asyncio
async def test_purge_over_100_is_chunked_and_slash_is_ephemeral(comet_factory: CometFactory) -> None:
    harness: Harness = await comet_factory(locale="en")
    await _fill(harness, 150)
    reply = await harness.slash("purge", {"count": 120}, author=MOD, channel=PURGE_CHANNEL)
    assert reply.content == "🧹 Deleted 120 message(s)." and reply.ephemeral
    bulk = harness.emulator.requests_to("/channels/{channel_id}/messages/bulk-delete", "POST")
    assert sorted(len(r.json["messages"]) for r in bulk) == [20, 100]  # type: ignore[index]
    left = [m for m in harness.emulator.messages(PURGE_CHANNEL) if m.author_id != DEMO.bot_user_id]
    assert len(left) == 30


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("locale", "count", "expected"),
    [
        ("ja", "0", "❌ 削除できる件数は 1〜1000 件です（指定: 0）。"),
        ("ja", "10000", "❌ 削除できる件数は 1〜1000 件です（指定: 10000）。"),
        ("en", "-3", "❌ You can delete between 1 and 1000 messages (asked: -3)."),
    ],
)
async def test_purge_out_of_range(
    comet_factory: CometFactory, locale: str, count: str, expected: str
) -> None:
    harness: Harness = await comet_factory(locale=locale)
    reply = await harness.ask(f"!purge {count}", author=MOD, channel=PURGE_CHANNEL)
    assert reply.content == expected
    assert not harness.emulator.requests_to("/channels/{channel_id}/messages/bulk-delete")
    assert await harness.store.list_actions(GUILD) == []


@pytest.mark.asyncio
async def test_purge_of_a_word_is_a_bad_argument(comet: Harness) -> None:
    reply = await comet.ask("!purge many", author=MOD, channel=PURGE_CHANNEL)
    assert reply.content.startswith("❌ 引数 `count` の値が正しくありません。")


@pytest.mark.asyncio
async def test_missing_mod_log_channel_is_logged_not_fatal(
    comet_factory: CometFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    harness: Harness = await comet_factory(mod_log_channel="no-such-channel")
    reply = await harness.ask(f"!warn <@{MEMBERS[0]}> still recorded", author=MOD)
    assert "警告しました" in reply.content
    assert len(await harness.store.list_warnings(GUILD, MEMBERS[0])) == 1
    assert any("mod-log channel not found" in r.getMessage() for r in caplog.records)
    assert CHANNEL != DEMO.mod_log_channel_id and harness.mod_log() == []
