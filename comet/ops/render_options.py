"""What a rendering may vary (:class:`RenderOptions`), and where its sources are.

Plain data and checks, no YAML: the command lines of ``render`` and ``stack`` build their parsers
from these defaults even when the ops extra is not installed (``--help`` still works).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from comet.ops.rule_transforms import RenderError, parse_duration_ms
from comet.ops.runbooks import DEFAULT_GRAFANA_URL

HOST_PORT = re.compile(r"^[A-Za-z0-9_.\-]+:\d{1,5}$|^\[[0-9A-Fa-f:.]+\]:\d{1,5}$")

#: The sources, relative to the checkout (RenderOptions.source_dir).
PROMETHEUS_SOURCE = "prometheus.yml"
ALERTMANAGER_SOURCE = "alerting/alertmanager.yml"
RULES_SOURCE = "alerting/rules"
DOCS_SOURCE = "docs/operations.md"
TEMPLATES_SOURCE = "alerting/templates"

#: The RenderOptions fields that are Prometheus durations (validated, and one flag each).
DURATION_OPTIONS = (
    "scrape_interval",
    "evaluation_interval",
    "group_wait",
    "group_interval",
    "repeat_interval",
    "critical_group_wait",
    "critical_repeat_interval",
)


def default_source_dir() -> Path:
    """The repository checkout this module lives in, else the working directory (an installed image)."""
    repo = Path(__file__).resolve().parents[2]
    return repo if (repo / PROMETHEUS_SOURCE).is_file() else Path.cwd()


@dataclass(frozen=True)
class RenderOptions:
    """Everything a rendering may vary. Defaults are the docker compose network's names."""

    bot_targets: tuple[str, ...] = ("bot:9108",)
    shard_targets: tuple[str, ...] = ()
    shard_target_files: tuple[str, ...] = ("targets/*.yml",)
    prometheus_targets: tuple[str, ...] = ("localhost:9090",)
    alertmanagers: tuple[str, ...] = ("alertmanager:9093",)
    discord_webhook_url: str | None = None
    webhook_url: str | None = None
    #: Where the always-firing Watchdog goes, every minute (an external dead man's switch).
    deadmans_switch_url: str | None = None
    scrape_interval: str = "15s"
    evaluation_interval: str = "15s"
    group_wait: str = "30s"
    group_interval: str = "5m"
    repeat_interval: str = "4h"
    critical_group_wait: str = "10s"
    critical_repeat_interval: str = "1h"
    max_alert_for: str | None = None
    #: The bot's /metrics credentials (COMET_METRICS_BASIC_AUTH, user:password), for the bot's jobs.
    metrics_basic_auth: tuple[str, str] | None = field(default=None, repr=False)
    #: Grafana's root URL as operators open it: every alert's runbook_url points there.
    grafana_url: str = DEFAULT_GRAFANA_URL
    #: Render even with no integration for critical alerts (they then reach nobody).
    allow_no_receiver: bool = False
    #: Override the SLO targets (alerting/rules/slo.yml's constants), e.g. 0.999.
    slo_availability_target: float | None = None
    slo_latency_target: float | None = None
    shared_read: bool = False
    source_dir: Path = field(default_factory=default_source_dir)

    def validate(self) -> None:
        """Raise RenderError for a bad target, duration or URL (before anything is written)."""
        for target in (*self.bot_targets, *self.shard_targets, *self.prometheus_targets, *self.alertmanagers):
            if not HOST_PORT.match(target):
                raise RenderError(f"target {target!r}: expected host:port")
        for name in DURATION_OPTIONS:
            parse_duration_ms(getattr(self, name), what=name)
        for what, url in (
            ("discord webhook URL", self.discord_webhook_url),
            ("webhook URL", self.webhook_url),
            ("dead man's switch URL", self.deadmans_switch_url),
        ):
            if url is not None and not re.match(r"^https?://[^\s]+$", url):
                raise RenderError(f"{what}: expected an http:// or https:// URL")
