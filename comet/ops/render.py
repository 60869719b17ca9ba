"""Render the ops configs for one deployment: the checked-in ones with its targets, timings and secrets.

``prometheus.yml``, ``alerting/alertmanager.yml`` and ``alerting/rules/*.yml`` are valid as they
stand (compose defaults). Prometheus 2.42 and Alertmanager 0.25 do not expand environment
variables, so this step writes a self-contained directory that the programs read::

    OUT/prometheus.yml      targets, intervals and the rule path overridden (comet.ops.config_overrides)
    OUT/rules/*.yml         the rule files (copied; ``--max-alert-for``, ``--slo-*-target`` change them)
    OUT/targets/shards.yml  file_sd targets given with --shard-target (if any)
    OUT/alertmanager.yml    timings, and the integrations whose webhook URLs are given (mode 0600)
    OUT/templates/*.tmpl    Alertmanager's notification templates
    OUT/secrets/scrape_password  the bot's /metrics password (``COMET_METRICS_BASIC_AUTH``, else the
                            ``--metrics-auth-file`` compose's ``credentials`` step wrote), if any

docker compose (its ``render`` service), ``make stack`` and the tests all call it, so what the tests
prove is what users run. Run ``python -m comet.ops.render --help`` for the options.

This module is the command; the options are :mod:`comet.ops.render_options` and
:mod:`comet.ops.render_args`, the writing :mod:`comet.ops.rendering` (which needs PyYAML, the ops
extra: imported in :func:`main` so that its absence is one line naming the install command).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from comet.ops.extras import MissingExtra, report
from comet.ops.render_args import (
    DEADMANS_SWITCH_URL_ENV,
    DISCORD_URL_ENV,
    METRICS_BASIC_AUTH_ENV,
    WEBHOOK_URL_ENV,
    add_render_arguments,
    allow_no_receiver,
    durations_from_args,
    metrics_basic_auth,
)
from comet.ops.render_options import RenderOptions, default_source_dir
from comet.ops.rule_transforms import RenderError
from comet.ops.scrape_credentials import read_credentials


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m comet.ops.render",
        description="Render prometheus.yml, the rule files and alertmanager.yml into one directory.",
    )
    parser.add_argument("--out", required=True, type=Path, help="directory to write (created if needed)")
    parser.add_argument("--source-dir", type=Path, default=None, help="checkout holding the sources")
    add_render_arguments(parser)
    parser.add_argument(
        "--metrics-auth-file",
        type=Path,
        metavar="FILE",
        help=f"the bot's /metrics credentials (user:password, from comet.ops.scrape_credentials) "
        f"when ${METRICS_BASIC_AUTH_ENV} is not set",
    )
    parser.add_argument(
        "--shared-read",
        action="store_true",
        help="make alertmanager.yml world-readable (containers reading it run as another user)",
    )
    return parser


def options_from_args(args: argparse.Namespace, environ: Mapping[str, str] = os.environ) -> RenderOptions:
    d = RenderOptions()

    def url(value: str | None, env: str) -> str | None:
        chosen = value if value is not None else environ.get(env)
        return chosen or None  # an empty string (compose's ${VAR:-}) means "not configured"

    return RenderOptions(
        bot_targets=tuple(args.bot_target or d.bot_targets),
        shard_targets=tuple(args.shard_target or ()),
        shard_target_files=tuple(args.shard_target_files or d.shard_target_files),
        prometheus_targets=(args.prometheus,) if args.prometheus else d.prometheus_targets,
        alertmanagers=tuple(args.alertmanager or d.alertmanagers),
        discord_webhook_url=url(args.discord_webhook_url, DISCORD_URL_ENV),
        webhook_url=url(args.webhook_url, WEBHOOK_URL_ENV),
        deadmans_switch_url=url(args.deadmans_switch_url, DEADMANS_SWITCH_URL_ENV),
        max_alert_for=args.max_alert_for,
        allow_no_receiver=allow_no_receiver(args.allow_no_receiver, environ),
        grafana_url=args.grafana_url,
        metrics_basic_auth=scrape_auth(args.metrics_auth_file, environ),
        slo_availability_target=args.slo_availability_target,
        slo_latency_target=args.slo_latency_target,
        shared_read=args.shared_read,
        source_dir=args.source_dir or default_source_dir(),
        **durations_from_args(args),
    )


def scrape_auth(path: Path | None, environ: Mapping[str, str]) -> tuple[str, str] | None:
    """The bot's /metrics credentials: COMET_METRICS_BASIC_AUTH if set, else the file if given."""
    given = metrics_basic_auth(environ)
    if given is None and path is not None:
        return read_credentials(path)
    return given


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        from comet.ops.rendering import render
    except MissingExtra as exc:
        return report("render", exc)
    try:
        rendered = render(options_from_args(args), args.out)
    except RenderError as exc:
        print(f"render: {exc}", file=sys.stderr)
        return 2
    print(
        f"rendered {rendered.prometheus_config}, {len(rendered.rule_files)} rule files, "
        f"{rendered.alertmanager_config}"
    )
    for dropped in rendered.dropped:
        # Never print the URLs themselves: they are secrets.
        print(f"note: no URL given, left out {dropped}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
