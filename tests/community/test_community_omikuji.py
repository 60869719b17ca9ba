"""omikuji: the same fortune all day per member, in Japanese and English, prefix and slash."""

from __future__ import annotations

import pytest
from community_support import MEMBERS
from harness import CometFactory, Harness

from comet.core.i18n import Translator
from comet.features.cogs.omikuji import draw_fortune, today_jst
from comet.features.talents import default_directory


def expected_text(user_id: int, name: str, locale: str) -> str:
    fortune = draw_fortune(user_id, today_jst(), default_directory())
    t = Translator(locale).t
    return t(
        "omikuji.result",
        member=name,
        rank=t(f"omikuji.rank.{fortune.rank}"),
        message=t(f"omikuji.message.{fortune.rank}"),
        item=t(f"omikuji.item.{fortune.item}"),
        talent=fortune.talent.display(locale),
    )


@pytest.mark.asyncio
@pytest.mark.parametrize(("locale", "word"), [("ja", "今日の運勢"), ("en", "today's fortune")])
async def test_same_fortune_all_day_in_both_languages(
    comet_factory: CometFactory, locale: str, word: str
) -> None:
    harness: Harness = await comet_factory(locale=locale)
    day = today_jst()
    first = await harness.ask("!omikuji", author=MEMBERS[0])
    second = await harness.slash("omikuji", author=MEMBERS[0])
    alias = await harness.ask("!おみくじ", author=MEMBERS[0])
    if today_jst() != day:  # midnight in Japan passed during the test: the answer may change
        pytest.skip("the day changed while the test ran")
    assert word in first.content
    assert first.content == second.content == alias.content
    assert first.content == expected_text(MEMBERS[0], "nousagi_fan", locale)


@pytest.mark.asyncio
async def test_members_get_their_own_fortunes(comet: Harness) -> None:
    replies = [await comet.ask("!omikuji", author=user) for user in MEMBERS]
    for user, reply in zip(MEMBERS, replies, strict=True):
        assert reply.content.split("\n", 1)[1] == expected_text(user, "x", "ja").split("\n", 1)[1]
    assert len({r.content.split("\n", 1)[1] for r in replies}) > 1
