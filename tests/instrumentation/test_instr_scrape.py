"""The cheap scrape: no ``_created`` series in our exposition (the host's registries keep theirs),
pre-initialisation limited to what can be non-zero, the cached-prefix renderer byte-identical to
prometheus_client's minus ``_created``, promtool-clean, OpenMetrics parseable with exemplars."""

from __future__ import annotations

import gc
import subprocess
from collections.abc import Iterable

import aiohttp
import discord
import prometheus_client
import pytest
from discord import app_commands
from discord.ext import commands
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Enum,
    Gauge,
    Histogram,
    Info,
    Summary,
    generate_latest,
)
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
    UnknownMetricFamily,
)
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector
from support import require_binary
from test_instr_exposition import every_metric_registry

from instrumentation.collectors import register_runtime_collectors
from instrumentation.command_catalogue import command_kinds, commands_with_kinds
from instrumentation.exposition import (
    OPENMETRICS,
    TEXT,
    Exposition,
    Format,
    WithoutCreated,
    choose_format,
    render_family,
)
from instrumentation.metrics import COMMAND_KINDS, PREINITIALISED_OUTCOMES, UNKNOWN, Metrics
from instrumentation.server import MetricsServer

OPENMETRICS_ACCEPT = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
TEXT_FORMAT = choose_format("")
OM_FORMAT = choose_format(OPENMETRICS_ACCEPT)


def sample_names(exposition: str) -> set[str]:
    names = set()
    for line in exposition.splitlines():
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            names.add(line.split()[2])
        elif line and not line.startswith("#"):
            names.add(line.split("{", 1)[0].split(" ", 1)[0])
    return names


def created_names(exposition: str) -> set[str]:
    return {name for name in sample_names(exposition) if name.endswith("_created")}


class _CustomFamilies(Collector):
    """Families from a custom collector (the generic path), one with a created timestamp."""

    def collect(self) -> Iterable[Metric]:
        counter = CounterMetricFamily("custom_jobs", "Jobs.", labels=["queue"], created=1_700_000_000.0)
        counter.add_metric(["a"], 3, created=1_700_000_000.0)
        histogram = HistogramMetricFamily("custom_wait_seconds", "Wait.", labels=["queue"])
        histogram.add_metric(["a"], [("0.1", 1), ("+Inf", 2)], sum_value=0.4)
        # Awkward text in a family written directly (not by prometheus_client's encoder).
        depth = GaugeMetricFamily(
            "custom_depth", 'Doc with a \\ backslash,\na newline and "quotes".', labels=["q"], unit="bytes"
        )
        depth.add_metric(['a "quoted" \\ value\nwith a newline'], float("-inf"))
        untyped = UnknownMetricFamily("custom_untyped", "Untyped (renamed in text).", value=2)
        return [counter, histogram, depth, untyped]


