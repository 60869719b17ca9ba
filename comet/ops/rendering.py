"""The render step itself: the checked-in sources in, one self-contained directory out.

The layout written is described in :mod:`comet.ops.render` (the command); this module needs PyYAML
(the ops extra) and raises :class:`comet.ops.extras.MissingExtra` on import without it.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from comet.ops.config_overrides import SCRAPE_PASSWORD_FILE, override_alertmanager, override_prometheus
from comet.ops.render_options import (
    ALERTMANAGER_SOURCE,
    DOCS_SOURCE,
    PROMETHEUS_SOURCE,
    RULES_SOURCE,
    TEMPLATES_SOURCE,
    RenderOptions,
)
from comet.ops.rule_transforms import (
    RenderError,
    cap_alert_for,
    set_runbook_links,
    set_slo_targets,
    slo_target_overrides,
)
from comet.ops.runbooks import DEFAULT_GRAFANA_URL, first_step, sections
from comet.ops.yaml_files import dump_yaml, header, load_yaml, write_atomically


@dataclass(frozen=True)
class Rendered:
    """Where a rendering wrote its files."""

    out: Path
    prometheus_config: Path
    alertmanager_config: Path
    rules_dir: Path
    rule_files: tuple[Path, ...]
    dropped: tuple[str, ...]  # integrations left out for want of a URL


def render(options: RenderOptions, out: Path) -> Rendered:
    """Write the rendered configs of ``options.source_dir`` into ``out``; returns where."""
    options.validate()
    source = options.source_dir
    out.mkdir(parents=True, exist_ok=True)
    public = 0o644
    # The Alertmanager config holds the webhook URLs (secrets): private unless the readers run as
    # other users (the compose containers), which --shared-read says.
    private = 0o644 if options.shared_read else 0o600

    prometheus_doc = override_prometheus(load_yaml(source / PROMETHEUS_SOURCE), options)
    prometheus_path = out / "prometheus.yml"
    write_atomically(prometheus_path, header(PROMETHEUS_SOURCE) + dump_yaml(prometheus_doc), public)
    password_path = out / SCRAPE_PASSWORD_FILE
    if options.metrics_basic_auth is not None:
        write_atomically(password_path, options.metrics_basic_auth[1], private)
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
        doc = load_yaml(rule_source)
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
            text = header(f"{RULES_SOURCE}/{rule_source.name} ({'; '.join(changes) or 'as is'})")
            text += dump_yaml(doc)
        write_atomically(target, text, public)
        rule_files.append(target)

    # Always written (an empty list without --shard-target) so the default file_sd glob matches a file.
    shards = [{"targets": list(options.shard_targets), "labels": {}}] if options.shard_targets else []
    write_atomically(
        out / "targets" / "shards.yml", header("--shard-target options") + dump_yaml(shards), public
    )

    alertmanager_doc, dropped = override_alertmanager(load_yaml(source / ALERTMANAGER_SOURCE), options)
    alertmanager_path = out / "alertmanager.yml"
    write_atomically(alertmanager_path, header(ALERTMANAGER_SOURCE) + dump_yaml(alertmanager_doc), private)
    for template in sorted((source / TEMPLATES_SOURCE).glob("*.tmpl")):
        write_atomically(out / "templates" / template.name, template.read_text(encoding="utf-8"), public)
    return Rendered(out, prometheus_path, alertmanager_path, rules_dir, tuple(rule_files), dropped)
