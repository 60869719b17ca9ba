"""``make stack``: the offline demo watched by Debian's Prometheus and Alertmanager, without Docker.

    python -m comet.ops.stack [--prometheus-port 19090] [--alertmanager-port 19093] [--metrics-port 19108]
                              [--discord-webhook-url URL] [--webhook-url URL] [--scrape-interval 5s]

Starts ``python -m comet run`` (no token: the offline demo), renders the repository's configs with
:mod:`comet.ops.render` into ``.stack/rendered`` (the same step docker compose and the tests use),
then runs ``/usr/bin/prometheus`` and ``/usr/bin/prometheus-alertmanager`` on their own ports with
their own data directories under ``.stack/`` (Alertmanager with ``--cluster.listen-address=``
empty: no gossip port). Prints the URLs; Ctrl-C stops everything.

Without ``--discord-webhook-url`` the alerts go to a webhook of the demo's own emulator (channel
``#alerts`` of the demo guild, created through the emulator's REST API as a Discord client would), so
they show up in the demo's "Discord": ``GET <emulator>/_control/channels/<id>/messages``. The demo's
traffic knobs (COMET_DEMO_RATE, _SLOW_RATIO, _SLOW_SECONDS, _FAIL_RATIO) pass through from the
environment; any other COMET_* setting (the token above all) does not.

The ops tests run this command itself, with free ports and 1 s intervals; ``metric_table --demo``
uses :class:`DemoProcess` alone.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

from comet.ops.render import Rendered, RenderOptions, add_render_arguments, durations_from_args, render

PROMETHEUS_BIN = "/usr/bin/prometheus"
ALERTMANAGER_BIN = "/usr/bin/prometheus-alertmanager"


class StackError(RuntimeError):
    """A process of the stack did not start; the message carries the end of its log."""


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def local_url(port: int) -> str:
    """The base URL of a process of the stack (every one listens on 127.0.0.1)."""
    return f"http://127.0.0.1:{port}"


def http_get(url: str, timeout: float = 3.0, headers: Mapping[str, str] | None = None) -> tuple[int, bytes]:
    """Status and body of a GET; (0, b"") when nothing answers."""
    request = urllib.request.Request(url, headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body: bytes = response.read()
            return response.status, body
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (urllib.error.URLError, OSError):
        return 0, b""


def http_post_json(url: str, payload: Any, headers: Mapping[str, str] | None = None) -> tuple[int, Any]:
    data = json.dumps(payload).encode()
    request = urllib.request.Request(
        url, data=data, method="POST", headers={"Content-Type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=5.0) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def answers_200(url: str) -> Callable[[], bool]:
    """A predicate: does ``url`` answer 200 now?"""
    return lambda: http_get(url)[0] == 200


def wait_until(
    predicate: Callable[[], bool],
    *,
    timeout: float,
    interval: float = 0.2,
    what: str = "condition",
    alive: Callable[[], str | None] | None = None,
) -> None:
    """Poll ``predicate`` until true; :class:`StackError` at the deadline or once ``alive`` reports death."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return
        if alive is not None:
            problem = alive()
            if problem:
                raise StackError(f"while waiting for {what}: {problem}")
        if time.monotonic() >= deadline:
            raise StackError(f"timed out after {timeout:g} s waiting for {what}")
        # Polling a remote process' HTTP state: there is no event to wait on.
        time.sleep(interval)


