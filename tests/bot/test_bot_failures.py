"""Every failure path is answered clearly in the user's language and counted with the right outcome."""

from __future__ import annotations

import pytest
from harness import CometFactory, Harness
from waiting import wait_until

from comet.core.demo_guild import DEMO
from comet.core.secure_http import installed_scrubber

MEMBER, OTHER, THIRD = DEMO.member_ids[0], DEMO.member_ids[1], DEMO.member_ids[2]

TEXT = {
    "ja": {
        "bad_argument": "❌ 引数 `seconds` の値が正しくありません。\n使い方: `!work [seconds=1.0]`",
        "missing": "❌ 引数 `b` が足りません。\n使い方: `!add <a> <b>`",
        "missing_perms": "🚫 このコマンドには次の権限が必要です: `manage_messages`",
        "missing_perms_slash": "🚫 このコマンドには次の権限が必要です: `manage_guild`",
        "not_owner": "🚫 このコマンドはボットのオーナー専用です。",
        "cooldown": "⏳ クールダウン中です。",
        "not_found": "❓ コマンド `nosuchcmd` は見つかりません。`!help` でコマンド一覧を確認できます。",
        "not_found_slash": "❓ このコマンドは見つかりません。",
        "generic": "⚠️ コマンドの実行中にエラーが発生しました。しばらくしてからもう一度お試しください。",
    },
    "en": {
        "bad_argument": "❌ Invalid value for `seconds`.\nUsage: `!work [seconds=1.0]`",
        "missing": "❌ Missing argument `b`.\nUsage: `!add <a> <b>`",
        "missing_perms": "🚫 This command needs these permissions: `manage_messages`",
        "missing_perms_slash": "🚫 This command needs these permissions: `manage_guild`",
        "not_owner": "🚫 This command is for the bot owner only.",
        "cooldown": "⏳ On cooldown. Try again in ",
        "not_found": "❓ There is no command `nosuchcmd`. `!help` lists the commands.",
        "not_found_slash": "❓ That command does not exist.",
        "generic": "⚠️ Something went wrong while running the command. Please try again later.",
    },
}

INTERNALS = ("Traceback", "DemoFailure", "ValueError", "CommandInvokeError", "demo failure", 'File "')


def user_facing(content: str) -> str:
    for word in INTERNALS:
        assert word not in content, f"internal detail {word!r} shown to a user: {content!r}"
    return content


@pytest.mark.asyncio
async def test_prefix_failures(localized: Harness) -> None:
    env = localized
    text = TEXT[env.bot.settings.locale]

    assert user_facing((await env.ask("!work abc")).content) == text["bad_argument"]
    assert user_facing((await env.ask("!add 1")).content) == text["missing"]
    assert user_facing((await env.ask("!modonly", author=MEMBER)).content) == text["missing_perms"]
    assert (await env.ask("!modonly", author=DEMO.moderator_id)).content == "mod ok"
    assert user_facing((await env.ask("!owneronly", author=MEMBER)).content) == text["not_owner"]
    assert (await env.ask("!owneronly", author=DEMO.owner_id)).content == "owner ok"
    await env.ask("!stats", author=OTHER)
    assert user_facing((await env.ask("!stats", author=OTHER)).content).startswith(text["cooldown"])
    assert user_facing((await env.ask("!nosuchcmd")).content) == text["not_found"]
    assert user_facing((await env.ask("!boom")).content) == text["generic"]

    await wait_until(lambda: env.commands("boom", "prefix", "error") == 1)
    expected = {
        ("work", "bad_argument"): 1,
        ("add", "bad_argument"): 1,
        ("modonly", "check_failed"): 1,
        ("modonly", "success"): 1,
        ("owneronly", "check_failed"): 1,
        ("owneronly", "success"): 1,
        ("stats", "success"): 1,
        ("stats", "cooldown"): 1,
        ("unknown", "not_found"): 1,
        ("boom", "error"): 1,
    }
    for (command, outcome), count in expected.items():
        assert env.commands(command, "prefix", outcome) == count, (command, outcome)
    errors = {
        ("work", "BadArgument"): 1,
        ("add", "MissingRequiredArgument"): 1,
        ("modonly", "MissingPermissions"): 1,
        ("owneronly", "NotOwner"): 1,
        ("stats", "CommandOnCooldown"): 1,
        ("unknown", "CommandNotFound"): 1,
        ("boom", "other"): 1,
    }
    for (command, error), count in errors.items():
        assert env.sample("comet_command_errors_total", command=command, error=error) == count, (
            command,
            error,
        )
    # The user's unknown command never becomes a label value.
    assert "nosuchcmd" not in env.registry_text()


