"""Gateway metrics and faults: the bot recovers, answers what was sent meanwhile, and the metrics show it."""

from __future__ import annotations

import pytest
from harness import Harness
from waiting import wait_until

from comet.core.demo_guild import DEMO
from instrumentation.gateway import finite_or_none

CHANNEL = DEMO.general_channel_id
SEND_ROUTE = "POST /channels/{channel_id}/messages"


def churn(env: Harness) -> tuple[float, float]:
    return env.sample("comet_gateway_disconnects_total", shard="0"), env.sample(
        "comet_gateway_resumes_total", shard="0"
    )


@pytest.mark.asyncio
async def test_gateway_metrics(comet: Harness) -> None:
    env = comet
    assert env.sample("comet_gateway_events_total", event="READY") == 1
    assert env.sample("comet_gateway_events_total", event="GUILD_CREATE") >= 1
    before = env.sample("comet_gateway_events_total", event="MESSAGE_CREATE")
    await env.ask("!ping")
    # The user's message and the bot's own reply both arrive as MESSAGE_CREATE.
    await wait_until(lambda: env.sample("comet_gateway_events_total", event="MESSAGE_CREATE") >= before + 2)
    assert env.sample("comet_ready") == 1
    assert env.sample("comet_shard_up", shard="0") == 1
    assert churn(env) == (0, 0)
    # Latency: a sample only once a real heartbeat ACK exists, and never NaN/inf.
    env.bot.gateway_instrumentation.sample_latency()
    latency = env.registry.get_sample_value("comet_gateway_latency_seconds", {"shard": "0"})
    assert latency is not None and latency == finite_or_none(latency) and latency >= 0
    assert env.sample("comet_guilds") == 1
    assert env.sample("comet_users") >= len(DEMO.user_ids)
    assert env.sample("comet_channels") >= 4
    # Shards this process does not run have no series at all.
    assert env.registry.get_sample_value("comet_shard_up", {"shard": "1"}) is None


async def _answered_meanwhile(env: Harness, author: int) -> None:
    """A message sent right after the fault (while the bot reconnects) still gets its answer."""
    msg = await env.emulator.send_message(CHANNEL, author, "!ping")
    reply = await env.emulator.wait_for_reply(CHANNEL, after=msg, timeout=10)
    assert reply.content.startswith("🏓")


@pytest.mark.asyncio
async def test_reconnect_resumes(comet: Harness) -> None:
    env = comet
    # What the gauges and /readyz say at the moment of each connection event (read right after the
    # instrumentation's own tap for that event has run).
    seen: list[tuple[str, float, float, bool]] = []

    def observe(event: str) -> None:
        def tap(shard_id: int) -> None:
            ready, up = env.sample("comet_ready"), env.sample("comet_shard_up", shard=str(shard_id))
            seen.append((event, ready, up, env.bot.monitor.is_healthy()))

        env.bot.dispatch_taps.add(event, tap)

    observe("shard_disconnect")
    observe("shard_resumed")
    resumes = env.emulator.resume_count
    assert env.emulator.faults.reconnect() == 1
    await _answered_meanwhile(env, DEMO.member_ids[0])
    await wait_until(lambda: churn(env) == (1, 1))
    assert env.emulator.resume_count == resumes + 1
    await wait_until(lambda: env.sample("comet_ready") == 1 and env.sample("comet_shard_up", shard="0") == 1)
    assert seen == [("shard_disconnect", 0.0, 0.0, False), ("shard_resumed", 1.0, 1.0, True)]


@pytest.mark.asyncio
async def test_dropped_socket_resumes(comet: Harness) -> None:
    env = comet
    assert env.emulator.faults.drop_socket() == 1
    await _answered_meanwhile(env, DEMO.member_ids[1])
    await wait_until(lambda: churn(env) == (1, 1))
    await wait_until(lambda: env.sample("comet_ready") == 1)
    assert (await env.bot.monitor.health_check())["status"] == "healthy"


@pytest.mark.asyncio
async def test_invalid_session(comet: Harness) -> None:
    env = comet
    # Resumable (d: true): RESUME, and what was sent meanwhile is replayed and answered.
    assert env.emulator.faults.invalid_session(resumable=True) == 1
    await _answered_meanwhile(env, DEMO.member_ids[2])
    await wait_until(lambda: churn(env) == (1, 1))

    # Not resumable (d: false): a new IDENTIFY; the shard comes back as a fresh session.
    identifies = env.emulator.identify_count
    assert env.emulator.faults.invalid_session(resumable=False) == 1
    await wait_until(lambda: env.emulator.identify_count == identifies + 1, timeout=10)
    await wait_until(lambda: env.sample("comet_gateway_disconnects_total", shard="0") == 2)
    await wait_until(lambda: env.sample("comet_ready") == 1 and env.sample("comet_shard_up", shard="0") == 1)
    assert env.sample("comet_gateway_resumes_total", shard="0") == 1  # a re-identify is not a resume
    assert env.sample("comet_gateway_events_total", event="READY") == 2
    reply = await env.ask("!ping", author=DEMO.member_ids[3])
    assert reply.content.startswith("🏓")


@pytest.mark.asyncio
async def test_rest_429_and_5xx_are_retried(comet: Harness) -> None:
    env = comet
    env.emulator.faults.rate_limit(0.2, route=SEND_ROUTE, count=1)
    assert (await env.ask("!ping")).content.startswith("🏓")
    env.emulator.faults.server_error(502, route=SEND_ROUTE, count=1)
    assert (await env.ask("!ping", author=DEMO.member_ids[1])).content.startswith("🏓")
    statuses = [r.status for r in env.emulator.requests_to("/channels/{channel_id}/messages", "POST")]
    assert 429 in statuses and 502 in statuses
    await wait_until(lambda: env.commands("ping", "prefix", "success") == 2)
    assert env.commands("ping", "prefix", "error") == 0


@pytest.mark.asyncio
async def test_rest_403_is_an_answered_error(comet: Harness) -> None:
    env = comet
    env.emulator.faults.forbidden(route=SEND_ROUTE, count=1)
    reply = await env.ask("!ping")  # the reply is refused once; the error answer goes through
    assert (
        reply.content == "⚠️ Discord との通信でエラーが発生しました。しばらくしてからもう一度お試しください。"
    )
    await wait_until(lambda: env.commands("ping", "prefix", "error") == 1)
    assert env.sample("comet_command_errors_total", command="ping", error="Forbidden") == 1
