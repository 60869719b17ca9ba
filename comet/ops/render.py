"""Render the ops configs for one deployment: the checked-in ones with its targets, timings and secrets.

``prometheus.yml``, ``alerting/alertmanager.yml`` and ``alerting/rules/*.yml`` are valid as they
stand (compose defaults). Prometheus 2.42 and Alertmanager 0.25 do not expand environment
variables, so this step writes a self-contained directory that the programs read::

    OUT/prometheus.yml      targets, intervals and the rule path overridden (comet.ops.config_overrides)
    OUT/rules/*.yml         the rule files (copied; ``--max-alert-for``, ``--slo-*-target`` change them)
    OUT/targets/shards.yml  file_sd targets given with --shard-target (if any)
    OUT/alertmanager.yml    timings, and the integrations whose webhook URLs are given (mode 0600)
    OUT/templates/*.tmpl    Alertmanager's notification templates

docker compose (its ``render`` service), ``make stack`` and the tests all call it, so what the tests
prove is what users run. Run ``python -m comet.ops.render --help`` for the options.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from comet.ops.config_overrides import SCRAPE_PASSWORD_FILE, override_alertmanager, override_prometheus
from comet.ops.rule_transforms import (
    SLO_TARGET_RECORDS,
    RenderError,
    cap_alert_for,
    parse_duration_ms,
    set_runbook_links,
    set_slo_targets,
    slo_target_overrides,
)
from comet.ops.runbooks import DEFAULT_GRAFANA_URL, first_step, sections

HOST_PORT = re.compile(r"^[A-Za-z0-9_.\-]+:\d{1,5}$|^\[[0-9A-Fa-f:.]+\]:\d{1,5}$")

#: Environment variables read when the URL options are not given (keeps secrets out of argv / ps).
DISCORD_URL_ENV = "COMET_ALERT_DISCORD_WEBHOOK_URL"
WEBHOOK_URL_ENV = "COMET_ALERT_WEBHOOK_URL"
DEADMANS_SWITCH_URL_ENV = "COMET_ALERT_DEADMANS_SWITCH_URL"
ALLOW_NO_RECEIVER_ENV = "COMET_ALERT_ALLOW_NO_RECEIVER"
#: The bot's own setting: when its /metrics requires basic auth, Prometheus must send the same.
METRICS_BASIC_AUTH_ENV = "COMET_METRICS_BASIC_AUTH"

PROMETHEUS_SOURCE = "prometheus.yml"
ALERTMANAGER_SOURCE = "alerting/alertmanager.yml"
RULES_SOURCE = "alerting/rules"
DOCS_SOURCE = "docs/operations.md"
TEMPLATES_SOURCE = "alerting/templates"


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


@dataclass(frozen=True)
class Rendered:
    """Where a rendering wrote its files."""

    out: Path
    prometheus_config: Path
    alertmanager_config: Path
    rules_dir: Path
    rule_files: tuple[Path, ...]
    dropped: tuple[str, ...]  # integrations left out for want of a URL


def _load_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise RenderError(f"{path}: source file missing") from exc
    except yaml.YAMLError as exc:
        raise RenderError(f"{path}: not valid YAML: {exc}") from exc


def _header(source: str) -> str:
    return f"# Rendered by comet.ops.render from {source}. Edit the source, not this file.\n"


class _Dumper(yaml.SafeDumper):
    """Readable output: no ``&id001`` anchors for repeated values, multi-line strings as ``|`` blocks."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _represent_str)


def _dump(doc: Any) -> str:
    return yaml.dump(doc, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=120)


