"""``!profile`` samples the live loop: a CPU-heavy command run meanwhile shows up among the top
functions, the reply carries a speedscope file, and a member who is not the owner is refused."""

from __future__ import annotations

import json

import pytest
import pytest_asyncio
from bot_support import TEST_EXTENSIONS
from harness import CometFactory, Harness
from waiting import wait_until

from comet.core.demo_guild import DEMO
from discord_emulator import BotMessage


@pytest_asyncio.fixture
async def profiled(comet_factory: CometFactory) -> Harness:
    return await comet_factory(extensions=(*TEST_EXTENSIONS, "comet.features.cogs.profile", "profile_ext"))


@pytest.mark.asyncio
async def test_profile_shows_a_busy_command_and_attaches_a_speedscope_file(profiled: Harness) -> None:
    comet = profiled
    cog = comet.bot.get_cog("Profile")
    asked = await comet.say("!profile 2", author=DEMO.owner_id)
    await wait_until(lambda: cog._lock.locked(), what="the profile running")  # type: ignore[union-attr]
    assert (await comet.ask("!spin")).content == "spun"

    def profile_reply() -> list[BotMessage]:
        return [m for m in comet.replies_after(asked) if m.files]

    await wait_until(lambda: bool(profile_reply()), 15, what="the profile's answer")
    (reply,) = profile_reply()
    assert "spin_the_cpu" in reply.content
    assert "samples" in reply.content
    ((name, data),) = reply.files
    assert name == "profile.speedscope.json"
    speedscope = json.loads(data)
    assert speedscope["$schema"] == "https://www.speedscope.app/file-format-schema.json"
    assert any(frame["name"] == "spin_the_cpu" for frame in speedscope["shared"]["frames"])
    await wait_until(lambda: comet.invocations("profile", "ok") == 1, what="the profile counted")


@pytest.mark.asyncio
async def test_profile_is_owner_only_and_checks_its_argument(profiled: Harness) -> None:
    comet = profiled
    await comet.say("!profile 1")
    await wait_until(lambda: comet.invocations("profile", "denied") == 1, what="the refusal counted")
    reply = await comet.ask("!profile 999", author=DEMO.owner_id)
    assert "60" in reply.content and not reply.files
    await wait_until(lambda: comet.invocations("profile", "error") == 1, what="the bad argument counted")
