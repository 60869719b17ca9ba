"""Everything the bot measures with, built once per process by the launcher and handed to the bot.

Metrics live outside the extensions (docs/design.md): a hot reload of a cog never re-creates anything
here, so no counter is lost and no ``Duplicated timeseries`` is raised.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import metadata

import discord
import psutil
from prometheus_client import CollectorRegistry
from prometheus_client.registry import Collector

from comet.core.config import Settings
from instrumentation.collectors import register_runtime_collectors
from instrumentation.loop import LoopLagMonitor
from instrumentation.memory import MemoryTracker
from instrumentation.metrics import Metrics
from instrumentation.redact import Scrubber
from instrumentation.response_time import ResponseTimeMonitor

#: Rolling window of the in-Discord ``health`` command (the last 100 commands).
RESPONSE_WINDOW = 100


def comet_version() -> str:
    try:
        return metadata.version("comet-bot")
    except metadata.PackageNotFoundError:
        return "0.0.0+local"


@dataclass
class Telemetry:
    registry: CollectorRegistry
    metrics: Metrics
    response_times: ResponseTimeMonitor
    memory: MemoryTracker
    loop_monitor: LoopLagMonitor
    scrubber: Scrubber
    #: The one ``psutil.Process`` shared by the memory tracker and the bot monitor (cpu_percent()).
    process: psutil.Process
    collectors: list[Collector] = field(default_factory=list)

    @classmethod
    def create(cls, registry: CollectorRegistry, settings: Settings) -> Telemetry:
        """Metrics on ``registry`` (once per registry), runtime collectors, monitors, the scrubber."""
        metrics = Metrics.for_registry(registry)
        metrics.set_build_info(comet_version(), discord.__version__)
        metrics.register_shards(settings.effective_shard_ids)
        collectors = register_runtime_collectors(registry)
        process = psutil.Process()
        return cls(
            registry=registry,
            metrics=metrics,
            response_times=ResponseTimeMonitor(window_size=RESPONSE_WINDOW),
            memory=MemoryTracker(process),
            loop_monitor=LoopLagMonitor(metrics),
            scrubber=Scrubber(settings.all_secrets),
            process=process,
            collectors=collectors,
        )
