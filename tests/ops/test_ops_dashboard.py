"""The Grafana dashboard's structure, and the pieces of the PNG renderer that need no Prometheus.
(That every panel returns and draws data from a real Prometheus: test_ops_live.py.)"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from ops_support import DASHBOARD, RULE_FILES

from comet.ops.dashboard_png import (
    PanelData,
    Series,
    data_panels,
    draw,
    expand_query,
    format_value,
    legend_text,
    load_dashboard,
)

RANGE = re.compile(r"\[([^\]]+)\]")


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return load_dashboard(DASHBOARD)


def _exprs(dashboard: dict[str, Any]) -> list[tuple[dict[str, Any], str]]:
    return [(panel, target["expr"]) for panel in data_panels(dashboard) for target in panel["targets"]]


def test_panel_ids_are_unique_and_stable(dashboard: dict[str, Any]) -> None:
    ids = [panel["id"] for panel in dashboard["panels"]] + [
        p["id"] for row in dashboard["panels"] for p in row.get("panels", [])
    ]
    assert len(ids) == len(set(ids)), ids
    assert all(isinstance(i, int) and i > 0 for i in ids)
    assert dashboard["uid"] == "comet-overview"
    # Ids are written in the file (Grafana would renumber missing ones, breaking links to panels).
    assert json.loads(DASHBOARD.read_text())["panels"][0]["id"] == 1


def test_template_variables(dashboard: dict[str, Any]) -> None:
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert set(variables) == {"datasource", "instance", "shard"}
    assert (
        variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    )
    for name in ("instance", "shard"):
        assert (
            variables[name]["includeAll"] and variables[name]["multi"] and variables[name]["allValue"] == ".*"
        )
        assert variables[name]["datasource"]["uid"] == "${datasource}"
    for panel in data_panels(dashboard):
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]


def test_every_query_uses_rate_interval_and_the_instance_variable(dashboard: dict[str, Any]) -> None:
    for panel, expr in _exprs(dashboard):
        for window in RANGE.findall(expr):
            assert window == "$__rate_interval", (panel["title"], expr)
        if "ALERTS" not in expr:
            assert 'instance=~"$instance"' in expr, (panel["title"], expr)
    shard_panels = [p["title"] for p, e in _exprs(dashboard) if "$shard" in e]
    assert "Gateway latency per shard" in shard_panels


def test_panels_cover_the_issue(dashboard: dict[str, Any]) -> None:
    titles = {panel["title"] for panel in data_panels(dashboard)}
    expected = {
        "Ready", "Uptime", "Guilds", "Shards up", "Command rate by command",
        "Command latency p50 / p95 / p99", "Error ratio", "Slowest commands (p95 over 5m)",
        "Busiest commands (per second over 5m)",
        "Gateway latency per shard", "Gateway events by type", "Disconnects and resumes", "Event-loop lag",
        "Event-loop blocks", "CPU", "Memory", "Threads and file descriptors", "Garbage collection",
        "Log records by level", "Firing alerts", "Storage time (p95)", "Automod actions",
    }  # fmt: skip
    assert expected <= titles, expected - titles
    exprs = " ".join(e for _, e in _exprs(dashboard))
    # Command latency p50/p95/p99 (recording rules), storage p95 (computed in the panel).
    for needle in ("instance:comet_command_duration_seconds:p50_5m",
                   "instance:comet_command_duration_seconds:p95_5m",
                   "instance:comet_command_duration_seconds:p99_5m", "histogram_quantile(0.95,",
                   'function=~"storage\\\\..*"', "comet_automod_actions_total", "ALERTS{",
                   "instance_command:comet_command_duration_seconds:p95_5m"):  # fmt: skip
        assert needle in exprs, needle


def test_panels_read_the_recording_rules_instead_of_computing_them_again(dashboard: dict[str, Any]) -> None:
    """What alerting/rules/recording.yml computes all the time, no panel computes again from the raw
    series; and every recorded series is read (by a panel or an alert)."""
    rules = [r for path in RULE_FILES for g in yaml.safe_load(path.read_text())["groups"] for r in g["rules"]]
    records = {rule["record"]: rule["expr"] for rule in rules if "record" in rule}
    sources = {name for expr in records.values() for name in re.findall(r"\bcomet_\w+", expr)}
    assert {"comet_commands_total", "comet_command_duration_seconds_bucket"} <= sources, sources
    panel_exprs = " ".join(expr for _, expr in _exprs(dashboard))
    for source in sources:
        assert not re.search(rf"\b{source}\b", panel_exprs), f"a panel recomputes a recorded {source}"
    readers = " ".join([panel_exprs, *(rule["expr"] for rule in rules if "alert" in rule)])
    assert not [name for name in records if name not in readers], "recorded but never read"


def test_panels_do_not_overlap(dashboard: dict[str, Any]) -> None:
    cells: dict[tuple[int, int], str] = {}
    for panel in dashboard["panels"]:
        g = panel["gridPos"]
        assert 0 <= g["x"] and g["x"] + g["w"] <= 24, panel["title"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]


def test_expand_query_fills_grafana_variables() -> None:
    expr = 'sum(rate(x{instance=~"$instance", shard=~"${shard}"}[$__rate_interval]))'
    assert expand_query(expr, rate_interval="10s") == 'sum(rate(x{instance=~".*", shard=~".*"}[10s]))'
    assert expand_query(expr, rate_interval="1m", variables={"instance": "bot:9108"}).startswith(
        'sum(rate(x{instance=~"bot:9108"'
    )
    with pytest.raises(KeyError, match="unknown dashboard variable"):
        expand_query("up{job=$job}", rate_interval="1m")


def test_legend_text_like_grafana() -> None:
    labels = {"__name__": "x", "command": "ping", "kind": "slash"}
    assert legend_text("{{command}} ({{ kind }})", labels) == "ping (slash)"
    assert legend_text("__auto", labels) == "command=ping, kind=slash"
    assert legend_text("", {"__name__": "up"}) == "up"


def test_format_value_units() -> None:
    assert format_value(0.25, "s") == "250 ms"
    assert format_value(2.5, "s") == "2.50 s"
    assert format_value(3 * 1024 * 1024, "bytes") == "3.0 MiB"
    assert format_value(0.125, "percentunit") == "12.5%"
    assert format_value(1500, "ops") == "1.5k /s"
    assert format_value(float("nan"), "s") == "–"


def test_draw_reports_no_marks_for_an_empty_or_nan_panel(dashboard: dict[str, Any], tmp_path: Path) -> None:
    panels = data_panels(dashboard)
    now = 1_700_000_000.0
    collected = [PanelData(panel) for panel in panels]
    collected[0].series.append(Series("ready", {}, [now, now + 1], [1.0, 1.0]))
    collected[1].series.append(Series("uptime", {}, [now], [float("nan")]))  # a NaN series is no data
    out = tmp_path / "d.png"
    drawn = draw(dashboard, collected, out)
    assert drawn[panels[0]["id"]] == 1
    assert drawn[panels[1]["id"]] == 0
    assert sum(drawn.values()) == 1
    assert out.read_bytes()[:4] == b"\x89PNG"
