"""The stack itself: the offline demo, then the rendered configs, then Alertmanager and Prometheus.

Started in that order because each needs the one before (the configs name the demo's ports and,
without a real Discord webhook, a webhook created on the demo's emulator; Prometheus sends to
Alertmanager) and stopped together. Rendering needs PyYAML: importing this module without the ops
extra raises :class:`comet.ops.extras.MissingExtra`.
"""

from __future__ import annotations

from comet.ops.demo_process import DemoProcess, create_emulator_webhook
from comet.ops.local_http import answers_200
from comet.ops.processes import ManagedProcess, StartStopContext, wait_until
from comet.ops.rendering import Rendered, render
from comet.ops.stack_config import PROMETHEUS_FEATURE_FLAGS, StackSettings


class Stack(StartStopContext):
    """The offline demo, Prometheus and Alertmanager, started in order and stopped together."""

    def __init__(self, settings: StackSettings) -> None:
        self.settings = settings
        self.workdir = settings.workdir.resolve()
        self.demo = DemoProcess(
            metrics_port=settings.metrics_port,
            workdir=self.workdir / "demo",
            emulator_port=settings.emulator_port,
            demo_env=settings.demo_env,
        )
        self.prometheus: ManagedProcess | None = None
        self.alertmanager: ManagedProcess | None = None
        self.rendered: Rendered | None = None
        self.discord_webhook_url: str | None = None

    @property
    def prometheus_url(self) -> str:
        return self.settings.prometheus_url

    @property
    def alertmanager_url(self) -> str:
        return self.settings.alertmanager_url

    def urls(self) -> dict[str, str]:
        return {
            "bot /metrics": f"{self.demo.metrics_url}/metrics",
            "bot /healthz": f"{self.demo.metrics_url}/healthz",
            "bot /readyz": f"{self.demo.metrics_url}/readyz",
            # An exemplar's trace_id (Grafana's latency dots, Prometheus' query_exemplars) goes here;
            # served without credentials because the demo listens on 127.0.0.1 only.
            "bot /debug": f"{self.demo.metrics_url}/debug/invocations/<trace_id>",
            "emulator": self.demo.emulator_url,
            "prometheus": self.prometheus_url,
            "alerts": f"{self.prometheus_url}/alerts",
            "alertmanager": self.alertmanager_url,
        }

    def start(self, *, ready_timeout: float = 60.0) -> None:
        try:
            self._start(ready_timeout)
        except BaseException:
            self.stop()
            raise

    def _start(self, ready_timeout: float) -> None:
        s = self.settings
        self.demo.start()
        self.demo.wait_ready(ready_timeout)
        self.discord_webhook_url = s.render.discord_webhook_url
        if self.discord_webhook_url is None:  # alerts go to the demo's own #alerts channel
            self.discord_webhook_url = self._demo_channel_webhook()
        self.rendered = render(s.render_options(self.discord_webhook_url), self.workdir / "rendered")
        self.alertmanager = ManagedProcess(
            "alertmanager",
            [
                s.alertmanager_bin,
                f"--config.file={self.rendered.alertmanager_config}",
                f"--storage.path={self.workdir / 'alertmanager-data'}",
                f"--web.listen-address=127.0.0.1:{s.alertmanager_port}",
                "--cluster.listen-address=",
            ],
            log_path=self.workdir / "alertmanager.log",
        )
        self.prometheus = ManagedProcess(
            "prometheus",
            [
                s.prometheus_bin,
                f"--config.file={self.rendered.prometheus_config}",
                f"--storage.tsdb.path={self.workdir / 'prometheus-data'}",
                f"--web.listen-address=127.0.0.1:{s.prometheus_port}",
                "--web.enable-lifecycle",
                *PROMETHEUS_FEATURE_FLAGS,
            ],
            log_path=self.workdir / "prometheus.log",
        )
        self.alertmanager.start()
        self.prometheus.start()
        for process, url in (
            (self.alertmanager, self.alertmanager_url),
            (self.prometheus, self.prometheus_url),
        ):
            wait_until(
                answers_200(f"{url}/-/ready"),
                timeout=ready_timeout,
                what=f"{process.name} at {url}/-/ready",
                alive=process.problem,
            )

    @property
    def demo_alerts_channel(self) -> int:
        # Imported when asked: the demo guild loads the emulator's models (a quarter second), which
        # only the default, emulator-webhook path needs.
        from comet.core.demo_guild import DEMO

        return DEMO.alerts_channel_id

    def _demo_channel_webhook(self) -> str | None:
        return create_emulator_webhook(self.demo.emulator_url, self.demo_alerts_channel)

    def problem(self) -> str | None:
        """None while every process runs; else what died."""
        for process in (self.demo.process, self.prometheus, self.alertmanager):
            if process is not None and process.process is not None:
                problem = process.problem()
                if problem:
                    return problem
        return None

    def stop(self) -> None:
        # Prometheus first (it sends to Alertmanager and scrapes the bot), the demo last.
        for process in (self.prometheus, self.alertmanager):
            if process is not None:
                process.stop()
        self.demo.stop()