class StartStopContext:
    """``with thing:`` starts it and stops it on the way out, whatever happened."""

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> object:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class ManagedProcess:
    """A child process with its output in a log file, stopped with SIGTERM then SIGKILL."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("wb")
        # Own session: a Ctrl-C in the terminal reaches only the stack, which stops children in order.
        self.process = subprocess.Popen(
            self.argv,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=self.env,
            cwd=self.cwd,
            start_new_session=True,
        )

    def problem(self) -> str | None:
        """None while running; else why it is not, with the end of its log."""
        if self.process is None:
            return f"{self.name} was not started"
        code = self.process.poll()
        if code is None:
            return None
        return f"{self.name} exited with status {code}; end of {self.log_path}:\n{self.log_tail()}"

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 10.0) -> int | None:
        process, self.process = self.process, None
        code = None
        if process is not None:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout)
            code = process.returncode
        if self._log is not None:
            self._log.close()
            self._log = None
        return code


#: Settings passed through from the caller's environment: the demo's traffic knobs (so that, e.g.,
#: ``COMET_DEMO_SLOW_RATIO=0.6 make stack`` shows CometSlowResponses firing). Nothing else of COMET_*.
DEMO_KNOBS = ("COMET_DEMO_RATE", "COMET_DEMO_SLOW_RATIO", "COMET_DEMO_SLOW_SECONDS", "COMET_DEMO_FAIL_RATIO")


def demo_environment(base: Mapping[str, str], overrides: Mapping[str, str]) -> dict[str, str]:
    """The parent's environment without COMET_* (no token: always the offline demo) but the demo
    knobs, plus ``overrides``."""
    env = {k: v for k, v in base.items() if not k.startswith("COMET_") or k in DEMO_KNOBS}
    env.update(overrides)
    return env


class DemoProcess(StartStopContext):
    """``python -m comet run`` without a token: emulator + bot + synthetic traffic, in a child process."""

    def __init__(
        self,
        *,
        metrics_port: int,
        workdir: Path,
        emulator_port: int | None = None,
        demo_env: Mapping[str, str] | None = None,
        python: str = sys.executable,
    ) -> None:
        self.metrics_port = metrics_port
        self.emulator_port = emulator_port if emulator_port is not None else free_port()
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        env = demo_environment(
            os.environ,
            {
                "COMET_METRICS_HOST": "127.0.0.1",
                "COMET_METRICS_PORT": str(metrics_port),
                "COMET_EMULATOR_PORT": str(self.emulator_port),
                "COMET_DATABASE_PATH": str(workdir / "comet.db"),
                "COMET_LOG_PATH": str(workdir / "comet.log"),
                **(demo_env or {}),
            },
        )
        env["PYTHONUNBUFFERED"] = "1"
        # A missing --env-file is ignored: a developer's .env (and its token) stays out of the demo.
        argv = [python, "-m", "comet", "--env-file", str(workdir / "no-such.env"), "run"]
        self.process = ManagedProcess("comet demo", argv, log_path=workdir / "demo.out", env=env, cwd=workdir)

    @property
    def metrics_url(self) -> str:
        return local_url(self.metrics_port)

    @property
    def emulator_url(self) -> str:
        return local_url(self.emulator_port)

    def start(self) -> None:
        self.process.start()

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Until ``/readyz`` says healthy (the bot is logged in to the emulator)."""
        wait_until(
            answers_200(f"{self.metrics_url}/readyz"),
            timeout=timeout,
            what=f"the demo's {self.metrics_url}/readyz",
            alive=self.process.problem,
        )

    def wait_for_traffic(self, timeout: float = 60.0, commands: int = 1) -> None:
        """Until ``/metrics`` counts at least ``commands`` finished commands."""

        def enough() -> bool:
            status, body = http_get(f"{self.metrics_url}/metrics")
            return status == 200 and commands_counted(body.decode()) >= commands

        wait_until(enough, timeout=timeout, what="synthetic traffic in /metrics", alive=self.process.problem)

    def stop(self) -> int | None:
        return self.process.stop()


