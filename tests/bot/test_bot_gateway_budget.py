"""The gateway send budget with the real discord.py client: member queries spend the shard's budget
(visible at scrape), and a query that finds it spent waits and is counted. The shard's limiter is
discord.py's own class with a small budget (5, not 110, so that spending it takes 5 queries), and
for the wait a limiter on a frozen clock (so that the wait is its 50 ms, whatever the machine)."""

from __future__ import annotations

import time

import pytest
from discord.gateway import GatewayRatelimiter
from harness import Harness

from comet.core.demo_guild import DEMO


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


@pytest.mark.asyncio
async def test_member_queries_spend_the_budget_seen_at_scrape(comet: Harness) -> None:
    ws = comet.bot._get_websocket(shard_id=0)
    ws._rate_limiter = GatewayRatelimiter(count=5, per=60.0)
    comet.registry_text()  # a scrape ties the new limiter to the metrics, as after a reconnect
    assert comet.sample("comet_gateway_send_budget_remaining", shard="0") == 5
    assert comet.sample("comet_gateway_send_budget_limit", shard="0") == 5
    for member in DEMO.member_ids[:5]:
        await _query(comet, member)
    assert comet.sample("comet_gateway_send_budget_remaining", shard="0") == 0
    assert comet.emulator.gateway.member_requests == 5
    assert comet.sample("comet_gateway_sends_delayed_total", shard="0") == 0


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
    assert comet.sample("comet_gateway_budget_errors_total") == 0
