"""A picture of the Grafana dashboard, drawn from a real Prometheus's data with matplotlib (Agg).

Grafana cannot run here, so this renders every panel of ``dashboards/comet-overview.json`` the way
the dashboard would show it — the same queries, ``$__rate_interval`` and template variables filled
in — from ``/api/v1/query_range`` of a Prometheus (``/api/v1/query`` at the end of the window for
the targets Grafana runs as instant queries: the top-10 bar gauges, the alerts table). The ops tests
use it to prove every panel draws data; the README's screenshot (``docs/img/dashboard.png``) comes
from it::

    python -m comet.ops.dashboard_png --prometheus http://127.0.0.1:19090 --out docs/img/dashboard.png

This module is the command; the queries are :mod:`comet.ops.dashboard_queries`, the drawing
:mod:`comet.ops.dashboard_draw` (matplotlib, from the ops extra) and how values look
:mod:`comet.ops.dashboard_style`.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from comet.ops.dashboard_queries import DEFAULT_DASHBOARD, PanelData, collect, load_dashboard
from comet.ops.extras import MissingExtra, report


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
    """Query ``prometheus`` for every panel, draw them to ``out``; what was collected and drawn.

    Raises :class:`MissingExtra` without matplotlib — before querying, not after a whole window of
    queries.
    """
    from comet.ops.dashboard_draw import draw

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
    try:
        collected, drawn = render_dashboard_png(
            args.prometheus,
            args.out,
            dashboard_path=args.dashboard,
            window=args.window,
            step=args.step,
            rate_interval=args.rate_interval,
        )
    except MissingExtra as exc:
        return report("dashboard_png", exc)
    print(f"wrote {args.out}")
    _print_summary(collected, drawn)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