def mixed_registry(*, negative_buckets: bool = True) -> tuple[CollectorRegistry, Metrics]:
    """Every Metrics family after traffic, plus every other metric type and awkward label values;
    no process/GC collectors, whose values move between two renders. (prometheus_client's own
    OpenMetrics parser refuses a histogram with negative buckets, which has no ``_sum``.)"""
    registry = CollectorRegistry(auto_describe=True)
    m = Metrics.for_registry(registry)
    m.register_commands([("ping", ("prefix", "slash")), ("help", ("prefix",)), "legacy"])
    m.register_shards([0])
    m.set_build_info("0.1.0", "2.7.1")
    m.command_duration.labels("ping", "slash").observe(2.7, {"trace_id": "00000000000000ab"})
    m.command_duration.labels("ping", "prefix").observe(0.02)
    m.commands.labels("ping", "slash", "error").inc(1, {"trace_id": "00000000000000ab"})
    m.command_errors.labels("ping", "Forbidden").inc()
    m.loop_lag.observe(0.003)
    m.ready.set(1)
    Gauge(
        "odd_value", 'Help with a \\ backslash,\na newline and "quotes".', ["where"], registry=registry
    ).labels('a "quoted" \\ value\nwith a newline').set(float("inf"))
    Gauge("odd_function", "A callback gauge.", registry=registry).set_function(lambda: 41.5)
    Counter("odd_unlabelled", "An unlabelled counter.", registry=registry).inc(1e21)
    # Around the renderer's shortcut for floats in [0, 1e6): Go-style exponents start at 1e6, and a
    # reset counter holds the int 0, which prometheus_client still writes as 0.0.
    edges = Counter("odd_edges", "Values at the edges of number formatting.", ["at"], registry=registry)
    edges.labels("below").inc(999_999.5)
    edges.labels("million").inc(1e6)
    edges.labels("above").inc(1_234_567.0)
    edges.labels("tiny").inc(1e-7)
    edges.labels("reset").inc(5)
    edges.labels("reset").reset()
    Histogram("odd_large", "A sum past 1e6.", buckets=(1.0,), registry=registry).observe(2_500_000.0)
    if negative_buckets:
        Histogram("odd_negative", "No _sum.", buckets=(-1.0, 0.0, 1.0), registry=registry).observe(-2)
    Histogram("odd_unit", "With a unit.", unit="seconds", registry=registry).observe(0.2)
    Gauge("odd_empty", "Labelled, no child yet.", ["x"], registry=registry)
    Summary("odd_summary", "A summary.", ["x"], registry=registry).labels("1").observe(3)
    Info("odd_info", "An info.", registry=registry).info({"version": "1"})
    Enum("odd_state", "An enum.", states=["a", "b"], registry=registry).state("b")
    registry.register(_CustomFamilies())
    return registry, m


# -- no _created -------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", [TEXT_FORMAT, OM_FORMAT], ids=["text", "openmetrics"])
def test_our_exposition_has_no_created_series(fmt: Format) -> None:
    registry, _ = every_metric_registry()
    assert created_names(generate_latest(registry).decode())  # prometheus_client's has them
    exposition = Exposition(registry).render(fmt).decode()
    assert not created_names(exposition)
    assert "_created" not in exposition
    assert "comet_commands_total" in exposition


@pytest.mark.parametrize("fmt", [TEXT_FORMAT, OM_FORMAT], ids=["text", "openmetrics"])
def test_byte_identical_to_prometheus_client_without_created(fmt: Format) -> None:
    registry, m = mixed_registry()
    exposition = Exposition(registry)
    encoder = generate_latest if fmt is TEXT_FORMAT else generate_openmetrics
    assert exposition.render(fmt) == encoder(WithoutCreated(registry))
    # Values are read at every scrape (nothing but the line prefixes is cached), new children appear.
    m.commands.labels("ping", "prefix", "success").inc(7)
    m.commands.labels("help", "prefix", "cooldown").inc()
    m.command_duration.labels("help", "prefix").observe(0.4)
    rendered = exposition.render(fmt)
    assert rendered == encoder(WithoutCreated(registry))
    assert b'comet_commands_total{command="ping",kind="prefix",outcome="success"} 7.0' in rendered
    assert b'comet_commands_total{command="help",kind="prefix",outcome="cooldown"} 1.0' in rendered


def test_the_host_registries_keep_their_created_series() -> None:
    registry, _ = every_metric_registry()
    host = CollectorRegistry()
    Counter("host_requests", "The host bot's own counter.", registry=host).inc()
    default = Counter("comet_test_default_registry_probe", "In prometheus_client's REGISTRY.")
    try:
        default.inc()
        for fmt in (TEXT_FORMAT, OM_FORMAT):
            Exposition(registry).render(fmt)
        # Nothing process-wide was switched off: other registries still expose their _created.
        assert prometheus_client.metrics._use_created
        assert "host_requests_created" in generate_latest(host).decode()
        assert "host_requests_created" in generate_openmetrics(host).decode()
        assert "comet_test_default_registry_probe_created" in generate_latest(REGISTRY).decode()
        assert "comet_test_default_registry_probe_created" in generate_openmetrics(REGISTRY).decode()
    finally:
        REGISTRY.unregister(default)


