"""How the dashboard picture shows values: Grafana's dark-theme colours, units, mappings, thresholds.

Kept apart from the drawing so the rules (which colour a stat gets, how 0.0042 s reads) are plain
functions, tested without matplotlib.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from comet.ops.dashboard_queries import Series

# Grafana's dark theme, roughly.
BACKGROUND = "#111217"
PANEL = "#181b1f"
TEXT = "#ccccdc"
GRID = "#2c3235"
PALETTE = (
    "#73bf69",
    "#f2cc0c",
    "#5794f2",
    "#ff9830",
    "#f2495c",
    "#b877d9",
    "#8ab8ff",
    "#fade2a",
    "#ff7383",
    "#96d98d",
    "#ffb357",
    "#ca95e5",
)

#: Grafana's named colours used by the dashboard's thresholds.
NAMED_COLOURS = {
    "green": "#73bf69",
    "red": "#f2495c",
    "orange": "#ff9830",
    "yellow": "#fade2a",
    "blue": "#5794f2",
}


def format_value(value: float, unit: str | None) -> str:
    """``value`` as the panel's unit shows it (Grafana's s, bytes, percentunit, ops; else SI prefixes)."""
    if not math.isfinite(value):
        return "–"
    if unit == "s":
        if abs(value) >= 86400:
            return f"{value / 86400:.1f} d"
        if abs(value) >= 3600:
            return f"{value / 3600:.1f} h"
        if abs(value) >= 60:
            return f"{value / 60:.1f} min"
        return f"{value:.2f} s" if abs(value) >= 1 else f"{value * 1000:.0f} ms"
    if unit == "bytes":
        for size, suffix in ((1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
            if abs(value) >= size:
                return f"{value / size:.1f} {suffix}"
        return f"{value:.0f} B"
    if unit == "percentunit":
        return f"{value * 100:.1f}%"
    suffix = " /s" if unit == "ops" else ""
    for scale, letter in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:.1f}{letter}{suffix}"
    return f"{value:.3g}{suffix}"


def mapped(value: float, panel: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """Text and colour of a value mapping of the panel, if one matches."""
    for mapping in panel.get("fieldConfig", {}).get("defaults", {}).get("mappings", []):
        if mapping.get("type") == "value" and math.isfinite(value):
            key = str(int(value)) if value == int(value) else str(value)
            option = mapping.get("options", {}).get(key)
            if option:
                return option.get("text"), option.get("color")
    return None, None


def threshold_colour(value: float, panel: Mapping[str, Any]) -> str | None:
    """The colour of the highest threshold step at or below ``value`` (Grafana's absolute mode)."""
    steps = panel.get("fieldConfig", {}).get("defaults", {}).get("thresholds", {}).get("steps", [])
    if not steps or not math.isfinite(value):
        return None
    chosen = None
    for step in steps:
        if step.get("value") is None or value >= step["value"]:
            chosen = step.get("color")
    return NAMED_COLOURS.get(chosen, chosen) if chosen else None


def last_value(series: Series) -> float:
    """What a stat or bar gauge shows of a series: its last real value (NaN if it has none)."""
    finite = series.finite
    return finite[-1] if finite else math.nan
