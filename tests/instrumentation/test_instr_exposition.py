"""The exposition of a registry holding every metric passes ``promtool check metrics`` cleanly."""

from __future__ import annotations

import asyncio
import math
import subprocess
from types import SimpleNamespace

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Summary, generate_latest
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families
from support import require_binary

from instrumentation import cache_sizes
from instrumentation.collectors import register_runtime_collectors
from instrumentation.decorators import monitor_performance
from instrumentation.fail_open import HookFailures
from instrumentation.metrics import Metrics


def every_metric_registry() -> tuple[CollectorRegistry, Metrics]:
    """A registry with every Metrics attribute and the runtime collectors, after some traffic."""
    registry = CollectorRegistry(auto_describe=True)
    m = Metrics.for_registry(registry)
    register_runtime_collectors(registry)
    m.register_commands(["ping", "oshi set", "health"])
    m.register_shards([0, 1])
    m.set_build_info("0.1.0", "2.7.1")
    m.command_duration.labels("ping", "prefix").observe(0.12)
    m.command_duration.labels("oshi set", "slash").observe(2.7)
    m.commands.labels("ping", "prefix", "success").inc()
    m.commands.labels("oshi set", "slash", "error").inc()
    m.command_errors.labels("oshi set", "Forbidden").inc()
    m.gateway_latency.labels("0").set(0.042)
    m.gateway_events.labels("MESSAGE_CREATE").inc(5)
    m.gateway_disconnects.labels("1").inc()
    m.gateway_resumes.labels("1").inc()
    m.ready.set(1)
    m.shard_up.labels("0").set(1)
    cached = SimpleNamespace(
        guilds=[SimpleNamespace(channels=[None] * 7)],
        _connection=SimpleNamespace(_users=dict.fromkeys(range(12))),
    )
    m.cache_sizes.read_from(cached, HookFailures(m.instrumentation_errors, cache_sizes.HOOKS.names))
    m.loop_lag.observe(0.003)
    m.loop_blocked.inc()
    m.debug_invocations.labels("debug", "denied").inc()
    m.log_records.labels("WARNING").inc()
    m.instrumentation_errors.labels("command_completion").inc()
    m.extension_reloads.labels("reload", "success").inc()
    m.automod_actions.labels("timeout").inc()

    @monitor_performance(registry=registry, name="storage.add_warning", slow_threshold=0.0)
    async def add_warning() -> None:
        await asyncio.sleep(0)

    asyncio.run(add_warning())

    # Any metric added to Metrics later and not observed above still gets a sample here.
    for metric in metric_objects(m):
        if not any(family.samples for family in metric.collect()):
            target = metric.labels(*["probe"] * len(metric._labelnames)) if metric._labelnames else metric
            if isinstance(metric, Counter):
                target.inc()
            elif isinstance(metric, Gauge):
                target.set(1)
            elif isinstance(metric, (Histogram, Summary)):
                target.observe(0.1)
    return registry, m


def metric_objects(metrics: Metrics) -> list[MetricWrapperBase]:
    return [value for value in vars(metrics).values() if isinstance(value, MetricWrapperBase)]


def test_every_metric_is_exposed() -> None:
    registry, metrics = every_metric_registry()
    exposed = {family.name for family in registry.collect()}
    defined = {metric._name for metric in metric_objects(metrics)}
    assert len(defined) >= 20
    assert defined <= exposed
    for metric in metric_objects(metrics):
        assert any(family.samples for family in metric.collect()), metric._name
    assert {"comet_guilds", "comet_users", "comet_channels"} <= exposed
    assert registry.get_sample_value("comet_users") == 12
    runtime = {
        "process_cpu_seconds",
        "comet_process_cpu_seconds",
        "process_resident_memory_bytes",
        "process_virtual_memory_bytes",
        "process_start_time_seconds",
        "process_threads",
        "comet_process_context_switches",
        "python_gc_objects_collected",
        "python_gc_objects_uncollectable",
        "python_gc_collections",
    }
    assert runtime <= exposed


def test_promtool_check_metrics_finds_nothing() -> None:
    promtool = require_binary("promtool")
    registry, _ = every_metric_registry()
    exposition = generate_latest(registry)
    result = subprocess.run(
        [promtool, "check", "metrics"], input=exposition, capture_output=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
    assert result.stdout == b"" and result.stderr == b""


def test_promtool_reports_a_bad_exposition() -> None:
    """The check above can fail: promtool does flag a lint problem."""
    promtool = require_binary("promtool")
    bad = b"# HELP requests Requests.\n# TYPE requests counter\nrequests 1\n"
    result = subprocess.run(
        [promtool, "check", "metrics"], input=bad, capture_output=True, timeout=60, check=False
    )
    assert result.returncode != 0
    assert b"_total" in result.stdout + result.stderr


@pytest.mark.parametrize("fmt", ["text", "openmetrics"])
def test_exposition_parses_and_has_no_nan(fmt: str) -> None:
    registry, _ = every_metric_registry()
    if fmt == "text":
        families = list(text_string_to_metric_families(generate_latest(registry).decode()))
    else:
        families = list(parse_openmetrics(generate_openmetrics(registry).decode()))
    values = [sample.value for family in families for sample in family.samples]
    assert values and all(not math.isnan(v) for v in values)