def _write(path: Path, text: str, mode: int) -> None:
    """Write atomically (a Prometheus reloading its config never reads half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def render(options: RenderOptions, out: Path) -> Rendered:
    """Write the rendered configs of ``options.source_dir`` into ``out``; returns where."""
    options.validate()
    source = options.source_dir
    out.mkdir(parents=True, exist_ok=True)
    public = 0o644
    # The Alertmanager config holds the webhook URLs (secrets): private unless the readers run as
    # other users (the compose containers), which --shared-read says.
    private = 0o644 if options.shared_read else 0o600

    prometheus_doc = override_prometheus(_load_yaml(source / PROMETHEUS_SOURCE), options)
    prometheus_path = out / "prometheus.yml"
    _write(prometheus_path, _header(PROMETHEUS_SOURCE) + _dump(prometheus_doc), public)
    password_path = out / SCRAPE_PASSWORD_FILE
    if options.metrics_basic_auth is not None:
        _write(password_path, options.metrics_basic_auth[1], private)
    else:
        password_path.unlink(missing_ok=True)

    rules_dir = out / "rules"
    if rules_dir.exists():
        shutil.rmtree(rules_dir)  # a rule file removed from the source must not linger
    rule_files = []
    sources = sorted((source / RULES_SOURCE).glob("*.yml"))
    if not sources:
        raise RenderError(f"{source / RULES_SOURCE}: no rule files")
    targets = slo_target_overrides(options)
    docs = source / DOCS_SOURCE
    runbook_sections = sections(docs.read_text(encoding="utf-8")) if docs.is_file() else {}
    steps = {alert: first_step(text) for alert, text in runbook_sections.items()}
    for rule_source in sources:
        target = rules_dir / rule_source.name
        doc = _load_yaml(rule_source)
        linked = set_runbook_links(doc, options.grafana_url, DEFAULT_GRAFANA_URL, steps)
        if options.max_alert_for is None and not targets and not linked:
            text = rule_source.read_text(encoding="utf-8")
        else:
            changes = ["runbook links and first steps"] if linked else []
            if options.max_alert_for is not None:
                doc = cap_alert_for(doc, options.max_alert_for)
                changes.append(f"for capped at {options.max_alert_for}")
            if set_slo_targets(doc, targets):
                changes.append("SLO targets " + ", ".join(f"{k} = {v}" for k, v in targets.items()))
            text = _header(f"{RULES_SOURCE}/{rule_source.name} ({'; '.join(changes) or 'as is'})")
            text += _dump(doc)
        _write(target, text, public)
        rule_files.append(target)

    # Always written (an empty list without --shard-target) so the default file_sd glob matches a file.
    shards = [{"targets": list(options.shard_targets), "labels": {}}] if options.shard_targets else []
    _write(out / "targets" / "shards.yml", _header("--shard-target options") + _dump(shards), public)

    alertmanager_doc, dropped = override_alertmanager(_load_yaml(source / ALERTMANAGER_SOURCE), options)
    alertmanager_path = out / "alertmanager.yml"
    _write(alertmanager_path, _header(ALERTMANAGER_SOURCE) + _dump(alertmanager_doc), private)
    for template in sorted((source / TEMPLATES_SOURCE).glob("*.tmpl")):
        _write(out / "templates" / template.name, template.read_text(encoding="utf-8"), public)
    return Rendered(out, prometheus_path, alertmanager_path, rules_dir, tuple(rule_files), dropped)


DURATION_OPTIONS = (
    "scrape_interval",
    "evaluation_interval",
    "group_wait",
    "group_interval",
    "repeat_interval",
    "critical_group_wait",
    "critical_repeat_interval",
)


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m comet.ops.render",
        description="Render prometheus.yml, the rule files and alertmanager.yml into one directory.",
    )
    parser.add_argument("--out", required=True, type=Path, help="directory to write (created if needed)")
    parser.add_argument("--source-dir", type=Path, default=None, help="checkout holding the sources")
    add_render_arguments(parser)
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
        metrics_basic_auth=metrics_basic_auth(environ),
        slo_availability_target=args.slo_availability_target,
        slo_latency_target=args.slo_latency_target,
        shared_read=args.shared_read,
        source_dir=args.source_dir or default_source_dir(),
        **durations_from_args(args),
    )


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


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
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
