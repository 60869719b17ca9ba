"""The dashboard's queries, run against a Prometheus as Grafana would run them.

Every panel of ``dashboards/comet-overview.json`` with its targets' expressions as Grafana sends them
(``$__rate_interval`` and the template variables filled in), over ``/api/v1/query_range``, or
``/api/v1/query`` at the end of the window for the targets Grafana runs as instant queries (the
top-10 bar gauges, the alerts table). Standard library only, so the queries run (and are tested)
without matplotlib.
"""

from __future__ import annotations

import json
import math
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_DASHBOARD = Path(__file__).resolve().parents[2] / "dashboards" / "comet-overview.json"
#: What "All" means for the dashboard's multi-value variables (their allValue; test_ops_dashboard.py
#: checks these against the dashboard).
ALL_VALUES = {"job": ".+", "instance": ".+", "shard": ".+"}

_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")


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
