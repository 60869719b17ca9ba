"""What one scrape of the bot costs, before and after (``python -m bench scrape``).

The registry is demo-like: every ``Metrics`` family, the runtime collectors, the real bot's commands
(read from its cog classes, with the kinds each has), one shard, the owner commands, some traffic
(successes, failures with exemplars, gateway events, log records).

1. Series and bytes: *before* (every command x both kinds x seven outcomes and a duration histogram,
   the old pre-initialisation, rendered by prometheus_client with ``_created``) against *after*
   (``success``/``error`` per command and kind, the rest on first use, no ``_created``), with the
   names registered as ``instrumentation/commands.py`` passes them today (bare names: both kinds)
   and as ``(name, kinds)`` pairs.
2. Render time of the *after* registry: prometheus_client's encoders, the same over the
   ``_created`` filter, and :class:`instrumentation.exposition.Exposition`, text and OpenMetrics,
   interleaved in one run; printed as ratios to prometheus_client's encoder.
"""

from __future__ import annotations

import gzip
import importlib
import inspect
import pkgutil
import statistics
import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

from bench.bench_instrumentation import table
from instrumentation.collectors import register_runtime_collectors
from instrumentation.command_catalogue import command_kinds
from instrumentation.exposition import Exposition, WithoutCreated, choose_format
from instrumentation.metrics import COMMAND_KINDS, COMMAND_OUTCOMES, UNKNOWN, Metrics

OPENMETRICS_ACCEPT = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"


def bot_commands() -> list[tuple[str, tuple[str, ...]]]:
    """The real bot's commands and their kinds, from its cog classes (no bot, no network)."""
    from discord.ext import commands

    import comet.features.cogs as cogs

    kinds: dict[str, set[str]] = {}
    for info in pkgutil.iter_modules(cogs.__path__):
        module = importlib.import_module(f"{cogs.__name__}.{info.name}")
        for obj in vars(module).values():
            if inspect.isclass(obj) and issubclass(obj, commands.Cog) and obj.__module__ == module.__name__:
                for command in obj.__cog_commands__:
                    walked = [
                        command,
                        *(command.walk_commands() if isinstance(command, commands.Group) else ()),
                    ]
                    for sub in walked:
                        kinds.setdefault(sub.qualified_name, set()).update(command_kinds(sub))
                for app_command in obj.__cog_app_commands__:
                    kinds.setdefault(app_command.qualified_name, set()).update(command_kinds(app_command))
    return [(name, tuple(k for k in COMMAND_KINDS if k in kinds[name])) for name in sorted(kinds)]


def legacy_preinitialise(metrics: Metrics, names: list[str]) -> None:
    """The pre-initialisation before this change: every command x kind x outcome, and histograms."""
    for command in [*names, UNKNOWN]:
        for kind in COMMAND_KINDS:
            metrics.command_duration.labels(command, kind)
            for outcome in COMMAND_OUTCOMES:
                metrics.commands.labels(command, kind, outcome)


def demo_like_registry(mode: str) -> CollectorRegistry:
    """``mode``: ``before``, ``names`` (bare names, as today), ``kinds`` ((name, kinds) pairs) or
    ``kinds+histograms`` (also a pre-initialised duration histogram per command and kind)."""
    registry = CollectorRegistry(auto_describe=True)
    metrics = Metrics.for_registry(registry)
    register_runtime_collectors(registry)
    found = bot_commands()
    names = [name for name, _ in found]
    if mode == "before":
        legacy_preinitialise(metrics, names)
    metrics.register_commands(names if mode == "names" else found)
    if mode == "kinds+histograms":  # the alternative not taken: a duration histogram per command and kind
        for name, kinds in found:
            for kind in kinds:
                metrics.command_duration.labels(name, kind)
    metrics.register_shards([0])
    metrics.register_owner_commands(["debug", "trace", "profile", "loglevel", "timeit"])
    metrics.set_build_info("0.1.0", "2.7.1")
    # Traffic: what a quiet demo minute leaves behind.
    for i in range(40):
        command = ("ping", "omikuji", "work", "oshi show")[i % 4]
        kind = COMMAND_KINDS[i % 2]
        metrics.command_duration.labels(command, kind).observe(0.01 * (i % 9))
        metrics.commands.labels(command, kind, "success").inc()
    for i in range(4):
        metrics.command_duration.labels("boom", "prefix").observe(1.2 + i, {"trace_id": f"{i:016x}"})
        metrics.commands.labels("boom", "prefix", "error").inc()
        metrics.command_errors.labels("boom", "RuntimeError" if i % 2 else "other").inc()
    metrics.commands.labels("timeout", "slash", "bad_argument").inc()
    metrics.commands.labels(UNKNOWN, "prefix", "not_found").inc()
    metrics.gateway_latency.labels("0").set(0.042)
    for event in ("READY", "GUILD_CREATE", "MESSAGE_CREATE", "INTERACTION_CREATE"):
        metrics.gateway_events.labels(event).inc(3)
    metrics.ready.set(1)
    metrics.shard_up.labels("0").set(1)
    for _ in range(50):
        metrics.loop_lag.observe(0.002)
    metrics.log_records.labels("INFO").inc(20)
    return registry


