"""From a slow bucket to its cause: with one Discord route made slow, a slow command's duration
carries an exemplar whose id finds, through ``!trace`` and through ``/debug/invocations/<id>`` on
the product's metrics server, a timeline in which that REST call is the long step."""

from __future__ import annotations

import aiohttp
import pytest
import pytest_asyncio
from bot_support import TEST_EXTENSIONS
from harness import CometFactory, Harness
from prometheus_client.openmetrics.parser import text_string_to_metric_families
from waiting import wait_until

from comet.core.demo_guild import DEMO
from instrumentation.server import MetricsServer

MESSAGES = "/channels/{channel_id}/messages"
SLOW = 0.3
OPENMETRICS = {"Accept": "application/openmetrics-text; version=1.0.0"}


@pytest_asyncio.fixture
async def recorded(comet_factory: CometFactory) -> Harness:
    return await comet_factory(slow_threshold=0.2, extensions=(*TEST_EXTENSIONS, "comet.features.cogs.trace"))


async def _exemplar_ids(comet: Harness) -> set[str]:
    comet.bot.flush_metrics()
    url = comet.runtime.endpoints()["metrics"]
    async with aiohttp.ClientSession() as http, http.get(url, headers=OPENMETRICS) as response:
        assert response.headers["Content-Type"].startswith("application/openmetrics-text")
        text = await response.text()
    ids = set()
    for family in text_string_to_metric_families(text):
        if family.name == "comet_command_duration_seconds":
            for sample in family.samples:
                if sample.exemplar is not None and sample.labels.get("command") == "ping":
                    ids.add(sample.exemplar.labels["trace_id"])
    return ids


def _last_command(comet: Harness) -> str | None:
    trace = comet.bot.recorder.last()
    return trace.command if trace is not None else None


@pytest.mark.asyncio
async def test_a_slow_reply_leads_from_its_exemplar_to_the_slow_rest_call(recorded: Harness) -> None:
    comet = recorded
    await comet.ask("!ping")
    assert await _exemplar_ids(comet) == set()  # a fast command is not kept and leaves no exemplar
    comet.emulator.faults.slow_rest(SLOW, f"POST {MESSAGES}", count=1)
    await comet.ask("!ping")
    await wait_until(lambda: _last_command(comet) == "ping", what="the slow ping kept")
    ids = await _exemplar_ids(comet)
    assert len(ids) == 1
    (trace_id,) = ids
    assert len(trace_id) == 16 and not trace_id.isdigit()  # hex with a letter: never a snowflake

    base = comet.runtime.server.url
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/debug/invocations/{trace_id}") as response:
            assert response.status == 200
            timeline = await response.json()
        async with http.get(f"{base}/debug/invocations/0123456789abcdef") as response:
            assert response.status == 404
    assert timeline["id"] == trace_id and timeline["command"] == "ping" and timeline["outcome"] == "success"
    assert timeline["duration"] >= SLOW
    longest = max(timeline["steps"], key=lambda step: step["duration"])
    assert longest["kind"] == "rest" and longest["name"] == f"POST {MESSAGES}"
    assert longest["duration"] >= SLOW and longest["status"] == "2xx"
    text = str(timeline)
    assert str(DEMO.general_channel_id) not in text and str(DEMO.member_ids[0]) not in text  # no ids

    reply = await comet.ask(f"!trace {trace_id}", author=DEMO.owner_id)
    assert f"trace {trace_id}: ping (prefix) success" in reply.content
    assert f"rest     POST {MESSAGES}" in reply.content
    assert (await comet.ask("!trace last", author=DEMO.owner_id)).content == reply.content
    log = comet.log_path.read_text(encoding="utf-8")
    assert "Command ping was slow" in log and f"(trace {trace_id})" in log  # the same id in the log


@pytest.mark.asyncio
async def test_trace_is_owner_only_and_unknown_ids_are_answered(recorded: Harness) -> None:
    comet = recorded
    denied = comet.invocations("trace", "denied")
    await comet.say("!trace last")
    await wait_until(lambda: comet.invocations("trace", "denied") > denied, what="the refusal counted")
    reply = await comet.ask("!trace ffffffffffffffff", author=DEMO.owner_id)
    assert "trace last" in reply.content
    # Counted once the reply is sent (the reply is visible to the member before that).
    await wait_until(lambda: comet.invocations("trace", "error") == 1, what="the unknown id counted")


def test_the_endpoint_is_served_only_with_auth_or_on_loopback() -> None:
    lookup = {"abc": {"id": "abc"}}.get
    assert MetricsServer(object(), host="127.0.0.1", invocations=lookup).serves_invocations  # type: ignore[arg-type]
    assert not MetricsServer(object(), host="0.0.0.0", invocations=lookup).serves_invocations  # type: ignore[arg-type]
    guarded = MetricsServer(object(), host="0.0.0.0", invocations=lookup, basic_auth=("prom", "pw"))  # type: ignore[arg-type]
    assert guarded.serves_invocations
    assert not MetricsServer(object(), host="127.0.0.1").serves_invocations  # type: ignore[arg-type]


@pytest.mark.asyncio
async def test_a_failed_command_is_kept_and_its_log_line_names_the_same_id(recorded: Harness) -> None:
    comet = recorded
    await comet.ask("!boom")
    await wait_until(lambda: _last_command(comet) == "boom", what="the failed boom kept")
    trace = comet.bot.recorder.last()
    assert trace is not None and trace.outcome == "error" and trace.error == "DemoFailure"
    await wait_until(
        lambda: f"(trace {trace.id})" in comet.log_path.read_text(encoding="utf-8"), what="the log"
    )
    assert f"Command boom failed (trace {trace.id})" in comet.log_path.read_text(encoding="utf-8")
