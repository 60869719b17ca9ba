"""Pure helpers of the community cogs: durations, omikuji draws, and the catalogues' keys."""

from __future__ import annotations

import json
import string
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from comet.core.i18n import Translator
from comet.features.cogs.moderation import MAX_TIMEOUT, format_duration, parse_duration
from comet.features.cogs.omikuji import ITEM_COUNT, RANKS, draw_fortune, today_jst
from comet.features.talents import default_directory

LOCALES = Path(__file__).resolve().parents[2] / "comet" / "locales"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("10m", 600),
        ("1h", 3600),
        ("1d", 86400),
        ("90s", 90),
        ("1h30m", 5400),
        ("1H 30M", 5400),
        ("2w", 1209600),
        ("28d", 28 * 86400),
        ("10分", 600),
        ("1時間30分", 5400),
        ("１日", 86400),  # full-width digit
        ("3週間", 3 * 604800),
    ],
)
def test_parse_duration_reads_what_moderators_type(text: str, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["5x", "", "10", "m", "0m", "-5m", "1h-", "abc", "1.5h", "10m!", "h1"])
def test_parse_duration_refuses_everything_else(text: str) -> None:
    assert parse_duration(text) is None


def test_over_28_days_is_parsed_but_above_the_limit() -> None:
    delta = parse_duration("29d")
    assert delta is not None and delta > MAX_TIMEOUT


def test_format_duration_in_both_languages() -> None:
    ja, en = Translator("ja"), Translator("en")
    assert format_duration(timedelta(seconds=5400), ja.t) == "1時間30分"
    assert format_duration(timedelta(seconds=5400), en.t) == "1h 30m"
    assert format_duration(timedelta(days=1, seconds=5), en.t) == "1d 5s"


def test_omikuji_is_stable_per_day_and_varies_between_members_and_days() -> None:
    talents = default_directory()
    day = date(2025, 1, 1)
    assert draw_fortune(42, day, talents) == draw_fortune(42, day, talents)
    by_member = {draw_fortune(user, day, talents) for user in range(200)}
    by_day = {draw_fortune(42, day + timedelta(days=n), talents) for n in range(200)}
    assert len(by_member) > 50 and len(by_day) > 50


def test_omikuji_ranks_follow_their_weights() -> None:
    talents = default_directory()
    day = date(2025, 1, 1)
    counts = Counter(draw_fortune(user, day, talents).rank for user in range(20000))
    total = sum(weight for _, weight in RANKS)
    for rank, weight in RANKS:
        assert abs(counts[rank] / 20000 - weight / total) < 0.02, rank
    items = {draw_fortune(user, day, talents).item for user in range(2000)}
    assert items == set(range(ITEM_COUNT))


def test_the_day_turns_at_midnight_japan_time() -> None:
    utc = UTC
    assert today_jst(datetime(2025, 1, 1, 14, 59, tzinfo=utc)) == date(2025, 1, 1)
    assert today_jst(datetime(2025, 1, 1, 15, 0, tzinfo=utc)) == date(2025, 1, 2)


def test_both_catalogues_have_the_same_keys_and_placeholders() -> None:
    ja = json.loads((LOCALES / "ja" / "community.json").read_text(encoding="utf-8"))
    en = json.loads((LOCALES / "en" / "community.json").read_text(encoding="utf-8"))
    assert set(ja) == set(en)

    def fields(text: str) -> set[str]:
        return {name for _, name, _, _ in string.Formatter().parse(text) if name}

    for key in ja:
        assert fields(ja[key]) == fields(en[key]), key
    prefixes = {key.split(".")[0] for key in ja}
    assert prefixes == {"storage", "oshi", "mod", "omikuji"}
    for rank, _ in RANKS:
        assert f"omikuji.rank.{rank}" in ja and f"omikuji.message.{rank}" in ja
    assert all(f"omikuji.item.{n}" in ja for n in range(ITEM_COUNT))