def count_series(exposition: bytes) -> int:
    return sum(1 for line in exposition.decode().splitlines() if line and not line.startswith("#"))


def bench_size() -> None:
    rows = []
    before_text = generate_latest(demo_like_registry("before"))
    before_om = generate_openmetrics(demo_like_registry("before"))
    rows.append(["before (prometheus_client)", before_text, before_om])
    for mode in ("names", "kinds", "kinds+histograms"):
        registry = demo_like_registry(mode)
        exposition = Exposition(registry)
        text = exposition.render(choose_format(""))
        om = exposition.render(choose_format(OPENMETRICS_ACCEPT))
        rows.append([f"after, register_commands({mode})", text, om])
    base_series, base_bytes = count_series(before_text), len(before_text)
    table(
        "1. demo-like registry: series and exposition bytes",
        ["variant", "series", "vs before", "text B", "vs before", "text gzip B", "OpenMetrics B"],
        [
            [
                label,
                f"{count_series(text):,}",
                f"{count_series(text) / base_series:.2f}",
                f"{len(text):,}",
                f"{len(text) / base_bytes:.2f}",
                f"{len(gzip.compress(text, compresslevel=1)):,}",
                f"{len(om):,}",
            ]
            for label, text, om in rows
        ],
    )


def _times_ms(func: Callable[[], object], repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        func()
        times.append((time.perf_counter() - start) * 1000)
    return times


def bench_render() -> None:
    registry = demo_like_registry("kinds")
    exposition = Exposition(registry)
    text_format, om_format = choose_format(""), choose_format(OPENMETRICS_ACCEPT)
    filtered = WithoutCreated(registry)
    before = demo_like_registry("before")
    variants: dict[str, Callable[[], object]] = {
        "text: before this change (series and _created)": lambda: generate_latest(before),
        "text: generate_latest": lambda: generate_latest(registry),
        "text: generate_latest(WithoutCreated)": lambda: generate_latest(filtered),
        "text: Exposition": lambda: exposition.render(text_format),
        "OpenMetrics: before this change (series and _created)": lambda: generate_openmetrics(before),
        "OpenMetrics: generate_latest": lambda: generate_openmetrics(registry),
        "OpenMetrics: generate_latest(WithoutCreated)": lambda: generate_openmetrics(filtered),
        "OpenMetrics: Exposition": lambda: exposition.render(om_format),
    }
    samples: dict[str, list[float]] = {label: [] for label in variants}
    for _ in range(30):  # interleaved, so drift hits every variant alike
        for label, func in variants.items():
            samples[label].extend(_times_ms(func, 5))
    median = {label: statistics.median(times) for label, times in samples.items()}
    rows = []
    for label in variants:
        base = median["text: generate_latest" if label.startswith("text") else "OpenMetrics: generate_latest"]
        rows.append(
            [label, f"{median[label]:.3f}", f"{min(samples[label]):.3f}", f"{median[label] / base:.2f}"]
        )
    series = count_series(exposition.render(text_format))
    before_series = count_series(generate_latest(before))
    table(
        f"2. render time, demo-like registry after ({series} series; before: {before_series:,}),"
        " 150 renders each, interleaved",
        ["renderer", "median ms", "min ms", "vs generate_latest, after's registry"],
        rows,
    )
    for fmt in ("text", "OpenMetrics"):
        ratio = median[f"{fmt}: Exposition"] / median[f"{fmt}: before this change (series and _created)"]
        print(f"  -> {fmt}: a scrape now takes {ratio:.3f}x the time it took before this change")


def main() -> None:
    bench_size()
    bench_render()


if __name__ == "__main__":
    main()
