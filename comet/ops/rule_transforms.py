"""What the render step changes in the rule files it copies, and the duration syntax it checks.

The rule files are copied verbatim unless asked otherwise: ``--max-alert-for`` shortens every
alert's ``for`` (end-to-end tests only), ``--slo-*-target`` replaces an SLO target's constant.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_VECTOR = re.compile(r"vector\(\s*[0-9.eE+-]+\s*\)")
DURATION = re.compile(r"^(?:\d+(?:ms|s|m|h|d|w|y))+$")
_UNITS_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
_UNITS_MS["y"] = 365 * _UNITS_MS["d"]


class RenderError(ValueError):
    """A source or an option that cannot be rendered; the message says which and why."""


def parse_duration_ms(text: str, *, what: str = "duration") -> int:
    """A Prometheus duration (``1m30s``, ``500ms``) in milliseconds."""
    if not DURATION.match(text):
        raise RenderError(f"{what}: expected a duration such as 30s, 5m or 1h30m, got {text!r}")
    return sum(int(n) * _UNITS_MS[u] for n, u in re.findall(r"(\d+)(ms|s|m|h|d|w|y)", text))


SLO_TARGET_RECORDS = {
    "slo_availability_target": "slo:comet_commands_availability:target",
    "slo_latency_target": "slo:comet_commands_latency:target",
}


def slo_target_overrides(options: object) -> dict[str, float]:
    """Recording-rule name -> the target ``options`` asks for (validated: 0 < target < 1)."""
    chosen = {}
    for option, record in SLO_TARGET_RECORDS.items():
        value = getattr(options, option)
        if value is None:
            continue
        if not 0.0 < value < 1.0:
            raise RenderError(f"--{option.replace('_', '-')}: expected a ratio between 0 and 1, got {value}")
        chosen[record] = value
    return chosen


def set_slo_targets(rules_doc: Any, targets: Mapping[str, float]) -> bool:
    """Replace the constant of each SLO target record named in ``targets``; whether one was found."""
    found = False
    for group in rules_doc.get("groups", []):
        for rule in group.get("rules", []):
            if rule.get("record") in targets:
                expr, count = _VECTOR.subn(f"vector({targets[rule['record']]!r})", str(rule["expr"]), 1)
                if count != 1:
                    raise RenderError(f"{rule['record']}: expected a constant vector(...) to override")
                rule["expr"] = expr
                found = True
    return found


def set_runbook_links(rules_doc: Any, base: str, default_base: str, first_steps: Mapping[str, str]) -> bool:
    """Point every ``runbook_url`` at Grafana ``base`` and add each alert's ``first_step``; changed?"""
    changed = False
    for group in rules_doc.get("groups", []):
        for rule in group.get("rules", []):
            annotations = rule.get("annotations")
            if "alert" not in rule or not isinstance(annotations, dict):
                continue
            url = annotations.get("runbook_url")
            if isinstance(url, str) and base != default_base and url.startswith(default_base):
                annotations["runbook_url"] = base.rstrip("/") + url[len(default_base) :]
                changed = True
            step = first_steps.get(rule["alert"])
            if step:
                annotations["first_step"] = step
                changed = True
    return changed


def cap_alert_for(rules_doc: Any, max_for: str) -> Any:
    """Shorten every alert's ``for`` to at most ``max_for`` (end-to-end tests and demos only).

    The alert's text then says so: its description names the production duration ("for more than
    an hour"), which such a run has not waited for, and an alert must not claim what did not happen.
    """
    limit = parse_duration_ms(max_for, what="max alert for")
    for group in rules_doc.get("groups", []):
        for rule in group.get("rules", []):
            if "for" in rule and parse_duration_ms(str(rule["for"]), what="for") > limit:
                original, rule["for"] = rule["for"], max_for
                annotations = rule.setdefault("annotations", {})
                annotations["description"] = (
                    f"{annotations.get('description', '').rstrip()} [Demo rendering: `for` shortened from "
                    f"{original} to {max_for}; durations named above may not have passed.]"
                ).strip()
    return rules_doc
