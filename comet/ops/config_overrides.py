"""What the render step changes in the checked-in configs: YAML in, YAML out.

``prometheus.yml`` and ``alerting/alertmanager.yml`` are valid as they stand (compose names,
production intervals). Rendering overrides only what a deployment varies — scrape targets, ports,
intervals, the rule-file path — and adds the receivers' integrations, whose webhook URLs are
secrets that never live in the repository. A section the overrides expect but do not find (a
renamed job, a removed route) is an error, so a source edited out of shape cannot render silently.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from comet.ops.rule_transforms import RenderError

#: The integration each receiver gets when its URL is given (option name, integration, settings).
#: The Discord texts come from alerting/templates/discord.tmpl.
RECEIVER_INTEGRATIONS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "discord-critical": (
        "discord_webhook_url",
        "discord_configs",
        {
            "send_resolved": True,
            "title": '{{ template "comet.discord.title" . }}',
            "message": '{{ template "comet.discord.message" . }}',
        },
    ),
    "discord-warning": (
        "discord_webhook_url",
        "discord_configs",
        {
            "send_resolved": True,
            "title": '{{ template "comet.discord.title" . }}',
            "message": '{{ template "comet.discord.message" . }}',
        },
    ),
    "generic-webhook": ("webhook_url", "webhook_configs", {"send_resolved": True, "max_alerts": 20}),
    "deadmans-switch": ("deadmans_switch_url", "webhook_configs", {"send_resolved": False}),
}
#: Where the scrape password is written, next to prometheus.yml (Prometheus resolves a relative
#: password_file against its config file's directory).
SCRAPE_PASSWORD_FILE = "secrets/scrape_password"
#: The jobs that scrape the bot (they need its /metrics credentials when COMET_METRICS_BASIC_AUTH is set).
BOT_JOBS = ("comet", "comet-shards")

#: Receivers that carry critical alerts: rendering refuses when none of them has an integration.
CRITICAL_RECEIVERS = ("discord-critical", "generic-webhook")
URL_KEY = {"discord_configs": "webhook_url", "webhook_configs": "url"}


def _job(doc: Mapping[str, Any], name: str) -> dict[str, Any]:
    for job in doc.get("scrape_configs") or []:
        if job.get("job_name") == name:
            return job  # type: ignore[no-any-return]
    raise RenderError(f"prometheus.yml: no scrape job {name!r} to set the targets of")


def _static_targets(job: dict[str, Any], targets: tuple[str, ...]) -> None:
    job["static_configs"] = [{"targets": list(targets)}]


def override_prometheus(doc: dict[str, Any], options: Any) -> dict[str, Any]:
    """``doc`` (prometheus.yml) with the deployment's targets, intervals and rule-file path."""
    glob = doc.setdefault("global", {})
    glob["scrape_interval"] = options.scrape_interval
    glob["evaluation_interval"] = options.evaluation_interval
    doc["rule_files"] = ["rules/*.yml"]
    try:
        doc["alerting"]["alertmanagers"][0]["static_configs"] = [{"targets": list(options.alertmanagers)}]
    except (KeyError, IndexError, TypeError) as exc:
        raise RenderError("prometheus.yml: no alerting.alertmanagers entry to point at Alertmanager") from exc
    _static_targets(_job(doc, "comet"), options.bot_targets)
    shards = _job(doc, "comet-shards")
    try:
        shards["file_sd_configs"][0]["files"] = list(options.shard_target_files)
    except (KeyError, IndexError, TypeError) as exc:
        raise RenderError("prometheus.yml: the comet-shards job has no file_sd_configs") from exc
    for name in BOT_JOBS:
        job = _job(doc, name)
        if options.metrics_basic_auth is None:
            job.pop("basic_auth", None)
        else:
            # The password from a file, never inline: prometheus.yml stays world-readable.
            job["basic_auth"] = {
                "username": options.metrics_basic_auth[0],
                "password_file": SCRAPE_PASSWORD_FILE,
            }
    _static_targets(_job(doc, "prometheus"), options.prometheus_targets)
    _static_targets(_job(doc, "alertmanager"), options.alertmanagers)
    return doc


def _route(routes: list[dict[str, Any]], receiver: str) -> dict[str, Any]:
    for route in routes:
        if route.get("receiver") == receiver:
            return route
    raise RenderError(f"alertmanager.yml: no route to {receiver!r}")


def override_alertmanager(doc: dict[str, Any], options: Any) -> tuple[dict[str, Any], tuple[str, ...]]:
    """``doc`` (alertmanager.yml) with the timings and integrations; and what was left out."""
    route = doc.get("route")
    if not isinstance(route, dict):
        raise RenderError("alertmanager.yml: no route")
    route["group_wait"] = options.group_wait
    route["group_interval"] = options.group_interval
    route["repeat_interval"] = options.repeat_interval
    critical = _route(route.get("routes") or [], "discord-critical")
    critical["group_wait"] = options.critical_group_wait
    critical["repeat_interval"] = options.critical_repeat_interval
    receivers = {r.get("name"): r for r in doc.get("receivers") or []}
    dropped = []
    for name, (option, integration, settings) in RECEIVER_INTEGRATIONS.items():
        receiver = receivers.get(name)
        if receiver is None:
            raise RenderError(f"alertmanager.yml: no receiver {name!r}")
        url = getattr(options, option)
        if url is None:
            receiver.pop(integration, None)
            dropped.append(f"{name}: {integration}")
        else:
            receiver[integration] = [{URL_KEY[integration]: url, **settings}]
    if not options.allow_no_receiver and all(f"{name}: " in " ".join(dropped) for name in CRITICAL_RECEIVERS):
        raise RenderError(
            "no receiver for critical alerts: set COMET_ALERT_DISCORD_WEBHOOK_URL (--discord-webhook-url) "
            "or COMET_ALERT_WEBHOOK_URL (--webhook-url), or COMET_ALERT_ALLOW_NO_RECEIVER=true "
            "(--allow-no-receiver) to accept that alerts reach nobody"
        )
    return doc, tuple(dropped)
