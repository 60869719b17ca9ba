"""Member lookups by name or id that miss the bot's cache go over REST (Discord's member search and
member fetch), never through the shard's gateway send budget: members hammering lookups of names
that do not exist leave the gateway limiter as it was, and a bystander's lookup is answered."""

from __future__ import annotations

import pytest
from community_support import MEMBERS, Harness

from comet.core.demo_guild import DEMO

SEARCH = "/guilds/{guild_id}/members/search"
FETCH = "/guilds/{guild_id}/members/{user_id}"


def _limiter_remaining(community: Harness) -> int:
    ws = community.bot._get_websocket(shard_id=0)
    return ws._rate_limiter.remaining


@pytest.mark.asyncio
async def test_lookups_of_unknown_names_spend_no_gateway_budget(community: Harness) -> None:
    budget_before = _limiter_remaining(community)
    # Five members, each typing several names nobody has, all at once: with gateway member queries
    # this is 25 of the shard's 110 commands a minute.
    # (one after another: each reply is matched to its own command)
    for attempt in range(5):
        for member in MEMBERS[:5]:
            name = f"nobody-{member % 1000}-{attempt}"
            reply = await community.say(member, f"!oshi show {name}")
            assert name in reply.content, reply.content  # "no member `...` in this server"
    assert community.emu.gateway.member_requests == 0
    assert _limiter_remaining(community) == budget_before
    assert len(community.emu.requests_to(SEARCH, "GET")) == 25

    # A member who joined without the bot hearing of it (not in its cache): found by the search.
    guild = community.emu.world.guilds[DEMO.guild_id]
    newcomer = community.emu.world.add_user(name="shiranui_flare_fan")
    community.emu.world.join(guild.id, newcomer.id)
    assert community.bot.get_guild(DEMO.guild_id).get_member(newcomer.id) is None  # type: ignore[union-attr]
    bystander = MEMBERS[6]
    reply = await community.say(bystander, "!oshi show shiranui_flare_fan")
    assert "shiranui_flare_fan" in reply.content and "nobody" not in reply.content
    assert community.bot.get_guild(DEMO.guild_id).get_member(newcomer.id) is not None  # type: ignore[union-attr]
    assert community.emu.gateway.member_requests == 0
    assert _limiter_remaining(community) == budget_before


@pytest.mark.asyncio
async def test_a_lookup_by_id_outside_the_cache_fetches_over_rest(community: Harness) -> None:
    guild = community.emu.world.guilds[DEMO.guild_id]
    quiet = community.emu.world.add_user(name="quiet_member")
    community.emu.world.join(guild.id, quiet.id)
    reply = await community.say(MEMBERS[0], f"!oshi show <@{quiet.id}>")
    assert "quiet_member" in reply.content
    fetches = community.emu.requests_to(FETCH, "GET")
    assert [r.path.rsplit("/", 1)[-1] for r in fetches] == [str(quiet.id)]
    assert community.emu.gateway.member_requests == 0

    gone = 1_234_567_890_123_456_789  # a well-formed id of nobody in the guild
    reply = await community.say(MEMBERS[0], f"!oshi show <@{gone}>")
    assert str(gone) in reply.content
    assert community.emu.gateway.member_requests == 0
