"""Drawing the dashboard to a PNG with matplotlib, from what :mod:`comet.ops.dashboard_queries` collected.

Each panel at its ``gridPos`` on a 24-column grid, in Grafana's dark theme: time series as lines,
stats as big values, bar gauges as bars, tables as tables. matplotlib comes with the ops extra;
importing this module without it raises :class:`comet.ops.extras.MissingExtra`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from comet.ops.dashboard_queries import PanelData
from comet.ops.dashboard_style import (
    BACKGROUND,
    GRID,
    NAMED_COLOURS,
    PALETTE,
    PANEL,
    TEXT,
    format_value,
    last_value,
    mapped,
    threshold_colour,
)
from comet.ops.extras import MissingExtra

try:
    # The object-oriented API, not pyplot: a Figure saved to PNG uses the Agg canvas by itself, with
    # no process-wide backend to select and no figure registry to close.
    import matplotlib.dates as mdates
    from matplotlib.figure import Figure
    from matplotlib.patches import FancyBboxPatch
    from matplotlib.ticker import FuncFormatter
except ModuleNotFoundError as exc:  # the bot's own install has no matplotlib: say which extra has it
    raise MissingExtra("matplotlib") from exc

#: Legend entries drawn per time-series panel.
MAX_LEGEND = 12


def draw(
    dashboard: Mapping[str, Any],
    collected: Sequence[PanelData],
    out: Path,
    *,
    title: str | None = None,
    dpi: int = 72,
) -> dict[int, int]:
    """Draw the dashboard to ``out`` (PNG); returns panel id -> number of data marks drawn."""
    by_id = {data.id: data for data in collected}
    all_panels = list(dashboard.get("panels", []))
    bottom = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in all_panels)
    unit_h = 0.36  # inches per grid row
    header = 0.8
    fig_w, fig_h = 22.0, bottom * unit_h + header
    fig = Figure(figsize=(fig_w, fig_h), facecolor=BACKGROUND)
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
            FancyBboxPatch(
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
            drawn[data.id] = _draw_timeseries(ax, panel, data, unit)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi, facecolor=BACKGROUND)
    return drawn


def _draw_timeseries(ax: Any, panel: Mapping[str, Any], data: PanelData, unit: str | None) -> int:
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
    # matplotlib.dates has no type hints (no .pyi, unannotated), unlike the rest of matplotlib.
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M:%S"))  # type: ignore[no-untyped-call]
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: format_value(v, unit)))
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
        value = last_value(series)
        text, colour = mapped(value, panel)
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
    items = sorted(
        ((series.legend, last_value(series)) for series in data.series if series.finite), key=lambda x: x[1]
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