def commands_counted(exposition: str) -> float:
    """Sum of ``comet_commands_total`` in a text exposition."""
    total = 0.0
    for line in exposition.splitlines():
        if line.startswith("comet_commands_total{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def create_emulator_webhook(emulator_url: str, channel_id: int, name: str = "Alertmanager") -> str | None:
    """A webhook URL on the demo's emulator, made the way a Discord client would (REST); None if unsupported.

    Returned in Alertmanager's ``https://discord.com/api/webhooks/ID/TOKEN`` shape (no version).
    """
    status, body = http_post_json(
        f"{emulator_url}/api/v10/channels/{channel_id}/webhooks",
        {"name": name},
        headers={"Authorization": "Bot stack-local.token.comet"},
    )
    if status not in (200, 201) or not isinstance(body, dict) or "id" not in body or "token" not in body:
        return None
    return f"{emulator_url}/api/webhooks/{body['id']}/{body['token']}"


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
        return local_url(self.settings.prometheus_port)

    @property
    def alertmanager_url(self) -> str:
        return local_url(self.settings.alertmanager_port)

    def urls(self) -> dict[str, str]:
        return {
            "bot /metrics": f"{self.demo.metrics_url}/metrics",
            "bot /healthz": f"{self.demo.metrics_url}/healthz",
            "bot /readyz": f"{self.demo.metrics_url}/readyz",
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
        options = s.render
        self.discord_webhook_url = options.discord_webhook_url
        if self.discord_webhook_url is None:  # alerts go to the demo's own #alerts channel
            self.discord_webhook_url = self._demo_channel_webhook()
        self.rendered = render(
            replace(
                options,
                bot_targets=(f"127.0.0.1:{s.metrics_port}",),
                prometheus_targets=(f"127.0.0.1:{s.prometheus_port}",),
                alertmanagers=(f"127.0.0.1:{s.alertmanager_port}",),
                discord_webhook_url=self.discord_webhook_url,
            ),
            self.workdir / "rendered",
        )
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


def build_parser() -> argparse.ArgumentParser:
    d = StackSettings()
    parser = argparse.ArgumentParser(prog="python -m comet.ops.stack", description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=d.workdir, help="data and logs (default .stack)")
    parser.add_argument("--prometheus-port", type=int, default=d.prometheus_port)
    parser.add_argument("--alertmanager-port", type=int, default=d.alertmanager_port)
    parser.add_argument("--metrics-port", type=int, default=d.metrics_port, help="the demo bot's /metrics")
    parser.add_argument("--emulator-port", type=int, default=None, help="the demo's emulator (default: free)")
    add_render_arguments(
        parser,
        targets=False,  # the stack points Prometheus at its own processes
        defaults={
            "scrape_interval": d.render.scrape_interval,
            "evaluation_interval": d.render.evaluation_interval,
            "group_wait": "10s",
            "group_interval": "1m",
            "repeat_interval": "1h",
            "critical_group_wait": None,  # None: the same as --group-wait
        },
        help_texts={
            "--discord-webhook-url": "a real ops channel (default: the demo's #alerts)",
            "--webhook-url": "a generic webhook receiver for every alert",
            "--max-alert-for": "cap the alerts' `for` so they fire within the demo (e.g. 10s)",
        },
    )
    return parser


def settings_from_args(args: argparse.Namespace) -> StackSettings:
    durations = durations_from_args(args)
    if durations["critical_group_wait"] is None:
        durations["critical_group_wait"] = args.group_wait
    render_options = RenderOptions(
        discord_webhook_url=args.discord_webhook_url,
        webhook_url=args.webhook_url,
        deadmans_switch_url=args.deadmans_switch_url,
        max_alert_for=args.max_alert_for,
        allow_no_receiver=bool(args.allow_no_receiver),
        slo_availability_target=args.slo_availability_target,
        slo_latency_target=args.slo_latency_target,
        **durations,
    )
    return StackSettings(
        workdir=args.workdir,
        prometheus_port=args.prometheus_port,
        alertmanager_port=args.alertmanager_port,
        metrics_port=args.metrics_port,
        emulator_port=args.emulator_port,
        render=render_options,
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = settings_from_args(args)
    for binary in (settings.prometheus_bin, settings.alertmanager_bin):
        if not os.access(binary, os.X_OK):
            print(
                f"stack: {binary} not found; install it with: "
                "apt-get install --no-install-recommends prometheus prometheus-alertmanager",
                file=sys.stderr,
            )
            return 2

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # SIGTERM while starting: stop what was started, like Ctrl-C

    signal.signal(signal.SIGTERM, interrupt)
    stack = Stack(settings)
    print(f"starting the offline demo, Prometheus and Alertmanager (logs in {stack.workdir}) ...", flush=True)
    try:
        stack.start()  # stops whatever it started if it fails or is interrupted
    except StackError as exc:
        print(f"stack: {exc}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        print("stopped.", flush=True)
        return 130
    stopped = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stopped.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        for name, url in stack.urls().items():
            print(f"{name:>14}: {url}", flush=True)
        if stack.discord_webhook_url and settings.render.discord_webhook_url is None:
            channel_url = f"{stack.demo.emulator_url}/_control/channels/{stack.demo_alerts_channel}/messages"
            print(f"{'#alerts':>14}: {channel_url} (Alertmanager's Discord messages)", flush=True)
        print("Ctrl-C stops everything.", flush=True)
        while not stopped.wait(1.0):
            problem = stack.problem()
            if problem:
                print(f"stack: {problem}", file=sys.stderr, flush=True)
                return 1
        return 0
    finally:
        print("stopping ...", flush=True)
        stack.stop()
        print("stopped.", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
