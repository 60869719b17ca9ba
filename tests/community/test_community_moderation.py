"""warn / warnings / clearwarns / timeout / purge through the emulator, in both languages.

Each action: the moderator's answer, the stored record, the mod-log entry; refusals for members
without the permission; bad input answered clearly.
"""

from __future__ import annotations

import datetime as dt

import pytest
from community_support import CHANNEL, MEMBERS, MOD, OWNER, Harness

from comet.core.demo_guild import DEMO
from discord_emulator import Emulator

GUILD = DEMO.guild_id
PURGE_CHANNEL = DEMO.bot_commands_channel_id
MEMBER_ROUTE = "/guilds/{guild_id}/members/{user_id}"


def timed_out_until(harness: Harness, user_id: int) -> dt.datetime | None:
    until = harness.emu.world.guilds[GUILD].members[user_id].communication_disabled_until
    return dt.datetime.fromisoformat(until) if until else None


@pytest.mark.asyncio
async def test_warn_warnings_clearwarns_in_japanese(community: Harness) -> None:
    target = MEMBERS[0]
    reply = await community.say(MOD, f"!warn <@{target}> 宣伝の連投")
    assert reply.content == "⚠️ nousagi_fan さんに警告しました（累計 1 件）。理由: 宣伝の連投"
    reply = await community.say(MOD, f"!warn <@{target}> 二回目")
    assert "累計 2 件" in reply.content
    stored = await community.store.list_warnings(GUILD, target)
    assert [w.reason for w in stored] == ["宣伝の連投", "二回目"]
    assert all(w.moderator_id == MOD for w in stored)
    log = community.mod_log()
    assert log[0] == f"⚠️ **警告** 対象: nousagi_fan ({target}) / 実行: mod_fubuki ({MOD}) / 理由: 宣伝の連投"

    reply = await community.say(MOD, f"!warnings <@{target}>")
    lines = reply.content.splitlines()
    assert lines[0] == "📋 nousagi_fan さんの警告（2 件）"
    assert lines[1].startswith(f"#{stored[0].id} ") and "宣伝の連投（実行: mod_fubuki）" in lines[1]

    reply = await community.say(MOD, f"!clearwarns <@{target}>")
    assert reply.content == "🧽 nousagi_fan さんの警告 2 件を削除しました。"
    assert await community.store.list_warnings(GUILD, target) == []
    assert community.mod_log()[-1].startswith("🧽 **警告削除** 対象: nousagi_fan")
    reply = await community.say(MOD, f"!warnings <@{target}>")
    assert reply.content == "nousagi_fan さんに警告はありません。"
    actions = [a.action for a in await community.store.list_actions(GUILD)]
    assert actions == ["clearwarns", "warn", "warn"]


@pytest.mark.asyncio
async def test_warn_warnings_clearwarns_as_slash_in_english(community_factory) -> None:  # type: ignore[no-untyped-def]
    harness: Harness = await community_factory(locale="en")
    target = MEMBERS[1]
    reply = await harness.slash(MOD, "warn", {"member": str(target), "reason": "spoilers"})
    assert reply.content == "⚠️ houshou_pirate has been warned (1 in total). Reason: spoilers"
    reply = await harness.slash(MOD, "warnings", {"member": str(target)})
    assert reply.content.startswith("📋 Warnings of houshou_pirate (1)")
    assert "spoilers (by mod_fubuki)" in reply.content
    reply = await harness.slash(MOD, "clearwarns", {"member": str(target)})
    assert reply.content == "🧽 Cleared 1 warning(s) of houshou_pirate."
    reply = await harness.slash(MOD, "clearwarns", {"member": str(target)})
    assert reply.content == "houshou_pirate has no warnings to clear."
    assert harness.mod_log()[0] == (
        f"⚠️ **Warning** member: houshou_pirate ({target}) / by: mod_fubuki ({MOD}) / reason: spoilers"
    )


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("locale", "refusal"),
    [("ja", "🚫 このコマンドには次の権限が必要です"), ("en", "🚫 This command needs these permissions")],
)
async def test_members_without_permission_are_refused(community_factory, locale: str, refusal: str) -> None:  # type: ignore[no-untyped-def]
    harness: Harness = await community_factory(locale=locale)
    member, other = MEMBERS[2], MEMBERS[3]
    for command in (
        f"!warn <@{other}> x",
        f"!warnings <@{other}>",
        f"!clearwarns <@{other}>",
        f"!timeout <@{other}> 10m",
    ):
        reply = await harness.say(member, command)
        assert reply.content.startswith(refusal) and "moderate_members" in reply.content, command
    reply = await harness.say(member, "!purge 5")
    assert reply.content.startswith(refusal) and "manage_messages" in reply.content
    slash = await harness.slash(member, "warn", {"member": str(other), "reason": "x"})
    assert slash.content.startswith(refusal) and slash.ephemeral
    assert await harness.store.list_actions(GUILD) == []
    assert harness.mod_log() == []
    assert timed_out_until(harness, other) is None


