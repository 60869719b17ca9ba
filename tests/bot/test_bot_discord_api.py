"""Discord REST metrics from the real discord.py client against the emulator: a slow route lands in
its route template's histogram bucket, injected 429s move the rate-limit counters and the time
waited, and no label value is a snowflake."""

from __future__ import annotations

import re
import socket

import aiohttp
import discord.http
import pytest
from harness import Harness
from waiting import wait_until

from comet.core.demo_guild import DEMO
from discord_emulator.endpoints import point_discord_at, restoring_endpoints
from instrumentation.discord_api import route_templates

MESSAGES = "/channels/{channel_id}/messages"
SNOWFLAKE = re.compile(r"\d{15,20}")


def _duration(env: Harness, suffix: str, **labels: str) -> float:
    return env.sample(f"comet_discord_request_duration_seconds{suffix}", **labels)


async def _sends_done(env: Harness, before: float) -> None:
    """The emulator shows a reply as soon as it stores it, before the bot's HTTP call has returned
    and been observed: wait for the observation itself."""
    labels = {"route": MESSAGES, "method": "POST", "status": "2xx"}
    await wait_until(lambda: _duration(env, "_count", **labels) > before)


@pytest.mark.asyncio
async def test_a_slow_route_is_observed_under_its_template(comet: Harness) -> None:
    labels = {"route": MESSAGES, "method": "POST", "status": "2xx"}
    before_slow = _duration(comet, "_count", **labels) - _duration(comet, "_bucket", **labels, le="0.25")
    sent_before = _duration(comet, "_count", **labels)
    comet.emulator.faults.slow_rest(0.3, f"POST {MESSAGES}", count=1)
    reply = await comet.ask("!ping")
    assert reply.content
    await _sends_done(comet, sent_before)
    after_slow = _duration(comet, "_count", **labels) - _duration(comet, "_bucket", **labels, le="0.25")
    assert after_slow == before_slow + 1  # exactly the one delayed send took more than 0.25 s
    assert comet.sample("comet_discord_request_attempts_total", **labels) >= 1


@pytest.mark.asyncio
@pytest.mark.parametrize(("options", "scope"), [({}, "bucket"), ({"is_global": True}, "global"),
                                                ({"shared": True}, "shared")])  # fmt: skip
async def test_a_429_is_counted_with_its_scope_and_the_time_waited(
    comet: Harness, options: dict[str, bool], scope: str
) -> None:
    retry_after = 0.2
    attempts = {"route": MESSAGES, "method": "POST"}
    limited_before = comet.sample("comet_discord_request_attempts_total", **attempts, status="4xx")
    sent_before = _duration(comet, "_count", **attempts, status="2xx")
    comet.emulator.faults.rate_limit(retry_after, f"POST {MESSAGES}", count=1, **options)
    reply = await comet.ask("!ping")
    assert reply.content  # discord.py slept and retried: the reply still arrived
    await _sends_done(comet, sent_before)
    assert comet.sample("comet_discord_rate_limits_total", scope=scope) == 1
    waited = comet.sample("comet_discord_rate_limit_wait_seconds_total", scope=scope)
    # discord.py sleeps the body's retry_after before the retry; the wait is measured from the 429
    # to the retry's start, so it is at least that and at most the whole call.
    call = _duration(comet, "_sum", **attempts, status="2xx")
    assert retry_after <= waited <= call
    assert comet.sample("comet_discord_request_retries_total") >= 1
    assert (
        comet.sample("comet_discord_request_attempts_total", **attempts, status="4xx") == limited_before + 1
    )
    for other in {"bucket", "global", "shared"} - {scope}:
        assert comet.sample("comet_discord_rate_limits_total", scope=other) == 0


@pytest.mark.asyncio
async def test_route_labels_are_templates_and_never_snowflakes(comet: Harness) -> None:
    await comet.ask("!ping")
    await _sends_done(comet, 0)
    await comet.emulator.send_message(DEMO.general_channel_id, DEMO.member_ids[0], "!health")
    routes = set()
    for family in comet.registry.collect():  # every family of the bot, not only the REST ones
        for sample in family.samples:
            for value in sample.labels.values():
                assert not SNOWFLAKE.search(value), (sample.name, sample.labels)
            if family.name.startswith("comet_discord_") and "route" in sample.labels:
                routes.add(sample.labels["route"])
    assert MESSAGES in routes
    assert routes <= route_templates() | {"other"}