def test_other_escapings_fall_back_to_prometheus_client_still_without_created() -> None:
    registry, _ = mixed_registry()
    allow_utf8 = choose_format("application/openmetrics-text;version=1.0.0;escaping=allow-utf-8")
    assert allow_utf8.kind == OPENMETRICS
    dots = choose_format("application/openmetrics-text;version=1.0.0;escaping=dots")
    assert dots.kind is None
    for fmt in (allow_utf8, dots):
        rendered = Exposition(registry).render(fmt)
        assert rendered == fmt.encoder(WithoutCreated(registry))
        assert "_created" not in rendered.decode()
    assert TEXT_FORMAT.kind == TEXT and OM_FORMAT.kind == OPENMETRICS


def test_name_filter_without_created() -> None:
    registry, _ = mixed_registry()
    exposition = Exposition(registry)
    text = exposition.render(TEXT_FORMAT, ["comet_commands_total", "comet_commands_created"]).decode()
    assert {f.name for f in text_string_to_metric_families(text)} == {"comet_commands"}
    assert "_created" not in text


# -- format checks ---------------------------------------------------------------------------------


def test_promtool_check_metrics_finds_nothing_in_our_text() -> None:
    promtool = require_binary("promtool")
    registry, _ = every_metric_registry()
    exposition = Exposition(registry).render(TEXT_FORMAT)
    result = subprocess.run(
        [promtool, "check", "metrics"], input=exposition, capture_output=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
    assert result.stdout == b"" and result.stderr == b""


def test_openmetrics_parses_and_keeps_the_exemplars() -> None:
    registry, _ = mixed_registry(negative_buckets=False)
    text = Exposition(registry).render(OM_FORMAT).decode()
    assert text.endswith("# EOF\n") and text.count("# EOF") == 1
    families = {family.name: family for family in parse_openmetrics(text)}
    buckets = [s for s in families["comet_command_duration_seconds"].samples if s.exemplar is not None]
    assert len(buckets) == 1
    (bucket,) = buckets
    assert bucket.name == "comet_command_duration_seconds_bucket" and bucket.labels["le"] == "3.0"
    assert bucket.labels["command"] == "ping" and bucket.labels["kind"] == "slash"
    assert bucket.exemplar.labels == {"trace_id": "00000000000000ab"} and bucket.exemplar.value == 2.7
    counted = [s for s in families["comet_commands"].samples if s.exemplar is not None]
    assert [s.exemplar.labels for s in counted] == [{"trace_id": "00000000000000ab"}]
    assert families["odd_unit_seconds"].unit == "seconds"
    assert not [s for family in families.values() for s in family.samples if s.name.endswith("_created")]


@pytest.mark.asyncio
async def test_the_server_serves_it(registry: CollectorRegistry, metrics: Metrics) -> None:
    metrics.register_commands([("ping", ("prefix",))])
    metrics.command_duration.labels("ping", "prefix").observe(1.5, {"trace_id": "00000000000000cd"})
    async with MetricsServer(registry, port=0) as server, aiohttp.ClientSession() as session:
        async with session.get(f"{server.url}/metrics") as response:
            text = await response.text()
        async with session.get(f"{server.url}/metrics", headers={"Accept": OPENMETRICS_ACCEPT}) as response:
            assert response.headers["Content-Type"] == OM_FORMAT.content_type
            om = await response.text()
    assert "comet_commands_total" in text and not created_names(text)
    assert "comet_commands_total" in om and not created_names(om)
    assert '# {trace_id="00000000000000cd"} 1.5' in om


# -- pre-initialisation ------------------------------------------------------------------------------


def command_series(registry: CollectorRegistry) -> set[tuple[str, str, str]]:
    (family,) = [f for f in registry.collect() if f.name == "comet_commands"]
    return {
        (s.labels["command"], s.labels["kind"], s.labels["outcome"])
        for s in family.samples
        if s.name == "comet_commands_total"
    }


def test_only_success_and_error_for_the_kinds_a_command_has(
    registry: CollectorRegistry, metrics: Metrics
) -> None:
    metrics.register_commands([("ping", ("prefix", "slash")), ("help", ["prefix"]), ("menu", ("slash",))])
    assert PREINITIALISED_OUTCOMES == ("success", "error")
    expected = {
        ("ping", "prefix", "success"), ("ping", "prefix", "error"),
        ("ping", "slash", "success"), ("ping", "slash", "error"),
        ("help", "prefix", "success"), ("help", "prefix", "error"),
        ("menu", "slash", "success"), ("menu", "slash", "error"),
        (UNKNOWN, "prefix", "not_found"), (UNKNOWN, "slash", "not_found"),
    }  # fmt: skip
    assert command_series(registry) == expected
    for series in expected:
        labels = dict(zip(("command", "kind", "outcome"), series, strict=True))
        assert registry.get_sample_value("comet_commands_total", labels) == 0
    # The histogram exists, at 0, for each command and kind it has (rate() cannot see the first
    # observation of a series it creates); the error classes appear on first use.
    histograms = {(s.labels["command"], s.labels["kind"]) for f in metrics.command_duration.collect()
                  for s in f.samples if s.name.endswith("_count")}  # fmt: skip
    assert histograms == {("ping", "prefix"), ("ping", "slash"), ("help", "prefix"), ("menu", "slash")}
    labels = {"command": "help", "kind": "prefix"}
    assert registry.get_sample_value("comet_command_duration_seconds_count", labels) == 0
    assert not [s for f in metrics.command_errors.collect() for s in f.samples]
    labels = {metrics.command_label(n) for n in ("ping", "help", "menu", "nope")}
    assert labels == {"ping", "help", "menu", UNKNOWN}


def test_a_bare_name_gets_both_kinds_and_kinds_accumulate(
    registry: CollectorRegistry, metrics: Metrics
) -> None:
    metrics.register_commands(["legacy", ("help", ("prefix",))])
    metrics.commands.labels("help", "prefix", "success").inc(2)
    metrics.register_commands([("help", ("slash",)), ("help", ("prefix",))])
    series = command_series(registry)
    assert {(c, k) for c, k, _ in series if c == "legacy"} == {("legacy", kind) for kind in COMMAND_KINDS}
    assert {(k, o) for c, k, o in series if c == "help"} == {
        (kind, outcome) for kind in COMMAND_KINDS for outcome in PREINITIALISED_OUTCOMES
    }
    labels = {"command": "help", "kind": "prefix", "outcome": "success"}
    assert registry.get_sample_value("comet_commands_total", labels) == 2
    with pytest.raises(ValueError, match="unknown command kind"):
        metrics.register_commands([("x", ("voice",))])


def test_kinds_from_discord_py_command_objects() -> None:
    async def callback(ctx: commands.Context[commands.Bot]) -> None: ...

    async def slash(interaction: discord.Interaction) -> None: ...

    async def menu(interaction: discord.Interaction, message: discord.Message) -> None: ...

    bot = commands.Bot(command_prefix="!", intents=discord.Intents.none(), help_command=None)
    bot.add_command(commands.Command(callback, name="plain"))
    hybrid = commands.HybridCommand(callback, name="both")
    bot.add_command(hybrid)  # adds its app command to the tree too
    bot.tree.add_command(app_commands.Command(name="only_slash", description="d", callback=slash))
    group = app_commands.Group(name="grp", description="d")
    group.add_command(app_commands.Command(name="sub", description="d", callback=slash))
    bot.tree.add_command(group)
    bot.tree.add_command(app_commands.ContextMenu(name="Quote", callback=menu))
    bot.tree.add_command(
        app_commands.Command(name="guildonly", description="d", callback=slash), guild=discord.Object(1)
    )
    assert command_kinds(hybrid) == ("prefix", "slash")
    assert command_kinds(group) == ()
    assert commands_with_kinds(bot) == [
        ("Quote", ("slash",)),
        ("both", ("prefix", "slash")),
        ("grp", ()),
        ("grp sub", ("slash",)),
        ("guildonly", ("slash",)),
        ("only_slash", ("slash",)),
        ("plain", ("prefix",)),
    ]
    registry = CollectorRegistry()
    metrics = Metrics.for_registry(registry)
    metrics.register_commands(commands_with_kinds(bot))
    series = command_series(registry)
    assert {(c, k) for c, k, _ in series} == {
        ("Quote", "slash"), ("both", "prefix"), ("both", "slash"), ("grp sub", "slash"),
        ("guildonly", "slash"), ("only_slash", "slash"), ("plain", "prefix"),
        (UNKNOWN, "prefix"), (UNKNOWN, "slash"),
    }  # fmt: skip
    assert metrics.command_label("grp") == "grp"  # a label, without series of its own


def test_the_metrics_families_take_the_cached_path() -> None:
    """The byte-identity tests would also pass on the fallback: check the fast path is taken."""
    registry, m = mixed_registry()
    exposition = Exposition(registry)
    exposition.render(OM_FORMAT)
    cached = exposition._families
    for metric in (m.commands, m.command_duration, m.ready, m.gateway_latency, m.loop_lag):
        by_kind = cached[metric]
        assert by_kind is not None and OPENMETRICS in by_kind, metric._name
    fallback = [c for c, by_kind in cached.items() if by_kind is None]
    assert {type(c).__name__ for c in fallback} >= {"Summary", "Info", "Enum", "_CustomFamilies"}


def test_an_unregistered_metric_leaves_the_cache() -> None:
    registry = CollectorRegistry()
    gauge = Gauge("temporary_value", "Temporary.", registry=registry)
    exposition = Exposition(registry)
    exposition.render(TEXT_FORMAT)
    assert len(exposition._families) == 1
    registry.unregister(gauge)
    del gauge
    gc.collect()
    assert len(exposition._families) == 0
    assert exposition.render(TEXT_FORMAT) == b""


APPLICATION_FAMILIES = ("comet_log_records", "comet_extension_reloads", "comet_automod_actions")


def _samples_of(registry: CollectorRegistry, names: Iterable[str]) -> int:
    return sum(len(family.samples) for family in registry.collect() if family.name in names)


def test_what_only_an_application_records_is_pre_initialised_by_the_application_alone() -> None:
    """A bot instrumented by instrument() never counts log records, extension loads or automod
    actions: zeros there could never move, so only the COMET bot (its telemetry) creates them."""
    registry = CollectorRegistry()
    metrics = Metrics.for_registry(registry)
    assert _samples_of(registry, APPLICATION_FAMILIES) == 0
    metrics.preinitialise_application_series()
    assert registry.get_sample_value("comet_log_records_total", {"level": "ERROR"}) == 0
    assert (
        registry.get_sample_value(
            "comet_extension_reloads_total", {"operation": "reload", "outcome": "error"}
        )
        == 0
    )
    assert registry.get_sample_value("comet_automod_actions_total", {"action": "timeout"}) == 0


def test_other_collectors_plain_families_are_written_directly_and_the_rest_by_the_encoder() -> None:
    registry, _ = mixed_registry()
    register_runtime_collectors(registry)
    families = {family.name: family for family in registry.collect()}
    out: list[str] = []
    for name in (
        "process_cpu_seconds",
        "python_gc_objects_collected",
        "custom_depth_bytes",
        "custom_wait_seconds",
    ):
        assert render_family(families[name], "openmetrics", out), name
    assert not render_family(families["odd_info"], "openmetrics", out)  # renamed in text
    assert not render_family(families["custom_untyped"], "text", out)  # "untyped" in text