@pytest.mark.asyncio
async def test_the_configured_moderator_role_is_enough(emulator: Emulator, community_factory) -> None:  # type: ignore[no-untyped-def]
    helper, target = MEMBERS[4], MEMBERS[5]
    # A role with no Discord permission at all, named as configured (set up before the bot logs in).
    role = emulator.world.add_role(GUILD, "Helper", permissions=0)
    emulator.world.guilds[GUILD].members[helper].roles.append(role.id)
    harness: Harness = await community_factory(moderator_role="Helper")
    reply = await harness.say(helper, f"!warn <@{target}> helper warning")
    assert reply.content == "⚠️ kenzoku さんに警告しました（累計 1 件）。理由: helper warning"
    reply = await harness.say(MEMBERS[6], f"!warn <@{target}> not a helper")
    assert reply.content.startswith("🚫")


@pytest.mark.asyncio
async def test_timeout_in_japanese_and_english(community_factory) -> None:  # type: ignore[no-untyped-def]
    harness: Harness = await community_factory()
    target = MEMBERS[6]
    before = dt.datetime.now(dt.UTC)
    reply = await harness.say(MOD, f"!timeout <@{target}> 1h30m 荒らし")
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
    reply = await harness.slash(MOD, "timeout", {"member": str(MEMBERS[7]), "duration": "10m"})
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
    community_factory,
    locale: str,
    duration: str,
    expected: str,  # type: ignore[no-untyped-def]
) -> None:
    harness: Harness = await community_factory(locale=locale)
    target = MEMBERS[0]
    reply = await harness.say(MOD, f"!timeout <@{target}> {duration} reason")
    assert reply.content.startswith(expected)
    assert timed_out_until(harness, target) is None
    assert not harness.emu.requests_to(MEMBER_ROUTE, "PATCH")
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
async def test_a_member_not_in_the_server_is_answered(community_factory, locale: str, expected: str) -> None:  # type: ignore[no-untyped-def]
    harness: Harness = await community_factory(locale=locale)
    for command, who in (
        ("!warn 4242424242 x", "4242424242"),
        ("!timeout 4242424242 10m", "4242424242"),
        ("!warnings @nobody", "@nobody"),
    ):
        reply = await harness.say(MOD, command)
        assert reply.content.startswith(expected.format(who)), (command, reply.content)
    assert await harness.store.list_actions(GUILD) == []


@pytest.mark.asyncio
async def test_targets_that_cannot_be_moderated(community: Harness) -> None:
    reply = await community.say(MOD, f"!warn <@{MOD}> me")
    assert reply.content == "❌ 自分自身には使えません。"
    reply = await community.say(MOD, f"!timeout <@{OWNER}> 10m")
    assert reply.content == "🚫 hfs_owner さんはあなたと同じか上の役職なので操作できません。"
    community.bot.flush_metrics()
    assert (
        community.sample("comet_commands_total", command="timeout", kind="prefix", outcome="check_failed")
        == 1
    )
    other_bot = community.emu.world.add_user(name="other-bot", bot=True).id
    community.emu.add_member(GUILD, other_bot)
    await community.emu.wait_for(lambda: community.bot.get_guild(GUILD).get_member(other_bot) is not None)  # type: ignore[union-attr]
    reply = await community.say(MOD, f"!warn <@{other_bot}> bot")
    assert reply.content == "❌ ボットには使えません。"
    reply = await community.say(OWNER, f"!warn <@{MOD}> the owner may warn a moderator")
    assert "mod_fubuki さんに警告しました" in reply.content
    assert timed_out_until(community, OWNER) is None


