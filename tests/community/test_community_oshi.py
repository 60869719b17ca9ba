"""oshi set/show/remove/ranking through the emulator, as members see it, in Japanese and English."""

from __future__ import annotations

import pytest
from community_support import MEMBERS
from harness import CometFactory, Harness

from comet.core.demo_guild import DEMO

GUILD = DEMO.guild_id
ROLE_ROUTE = "/guilds/{guild_id}/members/{user_id}/roles/{role_id}"


@pytest.mark.asyncio
async def test_oshi_set_show_remove_in_japanese_with_role_swap(comet: Harness) -> None:
    user = MEMBERS[1]  # seeded with the "Marine" talent role
    assert "Marine" in comet.member_role_names(user)

    reply = await comet.ask("!oshi set ぺこら", author=user)
    assert "💖 兎田ぺこら (Usada Pekora) を推しに登録しました！" in reply.content
    assert "ロール「Pekora」を付けました" in reply.content
    assert "ロール「Marine」を外しました" in reply.content
    entry = await comet.store.get_oshi(GUILD, user)
    assert entry is not None and entry.talent_key == "usada_pekora"
    roles = comet.member_role_names(user)
    assert "Pekora" in roles and "Marine" not in roles

    reply = await comet.ask("!oshi show", author=user)
    assert reply.content == "💖 あなたの推しは 兎田ぺこら (Usada Pekora) です！（ホロライブ 3期生）"

    reply = await comet.ask("!oshi set 船長", author=user)
    assert "推しを 兎田ぺこら (Usada Pekora) から 宝鐘マリン (Houshou Marine) に変更しました" in reply.content
    roles = comet.member_role_names(user)
    assert "Marine" in roles and "Pekora" not in roles

    reply = await comet.ask("!oshi set マリン", author=user)
    assert "すでにあなたの推しです" in reply.content

    reply = await comet.ask("!oshi remove", author=user)
    assert "推しの登録（宝鐘マリン (Houshou Marine)）を解除しました。" in reply.content
    assert "Marine" not in comet.member_role_names(user)
    assert await comet.store.get_oshi(GUILD, user) is None

    reply = await comet.ask("!oshi remove", author=user)
    assert reply.content == "解除する推しの登録がありません。"
    reply = await comet.ask("!oshi show", author=user)
    assert "まだ推しが登録されていません" in reply.content


@pytest.mark.asyncio
async def test_oshi_slash_flow_in_english(comet_factory: CometFactory) -> None:
    harness: Harness = await comet_factory(locale="en")
    user = MEMBERS[2]
    reply = await harness.slash("oshi", {"name": "Hoshimachi Suisei"}, author=user, subcommand="set")
    assert reply.content.startswith("💖 Hoshimachi Suisei (星街すいせい) is now your oshi!")
    assert not reply.ephemeral

    reply = await harness.slash("oshi", {}, author=user, subcommand="show")
    assert reply.content == "💖 Your oshi is Hoshimachi Suisei (星街すいせい)! (hololive gen 0)"

    reply = await harness.slash("oshi", {"member": str(user)}, author=MEMBERS[3], subcommand="show")
    assert reply.content.startswith("💖 hoshiyomi's oshi is Hoshimachi Suisei")

    reply = await harness.slash("oshi", {}, author=user, subcommand="remove")
    assert reply.content.startswith("Your oshi (Hoshimachi Suisei (星街すいせい)) was removed.")

    reply = await harness.slash("oshi", {}, author=user, subcommand="ranking")
    assert reply.content == "Nobody has registered an oshi yet. Be the first with `/oshi set <name>`!"


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("locale", "query", "expected"),
    [
        ("ja", "ｐｅｋｒｏａ", "兎田ぺこら"),  # full width + a typo
        ("ja", "ペコラ", "兎田ぺこら"),  # katakana
        ("en", "PEKORA", "Usada Pekora"),
        ("en", "みこち", "Sakura Miko"),  # a nickname
    ],
)
async def test_forgiving_names(comet_factory: CometFactory, locale: str, query: str, expected: str) -> None:
    harness: Harness = await comet_factory(locale=locale)
    reply = await harness.ask(f"!oshi set {query}", author=MEMBERS[0])
    assert expected in reply.content


@pytest.mark.asyncio
@pytest.mark.parametrize("locale", ["ja", "en"])
async def test_ambiguous_name_asks_back_and_saves_nothing(comet_factory: CometFactory, locale: str) -> None:
    harness: Harness = await comet_factory(locale=locale)
    reply = await harness.ask("!oshi set Abyssgard", author=MEMBERS[0])
    assert "Fuwawa Abyssgard" in reply.text and "Mococo Abyssgard" in reply.text
    question = "複数います" if locale == "ja" else "Who did you mean?"
    assert question in reply.content
    assert await harness.store.get_oshi(GUILD, MEMBERS[0]) is None


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("locale", "expected"),
    [("ja", "「xyzzy」というタレントは見つかりませんでした"), ("en", 'No talent called "xyzzy" was found')],
)
async def test_unknown_talent_is_answered_clearly(
    comet_factory: CometFactory, locale: str, expected: str
) -> None:
    harness: Harness = await comet_factory(locale=locale)
    reply = await harness.ask("!oshi set xyzzy", author=MEMBERS[0])
    assert expected in reply.content
    slash = await harness.slash("oshi", {"name": "xyzzy"}, author=MEMBERS[0], subcommand="set")
    assert expected in slash.content and slash.ephemeral
    assert await harness.store.get_oshi(GUILD, MEMBERS[0]) is None


