"""Member lookups by name or id that miss the bot's cache go over REST (Discord's member search and
member fetch), never through the shard's gateway send budget: members hammering lookups of names
that do not exist leave the gateway limiter as it was, and a bystander's lookup is answered."""

from __future__ import annotations

import pytest
from community_support import MEMBERS
from harness import Harness

from comet.core.demo_guild import DEMO

SEARCH = "/guilds/{guild_id}/members/search"
FETCH = "/guilds/{guild_id}/members/{user_id}"


def _limiter_remaining(comet: Harness) -> int:
    ws = comet.bot._get_websocket(shard_id=0)
    return ws._rate_limiter.remaining


@pytest.mark.asyncio
async def test_lookups_of_unknown_names_spend_no_gateway_budget(comet: Harness) -> None:
    budget_before = _limiter_remaining(comet)
    # Five members, each typing several names nobody has, all at once: with gateway member queries
    # this is 25 of the shard's 110 commands a minute.
    # (one after another: each reply is matched to its own command)
    for attempt in range(5):
        for member in MEMBERS[:5]:
            name = f"nobody-{member % 1000}-{attempt}"
            reply = await comet.ask(f"!oshi show {name}", author=member)
            assert name in reply.content, reply.content  # "no member `...` in this server"
    assert comet.emulator.gateway.member_requests == 0
    assert _limiter_remaining(comet) == budget_before
    assert len(comet.emulator.requests_to(SEARCH, "GET")) == 25

    # A member who joined without the bot hearing of it (not in its cache): found by the search.
    guild = comet.emulator.world.guilds[DEMO.guild_id]
    newcomer = comet.emulator.world.add_user(name="shiranui_flare_fan")
    comet.emulator.world.join(guild.id, newcomer.id)
    assert comet.bot.get_guild(DEMO.guild_id).get_member(newcomer.id) is None  # type: ignore[union-attr]
    bystander = MEMBERS[6]
    reply = await comet.ask("!oshi show shiranui_flare_fan", author=bystander)
    assert "shiranui_flare_fan" in reply.content and "nobody" not in reply.content
    assert comet.bot.get_guild(DEMO.guild_id).get_member(newcomer.id) is not None  # type: ignore[union-attr]
    assert comet.emulator.gateway.member_requests == 0
    assert _limiter_remaining(comet) == budget_before


@pytest.mark.asyncio
async def test_a_lookup_by_id_outside_the_cache_fetches_over_rest(comet: Harness) -> None:
    guild = comet.emulator.world.guilds[DEMO.guild_id]
    quiet = comet.emulator.world.add_user(name="quiet_member")
    comet.emulator.world.join(guild.id, quiet.id)
    reply = await comet.ask(f"!oshi show <@{quiet.id}>", author=MEMBERS[0])
    assert "quiet_member" in reply.content
    fetches = comet.emulator.requests_to(FETCH, "GET")
    assert [r.path.rsplit("/", 1)[-1] for r in fetches] == [str(quiet.id)]
    assert comet.emulator.gateway.member_requests == 0

    gone = 1_234_567_890_123_456_789  # a well-formed id of nobody in the guild
    reply = await comet.ask(f"!oshi show <@{gone}>", author=MEMBERS[0])
    assert str(gone) in reply.content
    assert comet.emulator.gateway.member_requests == 0
