"""A picture of the Grafana dashboard, drawn from a real Prometheus's data with matplotlib (Agg).

Grafana cannot run here, so this renders every panel of ``dashboards/comet-overview.json`` the way
the dashboard would show it — the same queries, ``$__rate_interval`` and template variables filled
in — from ``/api/v1/query_range`` of a Prometheus (``/api/v1/query`` at the end of the window for
the targets Grafana runs as instant queries: the top-10 bar gauges, the alerts table). The ops tests
use it to prove every panel draws data; the README's screenshot (``docs/img/dashboard.png``) comes
from it::

    python -m comet.ops.dashboard_png --prometheus http://127.0.0.1:19090 --out docs/img/dashboard.png
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_DASHBOARD = Path(__file__).resolve().parents[2] / "dashboards" / "comet-overview.json"
#: What "All" means for the dashboard's multi-value variables (their allValue; test_ops_dashboard.py
#: checks these against the dashboard).
ALL_VALUES = {"job": ".+", "instance": ".+", "shard": ".+"}

_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")

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


#: Legend entries drawn per time-series panel.
MAX_LEGEND = 12


class PrometheusQueryError(RuntimeError):
    """Prometheus refused a query (bad PromQL, unknown function...)."""


@dataclass
class Series:
    legend: str
    labels: dict[str, str]
    times: list[float]
    values: list[float]

    @property
    def finite(self) -> list[float]:
        return [v for v in self.values if math.isfinite(v)]


@dataclass
class PanelData:
    panel: dict[str, Any]
    queries: list[str] = field(default_factory=list)
    series: list[Series] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def id(self) -> int:
        return int(self.panel["id"])

    @property
    def title(self) -> str:
        return str(self.panel.get("title", ""))

    @property
    def has_data(self) -> bool:
        """At least one series with one real (not NaN) value."""
        return any(s.finite for s in self.series)


def load_dashboard(path: Path = DEFAULT_DASHBOARD) -> dict[str, Any]:
    dashboard: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return dashboard


def data_panels(dashboard: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every panel that queries (rows left out, the panels of collapsed rows included)."""
    found: list[dict[str, Any]] = []
    for panel in dashboard.get("panels", []):
        if panel.get("type") == "row":
            found.extend(panel.get("panels", []))
        else:
            found.append(panel)
    return found


def expand_query(expr: str, *, rate_interval: str, variables: Mapping[str, str] | None = None) -> str:
    """``expr`` as Grafana would send it: ``$__rate_interval`` and template variables filled in."""
    values = {"__rate_interval": rate_interval, **ALL_VALUES, **(variables or {})}

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in values:
            raise KeyError(f"unknown dashboard variable ${name} in {expr!r}")
        return values[name]

    return _VARIABLE.sub(replace, expr)


def is_instant(target: Mapping[str, Any]) -> bool:
    """Grafana runs a Prometheus target as an instant query when it asks for one and no range."""
    return bool(target.get("instant")) and not target.get("range", False)


def legend_text(fmt: str | None, labels: Mapping[str, str]) -> str:
    """Grafana's legendFormat: ``{{label}}`` replaced; ``__auto``/empty shows the labels."""
    if fmt and fmt != "__auto":
        return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), fmt)
    shown = {k: v for k, v in labels.items() if k != "__name__"}
    if not shown:
        return labels.get("__name__", "value")
    return ", ".join(f"{k}={v}" for k, v in sorted(shown.items()))


