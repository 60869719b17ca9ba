"""The gateway send budget with the real discord.py client: 150 member queries from a test extension
spend the shard's real budget (discord.py's limiter, 110 per 60 s) and the 40 left over wait, counted
and timed while they wait; and a wait that ends is timed to its end (a limiter on a frozen clock, so
that the wait is its 50 ms, whatever the machine)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from bot_support import TEST_EXTENSIONS
from discord.gateway import GatewayRatelimiter
from harness import CometFactory, Harness
from waiting import wait_until

from comet.core.demo_guild import DEMO
from instrumentation.gateway_budget import budget_left

BURST = 150


class FrozenClockLimiter(GatewayRatelimiter):
    """discord.py's limiter with its clock stopped at creation: the window never passes, so once the
    budget is spent every send waits ``per`` seconds (discord.py does not decrement after a wait)."""

    def __init__(self, count: int, per: float) -> None:
        super().__init__(count, per)
        self.now = time.time()

    def is_ratelimited(self) -> bool:
        return not self.now > self.window + self.per and self.remaining == 0

    def get_delay(self) -> float:
        if self.remaining == self.max:
            self.window = self.now
        if self.remaining == 0:
            return self.per - (self.now - self.window)
        self.remaining -= 1
        return 0.0


async def _query(env: Harness, member: int) -> None:
    guild = env.bot.get_guild(DEMO.guild_id)
    assert guild is not None
    found = await guild.query_members(user_ids=[member], limit=1, cache=False)
    assert [m.id for m in found] == [member]


@pytest_asyncio.fixture
async def bursting(comet_factory: CometFactory) -> AsyncIterator[Harness]:
    harness = await comet_factory(extensions=(*TEST_EXTENSIONS, "member_burst_ext"))
    try:
        yield harness
    finally:  # the queries still waiting (for most of a minute) are cancelled
        await harness.bot.unload_extension("member_burst_ext")


@pytest.mark.asyncio
async def test_a_burst_of_member_queries_spends_the_real_budget_and_the_rest_wait(bursting: Harness) -> None:
    comet = bursting
    limiter = comet.bot._get_websocket(shard_id=0)._rate_limiter
    assert (limiter.max, limiter.per) == (110, 60.0)  # discord.py's own limiter, untouched
    used_before = limiter.max - budget_left(limiter)  # IDENTIFY and presence, since the connection
    assert comet.sample("comet_gateway_send_budget_remaining", shard="0") == limiter.max - used_before
    assert comet.sample("comet_gateway_sends_delayed_total", shard="0") == 0

    assert (await comet.ask(f"!burst {BURST}")).content == f"sent {BURST}"
    sent = limiter.max - used_before
    await wait_until(lambda: comet.emulator.gateway.member_requests >= sent, what="the budget spent")
    await wait_until(
        lambda: comet.sample("comet_gateway_sends_delayed_total", shard="0") == BURST - sent,
        what="every query beyond the budget counted as delayed",
    )
    first = comet.sample("comet_gateway_send_wait_seconds_total", shard="0")
    assert comet.sample("comet_gateway_send_budget_remaining", shard="0") == 0
    assert comet.sample("comet_gateway_sends_waiting", shard="0") == BURST - sent
    assert first > 0  # the waits in progress are timed while they wait, not only when they end
    await wait_until(
        lambda: comet.sample("comet_gateway_send_wait_seconds_total", shard="0") > first,
        what="the waited time growing",
    )
    assert comet.emulator.gateway.member_requests == sent  # none got past the budget
    assert comet.sample("comet_gateway_budget_errors_total") == 0


@pytest.mark.asyncio
async def test_a_send_that_finds_the_budget_spent_waits_and_is_counted(comet: Harness) -> None:
    limiter = FrozenClockLimiter(count=2, per=0.05)
    comet.bot._get_websocket(shard_id=0)._rate_limiter = limiter
    comet.registry_text()
    for member in DEMO.member_ids[:2]:
        await _query(comet, member)
    assert comet.sample("comet_gateway_sends_delayed_total", shard="0") == 0
    await _query(comet, DEMO.member_ids[2])  # the budget is spent: this one waits 50 ms first
    assert comet.sample("comet_gateway_sends_delayed_total", shard="0") == 1
    assert comet.sample("comet_gateway_send_wait_seconds_total", shard="0") >= 0.05
    assert comet.sample("comet_gateway_sends_waiting", shard="0") == 0
    assert comet.sample("comet_gateway_budget_errors_total") == 0
