"""``make stack``: the offline demo watched by Debian's Prometheus and Alertmanager, without Docker.

    python -m comet.ops.stack [--prometheus-port 19090] [--alertmanager-port 19093] [--metrics-port 19108]
                              [--discord-webhook-url URL] [--webhook-url URL] [--scrape-interval 5s]

Starts ``python -m comet run`` (no token: the offline demo), renders the repository's configs with
:mod:`comet.ops.render` into ``.stack/rendered`` (the same step docker compose and the tests use),
then runs ``/usr/bin/prometheus`` (with exemplar storage: the slow and failed commands' ``trace_id``
exemplars, each resolving at the bot's ``/debug/invocations/<id>``) and
``/usr/bin/prometheus-alertmanager`` on their own ports with their own data directories under
``.stack/`` (Alertmanager with ``--cluster.listen-address=`` empty: no gossip port). Prints the URLs;
Ctrl-C stops everything.

Without ``--discord-webhook-url`` the alerts go to a webhook of the demo's own emulator (channel
``#alerts`` of the demo guild, created through the emulator's REST API as a Discord client would), so
they show up in the demo's "Discord": ``GET <emulator>/_control/channels/<id>/messages``. The demo's
traffic knobs (COMET_DEMO_RATE, _SLOW_RATIO, _SLOW_SECONDS, _FAIL_RATIO) pass through from the
environment; any other COMET_* setting (the token above all) does not.

This module is the command. The stack is :class:`comet.ops.local_stack.Stack` (imported in
:func:`main`: rendering needs PyYAML, the ops extra, and without it the command says so in one
line); its settings :mod:`comet.ops.stack_config`, its child processes :mod:`comet.ops.processes`
and :mod:`comet.ops.demo_process`. The ops tests run this command itself, with free ports and 1 s
intervals; ``metric_table --demo`` uses :class:`~comet.ops.demo_process.DemoProcess` alone.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from comet.ops.extras import MissingExtra, report
from comet.ops.processes import StackError
from comet.ops.render_args import add_render_arguments, durations_from_args
from comet.ops.render_options import RenderOptions
from comet.ops.rule_transforms import RenderError
from comet.ops.stack_config import StackSettings


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
    parser = build_parser()
    args = parser.parse_args(argv)
    settings = settings_from_args(args)
    try:
        settings.render.validate()  # a bad URL or duration is a usage error, before anything starts
    except RenderError as exc:
        parser.error(str(exc))
    try:
        from comet.ops.local_stack import Stack
    except MissingExtra as exc:
        return report("stack", exc)
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
