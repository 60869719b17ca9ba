"""``!timeout`` with absurdly long durations: answered "too long", never an exception.

``"9999999w"`` twenty times is beyond what ``timedelta`` holds (~2.7 million years); the parser
saturates at ``DURATION_LIMIT`` (10000 days) and the answer shows "at least 10000d".
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from community_support import MEMBERS, MOD
from harness import CometFactory, Harness
from hypothesis import given
from hypothesis import strategies as st

from comet.core.demo_guild import DEMO
from comet.core.i18n import Translator
from comet.features.cogs.moderation import DURATION_LIMIT, MAX_TIMEOUT, format_duration, parse_duration

GUILD = DEMO.guild_id
MEMBER_ROUTE = "/guilds/{guild_id}/members/{user_id}"
HUGE = "9999999w" * 20

#: Units as moderators type them, and their length in seconds.
UNITS = {"s": 1, "sec": 1, "秒": 1, "m": 60, "min": 60, "分": 60, "h": 3600, "時間": 3600}
UNITS |= {"d": 86400, "日": 86400, "w": 604800, "週": 604800, "週間": 604800}

JA, EN = Translator("ja"), Translator("en")


# -- the parser and the formatter ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (HUGE, DURATION_LIMIT),
        ("9999999w", DURATION_LIMIT),
        ("10000d", DURATION_LIMIT),
        ("9999d23h59m59s", DURATION_LIMIT - timedelta(seconds=1)),
        ("9999999週間" * 3, DURATION_LIMIT),
        ("２８日１秒", MAX_TIMEOUT + timedelta(seconds=1)),
    ],
)
def test_long_durations_saturate_at_the_limit(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


def test_a_huge_duration_with_a_bad_tail_is_still_unreadable() -> None:
    assert parse_duration(HUGE + "x") is None
    assert parse_duration("x" + HUGE) is None


def test_at_and_beyond_the_limit_the_duration_is_shown_as_at_least_the_limit() -> None:
    for delta in (DURATION_LIMIT, DURATION_LIMIT * 2, timedelta.max):
        assert format_duration(delta, JA.t) == "10000日以上"
        assert format_duration(delta, EN.t) == "at least 10000d"
    below = DURATION_LIMIT - timedelta(seconds=1)
    assert format_duration(below, EN.t) == "9999d 23h 59m 59s"


@given(st.text())
def test_parse_duration_never_raises_for_any_string(text: str) -> None:
    delta = parse_duration(text)
    assert delta is None or timedelta(0) < delta <= DURATION_LIMIT
    if delta is not None:
        assert format_duration(delta, JA.t) and format_duration(delta, EN.t)


@given(st.lists(st.tuples(st.integers(0, 9_999_999), st.sampled_from(sorted(UNITS))), min_size=1))
def test_well_formed_durations_read_exactly_up_to_the_limit(parts: list[tuple[int, str]]) -> None:
    text = "".join(f"{number}{unit}" for number, unit in parts)
    seconds = sum(number * UNITS[unit] for number, unit in parts)
    delta = parse_duration(text)
    if seconds == 0:
        assert delta is None
    else:
        assert delta == timedelta(seconds=min(seconds, int(DURATION_LIMIT.total_seconds())))


# -- through the real bot on the emulator ------------------------------------------------------------


def assert_nothing_happened(harness: Harness, target: int, kind: str, answered: int) -> None:
    assert harness.emulator.world.guilds[GUILD].members[target].communication_disabled_until is None
    assert not harness.emulator.requests_to(MEMBER_ROUTE, "PATCH")
    harness.bot.flush_metrics()
    counted = harness.sample("comet_commands_total", command="timeout", kind=kind, outcome="bad_argument")
    assert counted == answered
    assert harness.sample("comet_commands_total", command="timeout", kind=kind, outcome="error") == 0


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("locale", "duration", "expected"),
    [
        ("ja", HUGE, "❌ タイムアウトは最大 28 日までです（指定: 10000日以上）。"),
        ("en", HUGE, "❌ A timeout can last at most 28 days (asked: at least 10000d)."),
        ("en", "9999999w", "❌ A timeout can last at most 28 days (asked: at least 10000d)."),
        ("ja", "9999999週間" * 5, "❌ タイムアウトは最大 28 日までです（指定: 10000日以上）。"),
        ("en", "28d1s", "❌ A timeout can last at most 28 days (asked: 28d 1s)."),
    ],
)
async def test_huge_durations_are_answered_too_long(
    comet_factory: CometFactory,
    locale: str,
    duration: str,
    expected: str,
) -> None:
    harness: Harness = await comet_factory(locale=locale)
    target = MEMBERS[0]
    reply = await harness.ask(f"!timeout <@{target}> {duration} reason", author=MOD)
    assert reply.content == expected
    assert_nothing_happened(harness, target, "prefix", 1)


@pytest.mark.asyncio
async def test_a_huge_duration_as_a_slash_command_is_answered_too_long(comet_factory: CometFactory) -> None:
    harness: Harness = await comet_factory(locale="en")
    target = MEMBERS[1]
    reply = await harness.slash("timeout", {"member": str(target), "duration": HUGE}, author=MOD)
    assert reply.content == "❌ A timeout can last at most 28 days (asked: at least 10000d)."
    assert_nothing_happened(harness, target, "slash", 1)
