"""ping / health / stats as users see them, in Japanese and English, prefix and slash; exact metrics."""

from __future__ import annotations

import time

import aiohttp
import pytest
from harness import CometFactory, Harness
from waiting import wait_until

from comet.core.demo_guild import DEMO
from instrumentation.gateway import finite_or_none

EXPECTED = {
    "ja": {
        "ping": "🏓 ポン！ ゲートウェイ遅延: ",
        "health": [
            "🩺 C.O.M.E.T. ヘルスチェック",
            "状態: 正常",
            "稼働時間: ",
            "サーバー数: 1",
            "メモリ: ",
            "CPU: ",
        ],
        "response": "応答時間: 平均 ",
        "stats": [
            "📊 C.O.M.E.T. 統計",
            "実行されたコマンド: ",
            "よく使われるコマンド:",
            "時間のかかるコマンド (平均):",
        ],
    },
    "en": {
        "ping": "🏓 Pong! Gateway latency: ",
        "health": [
            "🩺 C.O.M.E.T. health check",
            "Status: healthy",
            "Uptime: ",
            "Servers: 1",
            "Memory: ",
            "CPU: ",
        ],
        "response": "Response time: average ",
        "stats": [
            "📊 C.O.M.E.T. statistics",
            "Commands run: ",
            "Most used commands:",
            "Slowest commands (average):",
        ],
    },
}


@pytest.mark.asyncio
async def test_every_monitoring_command_as_users_see_it(localized: Harness) -> None:
    env = localized
    text = EXPECTED[env.bot.settings.locale]
    alice, bob = DEMO.member_ids[0], DEMO.member_ids[1]

    reply = await env.ask("!ping", author=alice)
    assert reply.content.startswith(text["ping"]) and reply.content.endswith(" ms")
    reply = await env.slash("ping", author=bob)
    assert reply.content.startswith(text["ping"])
    assert reply.interaction_id is not None

    await wait_until(lambda: env.commands("ping", "slash", "success") == 1)
    for prefix_or_slash in ("prefix", "slash"):
        reply = await (
            env.ask("!health", author=alice) if prefix_or_slash == "prefix" else env.slash("health")
        )
        lines = reply.content.splitlines()
        for expected in text["health"]:
            assert any(line.startswith(expected) for line in lines), (expected, reply.content)
        assert any(line.startswith(text["response"]) for line in lines)
        assert "Traceback" not in reply.content

    await wait_until(lambda: env.commands("health", "slash", "success") == 1)
    reply = await env.ask("!stats", author=alice)
    for expected in text["stats"]:
        assert expected in reply.content
    # Four commands had completed: ping x2, health x2; ping and health are the top commands.
    assert "4" in reply.content.splitlines()[1]
    assert "ping" in reply.content and "health" in reply.content
    reply = await env.slash("stats", author=bob)
    assert text["stats"][0] in reply.content


@pytest.mark.asyncio
async def test_each_invocation_is_counted_once_with_its_kind(comet: Harness) -> None:
    env = comet
    await env.slash("ping")  # a hybrid used as slash fires command_completion AND app_command_completion
    await env.ask("!ping")
    await env.ask("!ping")
    await wait_until(lambda: env.commands("ping", "prefix", "success") == 2)
    # A later invocation has been recorded, so any duplicate of the slash one would be visible by now.
    assert env.commands("ping", "slash", "success") == 1
    assert env.sample("comet_command_duration_seconds_count", command="ping", kind="slash") == 1
    assert env.sample("comet_command_duration_seconds_count", command="ping", kind="prefix") == 2
    assert env.sample("comet_command_duration_seconds_sum", command="ping", kind="prefix") > 0
    assert len(env.bot.instrumentation.response_times) == 3

    # Registered commands are pre-initialised at 0 (success and error) for the kinds they have: a
    # hybrid as prefix and slash, a plain app command as slash only (it can never run as prefix).
    def series(name: str, kind: str, outcome: str) -> float | None:
        labels = {"command": name, "kind": kind, "outcome": outcome}
        return env.registry.get_sample_value("comet_commands_total", labels)

    for name in ("ping", "health", "stats", "work", "boom", "modonly", "slashonly"):
        kinds = ("slash",) if name == "slashonly" else ("prefix", "slash")
        for kind in kinds:
            assert series(name, kind, "error") is not None and series(name, kind, "success") is not None
    assert series("slashonly", "prefix", "error") is None and series("slashonly", "prefix", "success") is None


