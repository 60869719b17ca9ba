"""What the bot measures with besides the instrumentation, built once per process by the launcher and
handed to the bot: the metric families (with COMET's build info and shard labels), the memory
tracker, the scrubber. The command, gateway, REST and loop instrumentation, the runtime collectors
and the metrics server are ``instrumentation.instrument(bot)``'s (see the launcher).

Metrics live outside the extensions (docs/design.md): a hot reload of a cog never re-creates anything
here, so no counter is lost and no ``Duplicated timeseries`` is raised.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata

import discord
import psutil
from prometheus_client import CollectorRegistry

from comet.core.config import Settings
from instrumentation.memory import MemoryTracker
from instrumentation.metrics import Metrics
from instrumentation.redact import Scrubber


def comet_version() -> str:
    try:
        return metadata.version("comet-bot")
    except metadata.PackageNotFoundError:
        return "0.0.0+local"


@dataclass
class Telemetry:
    registry: CollectorRegistry
    metrics: Metrics
    memory: MemoryTracker
    scrubber: Scrubber

    @classmethod
    def create(cls, registry: CollectorRegistry, settings: Settings) -> Telemetry:
        """Metrics on ``registry`` (once per registry), the memory tracker, the scrubber."""
        metrics = Metrics.for_registry(registry)
        metrics.set_build_info(comet_version(), discord.__version__)
        metrics.preinitialise_application_series()
        metrics.register_shards(settings.effective_shard_ids)
        return cls(
            registry=registry,
            metrics=metrics,
            memory=MemoryTracker(psutil.Process()),
            scrubber=Scrubber(settings.all_secrets),
        )