@pytest.mark.asyncio
async def test_timeout_refused_by_discord_is_reported(community: Harness) -> None:
    community.emu.faults.forbidden(route=f"PATCH {MEMBER_ROUTE}")
    reply = await community.say(MOD, f"!timeout <@{MEMBERS[0]}> 10m")
    assert "タイムアウトできませんでした" in reply.content
    assert await community.store.list_actions(GUILD) == []
    assert community.mod_log() == []
    # The user was told it failed, so it is a failure in the metrics too, under Discord's refusal.
    community.bot.flush_metrics()
    assert community.sample("comet_commands_total", command="timeout", kind="prefix", outcome="error") == 1
    assert community.sample("comet_commands_total", command="timeout", kind="prefix", outcome="success") == 0
    assert community.sample("comet_command_errors_total", command="timeout", error="Forbidden") == 1


async def _fill(harness: Harness, count: int) -> None:
    for n in range(count):
        await harness.emu.send_message(PURGE_CHANNEL, MEMBERS[n % len(MEMBERS)], f"message {n}")


@pytest.mark.asyncio
async def test_purge_deletes_exactly_the_asked_count(community: Harness) -> None:
    await _fill(community, 30)
    reply = await community.say(MOD, "!purge 10", channel_id=PURGE_CHANNEL)
    assert reply.content == "🧹 10 件のメッセージを削除しました。"
    remaining = [m for m in community.emu.messages(PURGE_CHANNEL) if m.author_id != DEMO.bot_user_id]
    texts = [m.payload["content"] for m in remaining]
    assert texts[:20] == [f"message {n}" for n in range(20)]  # the 10 newest before the command went
    assert texts[20:] == ["!purge 10"]
    assert (
        community.mod_log()[-1]
        == f"🧹 **一括削除** チャンネル: #bot-commands / 実行: mod_fubuki ({MOD}) / 10 件"
    )
    actions = await community.store.list_actions(GUILD)
    assert [(a.action, a.reason) for a in actions] == [("purge", "#bot-commands: 10")]


@pytest.mark.asyncio
async def test_purge_over_100_is_chunked_and_slash_is_ephemeral(community_factory) -> None:  # type: ignore[no-untyped-def]
    harness: Harness = await community_factory(locale="en")
    await _fill(harness, 150)
    reply = await harness.slash(MOD, "purge", {"count": 120}, channel_id=PURGE_CHANNEL)
    assert reply.content == "🧹 Deleted 120 message(s)." and reply.ephemeral
    bulk = harness.emu.requests_to("/channels/{channel_id}/messages/bulk-delete", "POST")
    assert sorted(len(r.json["messages"]) for r in bulk) == [20, 100]  # type: ignore[index]
    left = [m for m in harness.emu.messages(PURGE_CHANNEL) if m.author_id != DEMO.bot_user_id]
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
async def test_purge_out_of_range(community_factory, locale: str, count: str, expected: str) -> None:  # type: ignore[no-untyped-def]
    harness: Harness = await community_factory(locale=locale)
    reply = await harness.say(MOD, f"!purge {count}", channel_id=PURGE_CHANNEL)
    assert reply.content == expected
    assert not harness.emu.requests_to("/channels/{channel_id}/messages/bulk-delete")
    assert await harness.store.list_actions(GUILD) == []


@pytest.mark.asyncio
async def test_purge_of_a_word_is_a_bad_argument(community: Harness) -> None:
    reply = await community.say(MOD, "!purge many", channel_id=PURGE_CHANNEL)
    assert reply.content.startswith("❌ 引数 `count` の値が正しくありません。")


@pytest.mark.asyncio
async def test_missing_mod_log_channel_is_logged_not_fatal(
    community_factory,
    caplog: pytest.LogCaptureFixture,  # type: ignore[no-untyped-def]
) -> None:
    harness: Harness = await community_factory(mod_log_channel="no-such-channel")
    reply = await harness.say(MOD, f"!warn <@{MEMBERS[0]}> still recorded")
    assert "警告しました" in reply.content
    assert len(await harness.store.list_warnings(GUILD, MEMBERS[0])) == 1
    assert any("mod-log channel not found" in r.getMessage() for r in caplog.records)
    assert CHANNEL != DEMO.mod_log_channel_id and harness.mod_log() == []