def assert_one_observation_in_its_buckets(env: Harness, command: str, kind: str) -> float:
    """The only duration observed for ``command``/``kind``: every cumulative bucket counts it exactly
    when its bound is at or above it (whatever the machine made the duration)."""
    labels = {"command": command, "kind": kind}
    assert env.sample("comet_command_duration_seconds_count", **labels) == 1
    observed = env.sample("comet_command_duration_seconds_sum", **labels)
    buckets = {
        sample.labels["le"]: sample.value
        for family in env.registry.collect()
        for sample in family.samples
        if sample.name == "comet_command_duration_seconds_bucket"
        and {k: sample.labels[k] for k in labels} == labels
    }
    assert len(buckets) > 5 and "+Inf" in buckets
    for le, count in buckets.items():
        assert count == (1 if observed <= float(le) else 0), (le, observed)
    return observed


@pytest.mark.asyncio
async def test_slow_commands_show_in_duration_and_health(comet: Harness) -> None:
    env = comet
    sent = time.perf_counter()
    reply = await env.ask("!work 0.3")
    assert reply.content.startswith("⚙️ 0.30 秒の作業が終わりました")
    await wait_until(lambda: env.commands("work", "prefix", "success") == 1)
    waited = time.perf_counter() - sent
    # At least the 0.3 s the command slept, at most what the test saw from sending to recording.
    observed = assert_one_observation_in_its_buckets(env, "work", "prefix")
    assert 0.3 <= observed <= waited
    assert env.sample("comet_command_duration_seconds_bucket", command="work", kind="prefix", le="0.25") == 0
    sent = time.perf_counter()
    reply = await env.slash("work", {"seconds": 0.2})
    assert "0.20" in reply.content
    await wait_until(lambda: env.commands("work", "slash", "success") == 1)
    waited = time.perf_counter() - sent
    assert 0.2 <= assert_one_observation_in_its_buckets(env, "work", "slash") <= waited
    assert env.bot.instrumentation.response_times.get_average_response_time() >= 0.25
    reply = await env.ask("!stats", author=DEMO.member_ids[2])
    slowest = reply.content.split("時間のかかるコマンド (平均):")[1]
    assert slowest.strip().startswith("1. work")


@pytest.mark.asyncio
async def test_readiness_json_and_metrics_endpoint(comet: Harness) -> None:
    env = comet
    await env.ask("!ping")
    await wait_until(lambda: env.commands("ping", "prefix", "success") == 1)
    monitor = env.bot.monitor
    endpoints = env.runtime.endpoints()  # the launcher's own metrics server (port 0)
    async with aiohttp.ClientSession() as http:
        # The readings /readyz serves, taken from the bot itself just before and just after.
        uptime_before, latency_before = monitor.uptime(), finite_or_none(env.bot.latency)
        async with http.get(endpoints["readyz"]) as resp:
            assert resp.status == 200
            ready = await resp.json()
        uptime_after, latency_after = monitor.uptime(), finite_or_none(env.bot.latency)
        async with http.get(endpoints["metrics"]) as resp:
            exposition = await resp.text()
    assert ready["status"] == "healthy"
    assert ready["guilds"] == 1
    assert uptime_before <= ready["uptime"] <= uptime_after
    assert ready["latency"] in (latency_before, latency_after)
    assert set(ready["shards"]) == {"0"}
    assert 'comet_commands_total{command="ping",kind="prefix",outcome="success"} 1.0' in exposition
    assert "comet_ready 1.0" in exposition
    assert 'comet_shard_up{shard="0"} 1.0' in exposition
    assert "comet_guilds 1.0" in exposition
    assert "comet_build_info{" in exposition


@pytest.mark.asyncio
async def test_readiness_before_connecting_is_503_without_nan(comet_factory: CometFactory) -> None:
    # Everything the launcher starts before the bot logs in: the metrics server already answers.
    env = await comet_factory(connect=False)
    status, body = await env.scrape("readyz")
    assert status == 503
    assert '"status": "unhealthy"' in body or '"status":"unhealthy"' in body
    assert "NaN" not in body and "Infinity" not in body
    assert env.registry.get_sample_value("comet_ready") == 0
    # No latency sample exists before a real heartbeat.
    assert env.registry.get_sample_value("comet_gateway_latency_seconds", {"shard": "0"}) is None


HELP = {
    "ja": (
        "`!help コマンド名` でコマンドの詳しい説明を表示します。",
        "❓ コマンド `nosuch` は見つかりません。",
    ),
    "en": ("Type `!help command` for more about a command.", "❓ There is no command `nosuch`."),
}


@pytest.mark.asyncio
async def test_help_in_both_languages(localized: Harness) -> None:
    env = localized
    ending, not_found = HELP[env.bot.settings.locale]
    reply = await env.ask("!help")
    for name in ("ping", "health", "stats", "work", "boom"):
        assert name in reply.content
    assert ending in reply.content
    reply = await env.ask("!help ping")
    assert "!ping" in reply.content
    assert (await env.ask("!help nosuch")).content == not_found
    await wait_until(lambda: env.commands("help", "prefix", "success") == 3)
