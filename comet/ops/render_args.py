"""The rendering options as command-line flags and environment variables.

One declaration for both commands that render (``python -m comet.ops.render`` and ``make stack``),
so a flag means the same in each. No YAML here: the parsers are built before the ops extra is
needed.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

from comet.ops.render_options import DURATION_OPTIONS, RenderOptions
from comet.ops.rule_transforms import SLO_TARGET_RECORDS, RenderError

#: Environment variables read when the URL options are not given (keeps secrets out of argv / ps).
DISCORD_URL_ENV = "COMET_ALERT_DISCORD_WEBHOOK_URL"
WEBHOOK_URL_ENV = "COMET_ALERT_WEBHOOK_URL"
DEADMANS_SWITCH_URL_ENV = "COMET_ALERT_DEADMANS_SWITCH_URL"
ALLOW_NO_RECEIVER_ENV = "COMET_ALERT_ALLOW_NO_RECEIVER"
#: The bot's own setting: when its /metrics requires basic auth, Prometheus must send the same.
METRICS_BASIC_AUTH_ENV = "COMET_METRICS_BASIC_AUTH"


def add_render_arguments(
    parser: argparse.ArgumentParser,
    *,
    targets: bool = True,
    defaults: Mapping[str, Any] | None = None,
    help_texts: Mapping[str, str] | None = None,
) -> None:
    """Declare the rendering options on ``parser``: the one declaration ``render`` and ``stack`` share.

    ``targets=False`` leaves out the scrape and alerting targets (for a caller that fills them in
    itself); ``defaults`` overrides RenderOptions' defaults by destination, ``help_texts`` the help
    of an option by its flag.
    """
    d = RenderOptions()
    texts = {
        "--discord-webhook-url": f"ops channel webhook (default ${DISCORD_URL_ENV}; none: no Discord)",
        "--webhook-url": f"generic webhook (default ${WEBHOOK_URL_ENV}; none: left out)",
        "--deadmans-switch-url": f"gets the Watchdog every minute (default ${DEADMANS_SWITCH_URL_ENV})",
        "--max-alert-for": "cap every alert's `for` (tests only; never in production)",
        **(help_texts or {}),
    }
    if targets:
        parser.add_argument(
            "--bot-target",
            action="append",
            metavar="HOST:PORT",
            help=f"bot /metrics (default {d.bot_targets[0]})",
        )
        parser.add_argument(
            "--shard-target",
            action="append",
            metavar="HOST:PORT",
            help="a shard process, written to targets/",
        )
        parser.add_argument(
            "--shard-target-files",
            action="append",
            metavar="GLOB",
            help=f"file_sd files, relative to the rendered config (default {d.shard_target_files[0]})",
        )
        parser.add_argument(
            "--prometheus",
            metavar="HOST:PORT",
            help=f"Prometheus' own address (default {d.prometheus_targets[0]})",
        )
        parser.add_argument(
            "--alertmanager", action="append", metavar="HOST:PORT", help=f"default {d.alertmanagers[0]}"
        )
    parser.add_argument("--discord-webhook-url", help=texts["--discord-webhook-url"])
    parser.add_argument("--webhook-url", help=texts["--webhook-url"])
    parser.add_argument("--deadmans-switch-url", help=texts["--deadmans-switch-url"])
    parser.add_argument(
        "--grafana-url", default=d.grafana_url, help="Grafana's root URL, for the runbook links"
    )
    parser.add_argument(
        "--allow-no-receiver",
        action="store_true",
        default=None,
        help=f"render even with no receiver for critical alerts (default ${ALLOW_NO_RECEIVER_ENV})",
    )
    for name in DURATION_OPTIONS:
        parser.add_argument("--" + name.replace("_", "-"), default=getattr(d, name))
    parser.add_argument("--max-alert-for", metavar="DURATION", help=texts["--max-alert-for"])
    for option, record in SLO_TARGET_RECORDS.items():
        parser.add_argument(
            "--" + option.replace("_", "-"), type=float, metavar="RATIO", help=f"override {record}"
        )
    if defaults:
        parser.set_defaults(**defaults)


def durations_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The DURATION_OPTIONS as parsed, by RenderOptions field."""
    return {name: getattr(args, name) for name in DURATION_OPTIONS}


def metrics_basic_auth(environ: Mapping[str, str]) -> tuple[str, str] | None:
    """COMET_METRICS_BASIC_AUTH (user:password) from the environment, as the bot reads it."""
    value = environ.get(METRICS_BASIC_AUTH_ENV, "")
    if not value:
        return None
    user, sep, password = value.partition(":")
    if not sep or not user or not password:
        raise RenderError(f"{METRICS_BASIC_AUTH_ENV}: expected user:password")
    return user, password


def allow_no_receiver(flag: bool | None, environ: Mapping[str, str]) -> bool:
    """The flag if given, else ALLOW_NO_RECEIVER_ENV (true/false; anything else is an error)."""
    if flag is not None:
        return flag
    value = environ.get(ALLOW_NO_RECEIVER_ENV, "").strip().lower()
    if value in ("", "0", "false", "no", "off"):
        return False
    if value in ("1", "true", "yes", "on"):
        return True
    raise RenderError(f"{ALLOW_NO_RECEIVER_ENV}: expected true or false, got {value!r}")