@pytest.mark.asyncio
async def test_show_of_another_member_and_of_a_stranger(comet: Harness) -> None:
    await comet.ask("!oshi set Korone", author=MEMBERS[4])
    reply = await comet.ask(f"!oshi show <@{MEMBERS[4]}>", author=MEMBERS[0])
    assert (
        reply.content == "💖 koronesuki さんの推しは 戌神ころね (Inugami Korone) です！（ホロライブ GAMERS）"
    )
    reply = await comet.ask(f"!oshi show <@{MEMBERS[5]}>", author=MEMBERS[0])
    assert reply.content == "kenzoku さんはまだ推しを登録していません。"
    reply = await comet.ask("!oshi show 4242424242", author=MEMBERS[0])  # nobody in this server
    assert reply.content.startswith("❌ このサーバーにメンバー `4242424242` は見つかりません。")
    assert "!oshi show" in reply.content


@pytest.mark.asyncio
async def test_ranking_counts_the_servers_fans(comet: Harness) -> None:
    empty = await comet.ask("!oshi ranking", author=MEMBERS[0])
    assert "まだ誰も推しを登録していません" in empty.content
    for user, name in zip(
        MEMBERS[:6], ["ぺこら", "Pekora", "peko", "マリン", "Marine", "Suisei"], strict=True
    ):
        await comet.ask(f"!oshi set {name}", author=user)
    reply = await comet.ask("!oshi ranking", author=MEMBERS[7])
    lines = reply.content.splitlines()
    assert lines[0] == "🏆 このサーバーの推しランキング"
    assert lines[1] == "1. 兎田ぺこら (Usada Pekora) — 3人"
    assert lines[2] == "2. 宝鐘マリン (Houshou Marine) — 2人"
    assert lines[3] == "3. 星街すいせい (Hoshimachi Suisei) — 1人"


@pytest.mark.asyncio
async def test_slash_autocomplete_offers_talents_and_its_value_is_accepted(comet: Harness) -> None:
    choices = await comet.emulator.send_autocomplete(
        DEMO.general_channel_id, MEMBERS[0], "oshi", subcommand="set", focused="name", value="pe"
    )
    assert choices[0] == {"name": "兎田ぺこら / Usada Pekora", "value": "usada_pekora"}
    everything = await comet.emulator.send_autocomplete(
        DEMO.general_channel_id, MEMBERS[0], "oshi", subcommand="set", focused="name", value=""
    )
    assert len(everything) == 25
    typo = await comet.emulator.send_autocomplete(
        DEMO.general_channel_id, MEMBERS[0], "oshi", subcommand="set", focused="name", value="すいせ"
    )
    assert typo[0]["value"] == "hoshimachi_suisei"
    reply = await comet.slash("oshi", {"name": choices[0]["value"]}, author=MEMBERS[0], subcommand="set")
    assert "兎田ぺこら" in reply.content


@pytest.mark.asyncio
async def test_a_refused_role_change_still_saves_the_oshi(comet: Harness) -> None:
    comet.emulator.faults.forbidden(route=f"PUT {ROLE_ROUTE}")
    user = MEMBERS[5]
    reply = await comet.ask("!oshi set Miko", author=user)
    assert "さくらみこ" in reply.content
    assert "ロールを変更できませんでした" in reply.content
    entry = await comet.store.get_oshi(GUILD, user)
    assert entry is not None and entry.talent_key == "sakura_miko"


@pytest.mark.asyncio
async def test_bare_oshi_shows_usage_and_dms_are_refused(comet: Harness) -> None:
    reply = await comet.ask("!oshi", author=MEMBERS[0])
    assert reply.content.startswith("使い方: `!oshi set <名前>`")
    dm = comet.emulator.open_dm(MEMBERS[0])
    reply = await comet.ask("!oshi set Pekora", author=MEMBERS[0], channel=dm)
    assert reply.content == "🚫 このコマンドはサーバー内でのみ使えます。"
    assert await comet.store.get_oshi(GUILD, MEMBERS[0]) is None


@pytest.mark.asyncio
async def test_extensions_reload_twice_and_keep_working(comet: Harness) -> None:
    await comet.ask("!oshi set Pekora", author=MEMBERS[0])
    for _ in range(2):
        for name in (
            "comet.features.cogs.community",
            "comet.features.cogs.moderation",
            "comet.features.cogs.omikuji",
        ):
            await comet.bot.reload_extension(name)
    reply = await comet.ask("!oshi show", author=MEMBERS[0])
    assert "兎田ぺこら" in reply.content
    reply = await comet.ask("!omikuji", author=MEMBERS[1])
    assert "今日の運勢" in reply.content