def query_range(prometheus: str, expr: str, *, start: float, end: float, step: float) -> list[dict[str, Any]]:
    return _api(
        prometheus,
        "query_range",
        expr,
        {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"},
    )


def query_instant(prometheus: str, expr: str, *, at: float) -> list[dict[str, Any]]:
    """An instant query; each result's ``value`` becomes a one-point ``values`` (as a range result)."""
    result = _api(prometheus, "query", expr, {"query": expr, "time": f"{at:.3f}"})
    return [{"metric": item["metric"], "values": [item["value"]]} for item in result]


def _api(prometheus: str, endpoint: str, expr: str, fields: Mapping[str, str]) -> list[dict[str, Any]]:
    params = urllib.parse.urlencode(fields)
    request = urllib.request.Request(
        f"{prometheus}/api/v1/{endpoint}",
        data=params.encode(),
        method="POST",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            payload = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        body = json.loads(exc.read() or b"{}")
        raise PrometheusQueryError(f"{expr}: {body.get('error', exc)}") from exc
    if payload.get("status") != "success":
        raise PrometheusQueryError(f"{expr}: {payload.get('error')}")
    result: list[dict[str, Any]] = payload["data"]["result"]
    return result


def collect(
    prometheus: str,
    dashboard: Mapping[str, Any],
    *,
    start: float,
    end: float,
    step: float,
    rate_interval: str,
    variables: Mapping[str, str] | None = None,
) -> list[PanelData]:
    """Run every target of every panel over [start, end] (an instant target at ``end``, as Grafana
    does); errors are kept per panel, not raised."""
    collected = []
    for panel in data_panels(dashboard):
        data = PanelData(panel)
        for target in panel.get("targets", []):
            if target.get("hide"):
                continue
            expr = expand_query(target["expr"], rate_interval=rate_interval, variables=variables)
            data.queries.append(expr)
            try:
                if is_instant(target):
                    result = query_instant(prometheus, expr, at=end)
                else:
                    result = query_range(prometheus, expr, start=start, end=end, step=step)
            except PrometheusQueryError as exc:
                data.errors.append(str(exc))
                continue
            for item in result:
                labels = dict(item["metric"])
                times = [float(t) for t, _ in item["values"]]
                values = [float(v) for _, v in item["values"]]  # "NaN", "+Inf" parse as floats
                data.series.append(
                    Series(legend_text(target.get("legendFormat"), labels), labels, times, values)
                )
        collected.append(data)
    return collected


# -- drawing -----------------------------------------------------------------------------------


def format_value(value: float, unit: str | None) -> str:
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


def _mapped(value: float, panel: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """Text and colour of a value mapping of the panel, if one matches."""
    for mapping in panel.get("fieldConfig", {}).get("defaults", {}).get("mappings", []):
        if mapping.get("type") == "value" and math.isfinite(value):
            key = str(int(value)) if value == int(value) else str(value)
            option = mapping.get("options", {}).get(key)
            if option:
                return option.get("text"), option.get("color")
    return None, None


#: Grafana's named colours used by the dashboard's thresholds.
NAMED_COLOURS = {
    "green": "#73bf69",
    "red": "#f2495c",
    "orange": "#ff9830",
    "yellow": "#fade2a",
    "blue": "#5794f2",
}


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


def _last(series: Series) -> float:
    finite = series.finite
    return finite[-1] if finite else math.nan


def draw(
    dashboard: Mapping[str, Any],
    collected: Sequence[PanelData],
    out: Path,
    *,
    title: str | None = None,
    dpi: int = 72,
) -> dict[int, int]:
    """Draw the dashboard to ``out`` (PNG); returns panel id -> number of data marks drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    by_id = {data.id: data for data in collected}
    all_panels = list(dashboard.get("panels", []))
    bottom = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in all_panels)
    unit_h = 0.36  # inches per grid row
    header = 0.8
    fig_w, fig_h = 22.0, bottom * unit_h + header
    fig = plt.figure(figsize=(fig_w, fig_h), facecolor=BACKGROUND)
    fig.text(
        0.01,
        1 - 0.35 / fig_h,
        title or dashboard.get("title", ""),
        color=TEXT,
        fontsize=18,
        va="center",
        weight="bold",
    )
    drawn: dict[int, int] = {}

    def box(grid: Mapping[str, int]) -> tuple[float, float, float, float]:
        """The content axes of a panel, in figure fractions; paddings in inches (tick labels, title)."""
        left, right, top_pad, bottom_pad = 0.8, 0.2, 0.45, 0.4
        x0 = grid["x"] * fig_w / 24 + left
        width = grid["w"] * fig_w / 24 - left - right
        top = fig_h - header - grid["y"] * unit_h - top_pad
        height = grid["h"] * unit_h - top_pad - bottom_pad
        return (x0 / fig_w, (top - height) / fig_h, width / fig_w, height / fig_h)

    for panel in all_panels:
        grid = panel["gridPos"]
        if panel.get("type") == "row":
            top = 1 - (header + grid["y"] * unit_h) / fig_h
            fig.text(
                0.005,
                top - 0.5 * unit_h / fig_h,
                panel.get("title", ""),
                color=TEXT,
                fontsize=14,
                weight="bold",
                va="center",
            )
            continue
        data = by_id.get(int(panel["id"]))
        if data is None:
            continue
        # The panel's frame, then its title, then its content axes inside.
        x0 = grid["x"] / 24 + 0.002
        frame_top = 1 - (header + grid["y"] * unit_h) / fig_h
        frame_h = grid["h"] * unit_h / fig_h - 0.004
        fig.patches.append(
            matplotlib.patches.FancyBboxPatch(
                (x0, frame_top - frame_h),
                grid["w"] / 24 - 0.004,
                frame_h,
                boxstyle="round,pad=0,rounding_size=0.002",
                transform=fig.transFigure,
                facecolor=PANEL,
                edgecolor=GRID,
                linewidth=0.8,
                zorder=-1,  # under the axes (same zorder would draw it on top)
            )
        )
        fig.text(
            x0 + 0.006,
            frame_top - 0.22 / fig_h,
            panel.get("title", ""),
            color=TEXT,
            fontsize=10.5,
            va="center",
            weight="bold",
        )
        ax = fig.add_axes(box(grid))
        ax.set_facecolor(PANEL)
        for spine in ax.spines.values():
            spine.set_color(GRID)
        ax.tick_params(colors=TEXT, labelsize=8)
        unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit")
        kind = panel.get("type")
        if not data.has_data:
            ax.set_axis_off()
            message = "Query error" if data.errors else "No data"
            ax.text(
                0.5,
                0.5,
                message,
                color="#8e8e8e",
                fontsize=14,
                ha="center",
                va="center",
                transform=ax.transAxes,
            )
            drawn[data.id] = 0
        elif kind == "stat":
            drawn[data.id] = _draw_stat(ax, panel, data, unit)
        elif kind == "bargauge":
            drawn[data.id] = _draw_bars(ax, data, unit)
        elif kind == "table":
            drawn[data.id] = _draw_table(ax, data)
        else:
            drawn[data.id] = _draw_timeseries(ax, panel, data, unit, mdates, FuncFormatter)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi, facecolor=BACKGROUND)
    plt.close(fig)
    return drawn


def _draw_timeseries(
    ax: Any, panel: Mapping[str, Any], data: PanelData, unit: str | None, mdates: Any, formatter: Any
) -> int:
    lines = 0
    labelled = 0
    shown = [s for s in data.series if s.finite]
    any_moved = any(v != 0 for s in shown for v in s.finite)
    for i, series in enumerate(shown):
        times = [dt.datetime.fromtimestamp(t, tz=dt.UTC) for t in series.times]
        # A picture has no hover: name the series that are not flat zero (all of them if none
        # moves), up to a readable number.
        moved = any(v != 0 for v in series.finite) or not any_moved
        named = labelled < MAX_LEGEND and moved
        labelled += named
        label = series.legend[:40] if named else "_nolegend_"
        ax.plot(times, series.values, color=PALETTE[i % len(PALETTE)], linewidth=1.4, label=label)
        lines += 1
    steps = panel.get("fieldConfig", {}).get("defaults", {}).get("thresholds", {}).get("steps", [])
    custom = panel.get("fieldConfig", {}).get("defaults", {}).get("custom", {})
    if custom.get("thresholdsStyle", {}).get("mode") == "line":
        for step in steps:
            if step.get("value") is not None:
                ax.axhline(step["value"], color="#f2495c", linestyle="--", linewidth=1)
    ax.grid(True, color=GRID, linewidth=0.5)
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M:%S"))
    ax.yaxis.set_major_formatter(formatter(lambda v, _pos: format_value(v, unit)))
    if labelled:
        legend = ax.legend(loc="upper left", fontsize=7, ncol=2 if labelled > 4 else 1, frameon=False)
        for text in legend.get_texts():
            text.set_color(TEXT)
    return lines


def _draw_stat(ax: Any, panel: Mapping[str, Any], data: PanelData, unit: str | None) -> int:
    """Grafana's stat panel: one big value per series, side by side, its name under it if asked."""
    ax.set_axis_off()
    mode = panel.get("options", {}).get("textMode", "value")
    shown = [s for s in data.series if s.finite]
    width = 1 / len(shown)
    for i, series in enumerate(shown):
        value = _last(series)
        text, colour = _mapped(value, panel)
        centre = (i + 0.5) * width
        if mode == "name":  # the labels are the information (a version string)
            ax.text(centre, 0.5, series.legend, color=TEXT, fontsize=11, ha="center", va="center",
                    transform=ax.transAxes, wrap=True)  # fmt: skip
            continue
        with_name = mode == "value_and_name"
        shown_value = text or format_value(value, unit)
        colour = colour or threshold_colour(value, panel) or NAMED_COLOURS["green"]
        ax.text(centre, 0.6 if with_name else 0.5, shown_value, color=colour,
                fontsize=26 if len(shown) == 1 else 20, ha="center", va="center", weight="bold",
                transform=ax.transAxes)  # fmt: skip
        if with_name:
            ax.text(centre, 0.1, series.legend, color=TEXT, fontsize=9, ha="center", va="center",
                    transform=ax.transAxes)  # fmt: skip
    return len(shown)


def _draw_bars(ax: Any, data: PanelData, unit: str | None) -> int:
    from matplotlib.ticker import FuncFormatter

    items = sorted(
        ((series.legend, _last(series)) for series in data.series if series.finite), key=lambda x: x[1]
    )
    names = [name for name, _ in items]
    values = [value for _, value in items]
    ax.barh(range(len(values)), values, color=[PALETTE[i % len(PALETTE)] for i in range(len(values))])
    ax.set_yticks(range(len(values)), labels=names, color=TEXT, fontsize=8)
    for i, value in enumerate(values):
        ax.text(value, i, f" {format_value(value, unit)}", color=TEXT, fontsize=8, va="center")
    ax.grid(True, axis="x", color=GRID, linewidth=0.5)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: format_value(v, unit)))
    return len(values)


def _draw_table(ax: Any, data: PanelData) -> int:
    ax.set_axis_off()
    hidden = {"__name__", "alertstate"}
    rows = [{k: v for k, v in s.labels.items() if k not in hidden} for s in data.series if s.finite]
    columns = sorted({k for row in rows for k in row}, key=lambda k: (k != "alertname", k))
    cells = [[row.get(c, "") for c in columns] for row in rows[:12]]
    table = ax.table(cellText=cells, colLabels=columns, loc="upper center", cellLoc="left")
    table.auto_set_font_size(False)
    table.set_fontsize(8)
    for cell in table.get_celld().values():
        cell.set_facecolor(PANEL)
        cell.set_edgecolor(GRID)
        cell.get_text().set_color(TEXT)
    return len(cells)


def render_dashboard_png(
    prometheus: str,
    out: Path,
    *,
    dashboard_path: Path = DEFAULT_DASHBOARD,
    window: float = 600.0,
    step: float = 5.0,
    rate_interval: str = "1m",
    end: float | None = None,
) -> tuple[list[PanelData], dict[int, int]]:
    dashboard = load_dashboard(dashboard_path)
    end = time.time() if end is None else end
    collected = collect(
        prometheus, dashboard, start=end - window, end=end, step=step, rate_interval=rate_interval
    )
    drawn = draw(dashboard, collected, out)
    return collected, drawn


def _print_summary(collected: Iterable[PanelData], drawn: Mapping[int, int]) -> None:
    for data in collected:
        state = f"{drawn.get(data.id, 0)} drawn" if data.has_data else "NO DATA"
        print(f"  panel {data.id:>3} {data.title:<45} {state}")
        for error in data.errors:
            print(f"      error: {error}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m comet.ops.dashboard_png", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--prometheus", required=True, help="base URL, e.g. http://127.0.0.1:19090")
    parser.add_argument("--out", type=Path, default=Path("docs/img/dashboard.png"))
    parser.add_argument("--dashboard", type=Path, default=DEFAULT_DASHBOARD)
    parser.add_argument("--window", type=float, default=600.0, help="seconds of history to draw")
    parser.add_argument("--step", type=float, default=5.0, help="query resolution in seconds")
    parser.add_argument("--rate-interval", default="1m", help="what $__rate_interval becomes")
    args = parser.parse_args(argv)
    collected, drawn = render_dashboard_png(
        args.prometheus,
        args.out,
        dashboard_path=args.dashboard,
        window=args.window,
        step=args.step,
        rate_interval=args.rate_interval,
    )
    print(f"wrote {args.out}")
    _print_summary(collected, drawn)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
