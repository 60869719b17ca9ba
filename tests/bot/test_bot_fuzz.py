"""Fuzz command arguments: every input gets an answer, nothing raises unhandled, labels stay bounded."""

from __future__ import annotations

import logging
import math

import pytest
from harness import Harness
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from waiting import wait_until

from comet.core.demo_guild import DEMO

COMMANDS = ("ping", "health", "stats", "work", "add", "boom", "modonly", "owneronly", "help")
# Any printable text, including Japanese, markdown, mentions and quotes; no surrogates.
ARGUMENTS = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=40)
NAMES = st.text(st.characters(whitelist_categories=("Ll", "Lu", "Nd", "Lo")), min_size=1, max_size=20)
FUZZ = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def slow_work(command: str, argument: str) -> bool:
    """`work 9` would really take 9 s: keep the fuzz fast by skipping long waits (not failures)."""
    if command != "work":
        return False
    try:
        value = float(argument.split()[0]) if argument.split() else 1.0
    except ValueError:
        return False
    return math.isfinite(value) and value > 0.3


def total_commands(env: Harness) -> float:
    text = env.registry_text()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("comet_commands_total{")
    )


@pytest.mark.asyncio
@FUZZ
@given(command=st.sampled_from(COMMANDS), argument=ARGUMENTS, author=st.sampled_from(DEMO.member_ids))
async def test_prefix_arguments_always_get_an_answer(
    comet: Harness, caplog: pytest.LogCaptureFixture, command: str, argument: str, author: int
) -> None:
    if slow_work(command, argument):
        return
    env = comet
    before = total_commands(env)
    content = f"!{command} {argument}".rstrip()
    reply = await env.ask(content, author=author)
    assert reply.content or reply.embeds
    assert "Traceback" not in reply.content
    await wait_until(lambda: total_commands(env) == before + 1)
    _no_unhandled(env, caplog)


@pytest.mark.asyncio
@FUZZ
@given(name=NAMES)
async def test_unknown_names_are_answered_and_never_labels(
    comet: Harness, caplog: pytest.LogCaptureFixture, name: str
) -> None:
    env = comet
    if env.bot.get_command(name) is not None:
        return

    def not_found() -> float:
        return env.sample("comet_commands_total", command="unknown", kind="prefix", outcome="not_found")

    before = not_found()  # the bot is shared by the examples: this one's count is the next one
    reply = await env.ask(f"!{name}")
    assert reply.content.startswith("❓")
    await wait_until(lambda: not_found() == before + 1)
    text = env.registry_text()
    # No series of the command metrics carries the user's text as its command label.
    assert f'{{command="{name}",kind=' not in text and f'{{command="{name}",error=' not in text
    _no_unhandled(env, caplog)


@pytest.mark.asyncio
@FUZZ
@given(
    # Discord's client sends only values of the option's type (JSON numbers: finite, |int| < 2**53).
    seconds=st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.integers(-(2**53), 2**53)),
    times=st.integers(min_value=-(2**53), max_value=2**53),
)
async def test_slash_options_always_get_an_answer(
    comet: Harness, caplog: pytest.LogCaptureFixture, seconds: object, times: object
) -> None:
    env = comet
    if isinstance(seconds, int | float) and not isinstance(seconds, bool) and 0.3 < seconds <= 10:
        return  # a real wait, not a failure path
    for name, options in (("work", {"seconds": seconds}), ("slashonly", {"times": times})):
        reply = await env.slash(name, options)
        assert reply.content and "Traceback" not in reply.content
    _no_unhandled(env, caplog)


def _no_unhandled(env: Harness, caplog: pytest.LogCaptureFixture) -> None:
    # discord.py logs "Ignoring exception ..." at ERROR for anything no handler caught.
    unhandled = [r for r in caplog.records if r.name.startswith("discord") and r.levelno >= logging.ERROR]
    assert unhandled == [], [r.getMessage() for r in unhandled]
    failures = [
        line
        for line in env.registry_text().splitlines()
        if line.startswith("comet_instrumentation_errors_total{") and not line.endswith(" 0.0")
    ]
    assert failures == []