@pytest.mark.asyncio
async def test_slash_failures(localized: Harness) -> None:
    env = localized
    text = TEXT[env.bot.settings.locale]

    reply = await env.slash("boom")  # hybrid used as slash: through on_command_error
    assert user_facing(reply.content) == text["generic"] and reply.ephemeral
    reply = await env.slash("modonly", author=MEMBER)
    assert user_facing(reply.content) == text["missing_perms"]
    reply = await env.slash("slashadmin", author=MEMBER)  # a plain app command: through the tree's on_error
    assert user_facing(reply.content) == text["missing_perms_slash"] and reply.ephemeral
    reply = await env.slash("slashonly", {"times": -1})
    assert user_facing(reply.content) == text["generic"]
    reply = await env.slash("slashonly", {"times": 2})
    assert reply.content.startswith("slash ok")
    reply = await env.slash("nosuchslash")
    assert user_facing(reply.content) == text["not_found_slash"]
    await env.slash("stats", author=THIRD)
    reply = await env.slash("stats", author=THIRD)
    assert user_facing(reply.content).startswith(text["cooldown"])

    await wait_until(lambda: env.commands("stats", "slash", "cooldown") == 1)
    expected = {
        ("boom", "error"): 1,
        ("modonly", "check_failed"): 1,
        ("slashadmin", "check_failed"): 1,
        ("slashonly", "error"): 1,
        ("slashonly", "success"): 1,
        ("unknown", "not_found"): 1,
        ("stats", "success"): 1,
        ("stats", "cooldown"): 1,
    }
    for (command, outcome), count in expected.items():
        assert env.commands(command, "slash", outcome) == count, (command, outcome)
    assert env.commands("boom", "prefix", "error") == 0
    assert env.sample("comet_command_errors_total", command="slashonly", error="other") == 1
    assert env.sample("comet_command_errors_total", command="slashadmin", error="MissingPermissions") == 1
    assert env.sample("comet_command_errors_total", command="unknown", error="CommandNotFound") == 1
    assert "nosuchslash" not in env.registry_text()


@pytest.mark.asyncio
async def test_instrumentation_fails_open(comet: Harness) -> None:
    """An exception inside a hook is logged and counted; the command still runs and answers."""

    class BrokenSink:
        def record_response_time(self, response_time: float) -> None:
            raise RuntimeError("sink exploded")

    env = comet
    env.bot.command_instrumentation.response_times = BrokenSink()
    reply = await env.ask("!ping")
    assert reply.content.startswith("🏓")
    await wait_until(lambda: env.sample("comet_instrumentation_errors_total", hook="command_completion") == 1)
    # What could be recorded before the failing step still was.
    assert env.commands("ping", "prefix", "success") == 1
    assert env.sample("comet_command_duration_seconds_count", command="ping", kind="prefix") == 1
    reply = await env.ask("!boom")
    assert reply.content.startswith("⚠️")
    await wait_until(lambda: env.sample("comet_instrumentation_errors_total", hook="command_error") == 1)


@pytest.mark.asyncio
async def test_configured_owner_ids_are_owners_too(comet_factory: CometFactory) -> None:
    """COMET_OWNER_IDS adds owners to the application's owner (who stays an owner)."""
    extra_owner = DEMO.member_ids[5]
    env = await comet_factory(owner_ids=frozenset({extra_owner}))
    assert (await env.ask("!owneronly", author=extra_owner)).content == "owner ok"
    assert (await env.ask("!owneronly", author=DEMO.owner_id)).content == "owner ok"
    assert (await env.ask("!owneronly", author=DEMO.member_ids[6])).content.startswith("🚫")
    assert await env.bot.is_owner(env.bot.get_user(extra_owner))  # type: ignore[arg-type]
    # Every REST body the bot sends goes through the secret scrubber of its telemetry.
    assert installed_scrubber(env.bot) is env.telemetry.scrubber
