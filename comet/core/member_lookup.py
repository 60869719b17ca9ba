"""Member lookups that never spend the gateway's send budget.

discord.py's ``MemberConverter`` resolves a name or id missing from the cache with a gateway member
query (``REQUEST_GUILD_MEMBERS``), sent through the shard's ``GatewayRatelimiter``: 110 commands per
60 s, shared with presence updates and every other member request of the shard. Any member typing
``!oshi show <typo>`` a few times spends it, and then every gateway command of the shard waits, up to
a minute. Here the same lookups go over REST instead: Discord's member search
(``GET /guilds/{guild_id}/members/search``, which discord.py has no method for) for names and
``GET /guilds/{guild_id}/members/{user_id}`` for ids. REST rate limits are per route, so a burst of
lookups slows only further lookups, never the shard.

Installed by replacing the converter discord.py maps ``discord.Member`` to (``CONVERTER_MAPPING``)
rather than by annotating parameters with a custom converter: a hybrid command would turn a custom
converter's slash parameter into a plain string, and ``discord.Member`` keeps Discord's member picker.
The mapping is process-wide; COMET owns its process.
"""

from __future__ import annotations

from typing import Any

import discord
from discord.ext import commands
from discord.ext.commands import converter as converters
from discord.http import Route

#: Discord's member search returns at most this many members per call.
SEARCH_LIMIT = 100
SEARCH_PATH = "/guilds/{guild_id}/members/search"


async def search_members(
    guild: discord.Guild, query: str, *, limit: int = SEARCH_LIMIT
) -> list[discord.Member]:
    """Members of ``guild`` whose username, global name or nickname starts with ``query``."""
    state = guild._state
    route = Route("GET", SEARCH_PATH, guild_id=guild.id)
    data: list[dict[str, Any]] = await state.http.request(route, params={"query": query, "limit": limit})
    return [discord.Member(data=item, guild=guild, state=state) for item in data]  # type: ignore[arg-type]


class RestMemberConverter(commands.MemberConverter):
    """``MemberConverter`` with the cache first and REST second, never the gateway."""

    async def query_member_named(self, guild: discord.Guild, argument: str) -> discord.Member | None:
        username, _, discriminator = argument.rpartition("#")
        if not username:
            discriminator, username = username, discriminator
        if discriminator == "0" or (len(discriminator) == 4 and discriminator.isdigit()):
            lookup = username

            def predicate(m: discord.Member) -> bool:
                return m.name == username and m.discriminator == discriminator
        else:
            lookup = argument

            def predicate(m: discord.Member) -> bool:
                return argument in (m.name, m.global_name, m.nick)

        if not 1 <= len(lookup) <= 100:  # what Discord's search accepts; nobody has a longer name
            return None
        members = await search_members(guild, lookup)
        found = discord.utils.find(predicate, members)
        if found is not None and guild._state.member_cache_flags.joined:
            guild._add_member(found)
        return found

    async def query_member_by_id(self, bot: Any, guild: discord.Guild, user_id: int) -> discord.Member | None:
        try:
            member = await guild.fetch_member(user_id)
        except discord.NotFound:
            return None
        if guild._state.member_cache_flags.joined:
            guild._add_member(member)
        return member


def install_rest_member_lookup() -> None:
    converters.CONVERTER_MAPPING[discord.Member] = RestMemberConverter