@pytest.mark.asyncio
async def test_a_spent_bucket_is_waited_for_without_a_429_and_the_wait_is_counted(comet: Harness) -> None:
    window = 0.4
    sent_before = _duration(comet, "_count", route=MESSAGES, method="POST", status="2xx")
    # One message per window: the answer's headers say the bucket is spent, and discord.py sleeps
    # until it resets before it lets the call return (the next one would wait too), with no 429.
    comet.emulator.faults.limit_route(f"POST {MESSAGES}", limit=1, per=window)
    assert (await comet.ask("!ping")).content
    await _sends_done(comet, sent_before)
    waited = comet.sample("comet_discord_rate_limit_wait_seconds_total", scope="bucket")
    call = _duration(comet, "_sum", route=MESSAGES, method="POST", status="2xx")
    assert window * 0.5 <= waited <= call  # the reset the headers announced, less the answer's transit
    assert comet.sample("comet_discord_rate_limits_total", scope="bucket") == 0
    assert [r.status for r in comet.emulator.requests_to(MESSAGES, "POST")][-1] == 200


@pytest.mark.asyncio
async def test_an_interaction_response_is_timed_under_its_route_template(comet: Harness) -> None:
    callback = {"route": "/interactions/{webhook_id}/{webhook_token}/callback", "method": "POST"}
    assert callback["route"] in route_templates()  # a template of discord.py's webhook adapter
    assert (await comet.slash("ping")).content
    await wait_until(lambda: _duration(comet, "_count", **callback, status="2xx") == 1)
    assert comet.sample("comet_discord_request_attempts_total", **callback, status="2xx") == 1


def _closed_port() -> int:
    with socket.socket() as probe:  # bound, never listening: a connection to it is refused
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.asyncio
async def test_a_call_that_gets_no_answer_is_a_connection_error(comet: Harness) -> None:
    me = {"route": "/users/@me", "method": "GET", "status": "error"}
    with restoring_endpoints():
        point_discord_at(f"http://127.0.0.1:{_closed_port()}/api/v10", comet.emulator.gateway_url)
        with pytest.raises(aiohttp.ClientConnectorError):
            await comet.bot.http.request(discord.http.Route("GET", "/users/@me"))
    assert comet.sample("comet_discord_connection_errors_total", error="ClientConnectorError") == 1
    assert comet.sample("comet_discord_request_attempts_total", **me) == 1
    assert _duration(comet, "_count", **me) == 1
    assert comet.sample("comet_discord_request_retries_total") == 0


@pytest.mark.asyncio
async def test_a_5xx_that_discord_py_retries_is_one_call_of_two_attempts(comet: Harness) -> None:
    sent = {"route": MESSAGES, "method": "POST"}
    before = {status: comet.sample("comet_discord_request_attempts_total", **sent, status=status)
              for status in ("2xx", "5xx")}  # fmt: skip
    calls_before = _duration(comet, "_count", **sent, status="2xx")
    retries_before = comet.sample("comet_discord_request_retries_total")
    comet.emulator.faults.server_error(502, f"POST {MESSAGES}", count=1)
    assert (await comet.ask("!ping", timeout=8)).content  # discord.py waits 1 s, then retries
    await _sends_done(comet, calls_before)
    assert comet.sample("comet_discord_request_attempts_total", **sent, status="5xx") == before["5xx"] + 1
    assert comet.sample("comet_discord_request_attempts_total", **sent, status="2xx") == before["2xx"] + 1
    assert comet.sample("comet_discord_request_retries_total") == retries_before + 1
    assert _duration(comet, "_count", **sent, status="2xx") == calls_before + 1  # one call, answered
    assert _duration(comet, "_count", **sent, status="5xx") == 0


@pytest.mark.asyncio
async def test_rest_bookkeeping_that_breaks_is_counted_and_the_call_goes_on(
    comet: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    for hook in ("rest_call", "rest_attempt", "rest_bucket_wait"):  # 0 on a dashboard before a failure
        assert comet.sample("comet_instrumentation_errors_total", hook=hook) == 0
    api = comet.metrics.discord_api

    def broken(*labels: str) -> None:
        raise RuntimeError("the metrics layer broke")

    succeeded = comet.commands("ping", "prefix", "success")
    monkeypatch.setattr(api, "duration_child", broken)
    monkeypatch.setattr(api, "attempt_child", broken)
    assert (await comet.ask("!ping")).content  # the reply was still sent ...
    await wait_until(lambda: comet.sample("comet_instrumentation_errors_total", hook="rest_call") >= 1)
    # ... as the command's own answer, not an error reply: the send never saw the failure.
    await wait_until(lambda: comet.commands("ping", "prefix", "success") == succeeded + 1)
    assert comet.commands("ping", "prefix", "error") == 0
    assert comet.sample("comet_instrumentation_errors_total", hook="rest_attempt") >= 1
