"""What one local stack is: its ports, directories, binaries and rendering choices, and its URLs.

Plain data (no YAML, no processes), so the command line is built from these defaults and
``--help`` works before anything of the ops extra is imported.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from comet.ops.local_http import local_url
from comet.ops.render_options import RenderOptions

#: Debian's paths, used when the programs are not on PATH.
PROMETHEUS_BIN = "/usr/bin/prometheus"
ALERTMANAGER_BIN = "/usr/bin/prometheus-alertmanager"
#: Feature flags of every Prometheus the project runs (this stack, the tests', docker-compose.yml's):
#: exemplar storage keeps the ``trace_id`` exemplars the bot puts on its duration buckets, which
#: Prometheus otherwise drops (with it, Prometheus also asks the bot for OpenMetrics, which carries them).
PROMETHEUS_FEATURE_FLAGS = ("--enable-feature=exemplar-storage",)


@dataclass
class StackSettings:
    """Ports, directories and rendering choices of one stack."""

    workdir: Path = field(default_factory=lambda: Path(".stack"))
    prometheus_port: int = 19090
    alertmanager_port: int = 19093
    metrics_port: int = 19108
    emulator_port: int | None = None  # None: a free port
    demo_env: Mapping[str, str] = field(default_factory=dict)
    #: Options for comet.ops.render; targets and ports are filled in by the stack.
    render: RenderOptions = field(
        default_factory=lambda: RenderOptions(scrape_interval="5s", evaluation_interval="5s")
    )
    prometheus_bin: str = field(default_factory=lambda: shutil.which("prometheus") or PROMETHEUS_BIN)
    alertmanager_bin: str = field(
        default_factory=lambda: shutil.which("prometheus-alertmanager") or ALERTMANAGER_BIN
    )

    @property
    def prometheus_url(self) -> str:
        return local_url(self.prometheus_port)

    @property
    def alertmanager_url(self) -> str:
        return local_url(self.alertmanager_port)

    def render_options(self, discord_webhook_url: str | None) -> RenderOptions:
        """``render`` with the targets of this stack's own processes (every one on 127.0.0.1)."""
        return replace(
            self.render,
            bot_targets=(f"127.0.0.1:{self.metrics_port}",),
            prometheus_targets=(f"127.0.0.1:{self.prometheus_port}",),
            alertmanagers=(f"127.0.0.1:{self.alertmanager_port}",),
            discord_webhook_url=discord_webhook_url,
        )
