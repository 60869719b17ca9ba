"""The Grafana dashboard's structure, and the pieces of the PNG renderer that need no Prometheus.
(That every panel returns and draws data from a real Prometheus: test_ops_live.py.)

grafana/dashboard-linter's rules are checked here, in Python (the linter is a Go program this
environment does not have): template-datasource-rule (with panel-datasource-rule),
template-job-rule, template-instance-rule, target-job-rule, target-instance-rule,
target-rate-interval-rule, panel-units-rule and panel-title-description-rule. Then ours: top-k
panels are instant queries, no line is drawn across a gap, quantiles and ratios aggregate the
selected instances correctly (checked with two real shard processes, too), "Errors by exception"
counts the failures the error ratio counts, and the dashboard links to its runbooks.
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import sys
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from ops_support import DASHBOARD, REPO, RULE_FILES
from support import require_binary

from comet.core.demo_guild import FAN_SERVER_SEED
from comet.ops.dashboard_draw import draw
from comet.ops.dashboard_queries import (
    ALL_VALUES,
    PanelData,
    Series,
    data_panels,
    expand_query,
    is_instant,
    legend_text,
    load_dashboard,
    query_instant,
)
from comet.ops.dashboard_style import NAMED_COLOURS, format_value, threshold_colour
from comet.ops.demo_process import demo_environment
from comet.ops.local_http import answers_200, free_port, http_get, http_post_json, local_url
from comet.ops.processes import ManagedProcess, wait_until
from comet.ops.stack_config import PROMETHEUS_FEATURE_FLAGS

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
TEMPLATED_DATASOURCES = {"$datasource", "${datasource}"}


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return load_dashboard(DASHBOARD)


def _targets(dashboard: dict[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    return [(panel, target) for panel in data_panels(dashboard) for target in panel["targets"]]


def _exprs(dashboard: dict[str, Any]) -> list[tuple[dict[str, Any], str]]:
    return [(panel, target["expr"]) for panel, target in _targets(dashboard)]


def _panel(dashboard: dict[str, Any], title: str) -> dict[str, Any]:
    return next(panel for panel in data_panels(dashboard) if panel["title"] == title)


def _rules() -> list[dict[str, Any]]:
    return [r for path in RULE_FILES for g in yaml.safe_load(path.read_text())["groups"] for r in g["rules"]]


def _records() -> dict[str, str]:
    return {rule["record"]: rule["expr"] for rule in _rules() if "record" in rule}


# -- a PromQL reader, enough for the linter's target rules --------------------------------------------


@dataclass(frozen=True)
class Selector:
    """One vector selector of a PromQL expression: ``metric{matchers}[range]``."""

    metric: str | None
    matchers: tuple[tuple[str, str, str], ...]  # (label, operator, value as PromQL reads it)
    range: str | None
    calls: tuple[str, ...]  # the functions / aggregations around it, outermost first (not parentheses)

    def has(self, label: str, op: str, value: str) -> bool:
        return (label, op, value) in self.matchers

    def value_of(self, label: str) -> str | None:
        return next((v for name, _, v in self.matchers if name == label), None)


_TOKEN = re.compile(
    r"""(?P<space>\s+)
      | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
      | (?P<range>\[[^\]]*\])
      | (?P<duration>\d+(?:ms|[smhdwy])(?:\d+(?:ms|[smhdwy]))*\b)
      | (?P<number>0x[0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
      | (?P<ident>[A-Za-z_:][\w:]*)
      | (?P<op>=~|!~|==|!=|>=|<=|[-+*/%^<>=(){},@])""",
    re.VERBOSE,
)
#: Keywords followed by a list of label names, not selectors.
_LABEL_LISTS = {"by", "without", "on", "ignoring", "group_left", "group_right"}
_KEYWORDS = {"and", "or", "unless", "atan2", "bool", "offset", "inf", "nan"}
_AGGREGATIONS = {
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk", "topk",
    "quantile",
}  # fmt: skip


def _tokens(expr: str) -> list[tuple[str, str]]:
    tokens, pos = [], 0
    while pos < len(expr):
        match = _TOKEN.match(expr, pos)
        if match is None:
            raise ValueError(f"cannot read {expr[pos : pos + 20]!r} in {expr!r}")
        pos = match.end()
        kind = match.lastgroup or ""
        if kind != "space":
            tokens.append((kind, match.group()))
    return tokens


def _unquote(literal: str) -> str:
    inner = literal[1:-1]
    return inner if literal[0] == "`" else re.sub(r"\\(.)", r"\1", inner)


def selectors(expr: str) -> list[Selector]:
    """Every vector selector of ``expr`` (a Grafana target: variables only inside strings and ranges)."""
    tokens = _tokens(expr)
    found: list[Selector] = []
    calls: list[str | None] = []
    pending: str | None = None  # an aggregation waiting for its "(" after by/without (...)
    i = 0
    while i < len(tokens):
        kind, text = tokens[i]
        following = tokens[i + 1][1] if i + 1 < len(tokens) else ""
        if kind == "ident" and text in _LABEL_LISTS:
            i += 1
            if following == "(":
                while tokens[i][1] != ")":
                    i += 1
                i += 1
            continue
        if kind == "ident" and text.lower() in _KEYWORDS:
            i += 1
            continue
        if kind == "ident" and following == "(":
            calls.append(text)
            i += 2
            continue
        if kind == "ident" and text in _AGGREGATIONS:
            pending = text
            i += 1
            continue
        if text == "(":
            calls.append(pending)
            pending = None
            i += 1
            continue
        if text == ")":
            calls.pop()
            i += 1
            continue
        if kind == "ident" or text == "{":
            metric = text if kind == "ident" else None
            i += 1 if kind == "ident" else 0
            matchers: list[tuple[str, str, str]] = []
            if i < len(tokens) and tokens[i][1] == "{":
                i += 1
                while tokens[i][1] != "}":
                    label, op, value = tokens[i][1], tokens[i + 1][1], tokens[i + 2]
                    assert value[0] == "string", f"label {label} of {expr!r}: expected a string"
                    matchers.append((label, op, _unquote(value[1])))
                    i += 3
                    if tokens[i][1] == ",":
                        i += 1
                i += 1
            window = None
            if i < len(tokens) and tokens[i][0] == "range":
                window = tokens[i][1][1:-1]
                i += 1
            found.append(Selector(metric, tuple(matchers), window, tuple(c for c in calls if c is not None)))
            continue
        i += 1
    assert not calls, f"unbalanced parentheses in {expr!r}"
    return found


def test_the_promql_reader_finds_every_selector() -> None:
    """The linter rules below are only as good as this reader: it must find every selector."""
    expr = (
        'histogram_quantile(0.95, sum by (le) (rate(a_bucket{job=~"$job", x!~"1|2"}[$__rate_interval])))'
        ' / on (job, instance) group_left b:rec:rate5m or sum(c) by (le) > 0 and {__name__="d"}'
        ' unless topk(10, e{s="a\\\\.b"} offset 5m) * 2 - time()'
    )
    found = selectors(expr)
    assert [s.metric for s in found] == ["a_bucket", "b:rec:rate5m", "c", None, "e"]
    a, b, c, d, e = found
    assert a.matchers == (("job", "=~", "$job"), ("x", "!~", "1|2"))
    assert a.range == "$__rate_interval" and a.calls == ("histogram_quantile", "sum", "rate")
    assert b.calls == () and b.range is None
    assert c.calls == ("sum",)
    assert d.matchers == (("__name__", "=", "d"),)
    assert e.calls == ("topk",) and e.value_of("s") == "a\\.b"
    with pytest.raises(ValueError):
        selectors('sum(x{job="a"}[$__rate_interval]) + $oops')


# -- grafana/dashboard-linter's rules -----------------------------------------------------------------

#: Where one of the linter's rules does not apply, and why (the linter's .lint "exclusions"). Each
#: must still be needed: an exception that no longer excuses a violation fails the test.
LINT_EXCEPTIONS = {
    ("target-job-rule", 64): 'ALERTS{job=~"$job|"}: an alert without a job label (absent() gives none)'
    " shows whatever job is selected",
    ("target-instance-rule", 64): 'ALERTS{instance=~"$instance|"}: an alert without an instance label (one'
    " computed per job) shows whatever instances are selected",
    ("target-instance-rule", 81): "an SLO's error budget is per job (alerting/rules/slo.yml): no instance",
    ("target-instance-rule", 82): "an SLO's error budget is per job (alerting/rules/slo.yml): no instance",
}


def _violations(rule: str, found: dict[int, list[str]]) -> dict[int, list[str]]:
    """The violations not excused by LINT_EXCEPTIONS; fails on an exception that excuses nothing."""
    stale = [pid for (name, pid) in LINT_EXCEPTIONS if name == rule and pid not in found]
    assert not stale, f"{rule}: LINT_EXCEPTIONS for panels {stale} excuse nothing any more"
    return {pid: v for pid, v in found.items() if (rule, pid) not in LINT_EXCEPTIONS}


def test_template_datasource_rule(dashboard: dict[str, Any]) -> None:
    """template-datasource-rule, panel-datasource-rule: one Prometheus datasource variable, named
    ``datasource`` and labelled ``Data source``; every panel and every target uses it."""
    variables = [v for v in dashboard["templating"]["list"] if v["type"] == "datasource"]
    assert len(variables) == 1, variables
    assert variables[0]["name"] == "datasource" and variables[0]["label"] == "Data source"
    assert variables[0]["query"] == "prometheus"
    for panel, target in _targets(dashboard):
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert target["datasource"] == DATASOURCE, (panel["title"], target["refId"])


def _check_template(variable: dict[str, Any], name: str) -> None:
    """The linter's checkTemplate (label, datasource, query type, multi, allValue), and "All" offered."""
    assert variable["datasource"]["uid"] in TEMPLATED_DATASOURCES, name
    assert variable["type"] == "query", name
    assert variable["label"] == name.title(), name
    assert variable["multi"] and variable["includeAll"], name
    assert variable["allValue"] == ".+", name


def _label_values(variable: dict[str, Any]) -> tuple[Selector, str]:
    """The selector and label of a ``label_values(selector, label)`` variable query."""
    match = re.fullmatch(r"label_values\((.+), (\w+)\)", variable["query"]["query"])
    assert match, variable["query"]
    assert variable["definition"] == variable["query"]["query"]
    (selector,) = selectors(match.group(1))
    return selector, match.group(2)


def test_template_job_and_instance_rules(dashboard: dict[str, Any]) -> None:
    """template-job-rule, template-instance-rule: ``job`` and ``instance`` variables, Prometheus queries
    on the templated datasource, multi-value with All = ``.+``; instance depends on job, shard on
    both. They list the targets that are the bot (comet_build_info), never Prometheus itself."""
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert set(variables) == {"datasource", "job", "instance", "shard"}
    for name in ("job", "instance", "shard"):
        _check_template(variables[name], name)
        assert variables[name]["refresh"] == 2, f"{name}: refreshed on time range change"
    job, label = _label_values(variables["job"])
    assert (job.metric, job.matchers, label) == ("comet_build_info", (), "job")
    instance, label = _label_values(variables["instance"])
    assert (instance.metric, instance.matchers) == ("comet_build_info", (("job", "=~", "$job"),))
    assert label == "instance"
    shard, label = _label_values(variables["shard"])
    assert shard.has("job", "=~", "$job") and shard.has("instance", "=~", "$instance") and label == "shard"
    # The order matters to Grafana: a variable is refreshed after the ones it depends on.
    order = [v["name"] for v in dashboard["templating"]["list"]]
    assert order.index("datasource") < order.index("job") < order.index("instance") < order.index("shard")
    shard_panels = [p["title"] for p, e in _exprs(dashboard) if '"$shard"' in e]
    assert "Gateway latency per shard" in shard_panels


def test_the_renderers_all_values_are_the_dashboards() -> None:
    dashboard = load_dashboard(DASHBOARD)
    all_values = {v["name"]: v["allValue"] for v in dashboard["templating"]["list"] if v.get("includeAll")}
    assert all_values == ALL_VALUES


@pytest.mark.parametrize("label", ["job", "instance"])
def test_target_job_and_instance_rules(dashboard: dict[str, Any], label: str) -> None:
    """target-job-rule, target-instance-rule: every selector of every target, the recording-rule ones
    included, has ``job=~"$job"`` and ``instance=~"$instance"``."""
    found: dict[int, list[str]] = {}
    for panel, expr in _exprs(dashboard):
        for selector in selectors(expr):
            if not selector.has(label, "=~", f"${label}"):
                found.setdefault(panel["id"], []).append(f"{selector.metric}: {expr}")
    assert not _violations(f"target-{label}-rule", found)


def test_target_rate_interval_rule(dashboard: dict[str, Any]) -> None:
    """target-rate-interval-rule: the range of every rate(), irate() and increase() is $__rate_interval.
    Panels that need a fixed window read a recording rule that carries it (name ``...:rate5m``)."""
    checked = 0
    for panel, expr in _exprs(dashboard):
        for selector in selectors(expr):
            if selector.calls and selector.calls[-1] in {"rate", "irate", "increase"}:
                checked += 1
                assert selector.range == "$__rate_interval", (panel["title"], expr)
            elif selector.range is not None:  # e.g. last_over_time(...[1h]): not a rate
                assert selector.calls and selector.calls[-1].endswith("_over_time"), (panel["title"], expr)
    assert checked > 10


#: Grafana's unit ids of the categories this dashboard can use (misc, data, time, throughput, boolean;
#: Grafana: packages/grafana-data/src/valueFormats/categories.ts). Add one when a panel needs it.
GRAFANA_UNITS = {
    "none", "string", "short", "percent", "percentunit", "sci", "locale",
    "bits", "bytes", "kbytes", "mbytes", "gbytes", "decbits", "decbytes", "deckbytes", "decmbytes",
    "decgbytes", "Bps", "bps", "binBps", "binbps", "pps",
    "ns", "µs", "ms", "s", "m", "h", "d", "dtdurationms", "dtdurations", "dthms", "dtdhms", "clockms",
    "clocks", "hertz", "dateTimeAsIso", "dateTimeFromNow",
    "ops", "reqps", "rps", "wps", "iops", "cps", "opm", "rpm", "wpm", "cpm",
    "bool", "bool_yes_no", "bool_on_off",
}  # fmt: skip


def test_panel_units_rule(dashboard: dict[str, Any]) -> None:
    """panel-units-rule: every stat, gauge, bar gauge, time series and table panel has a real unit
    (an override's unit must be real too)."""
    for panel in data_panels(dashboard):
        if panel["type"] not in {"stat", "gauge", "bargauge", "timeseries", "table", "graph"}:
            continue
        units = [panel["fieldConfig"]["defaults"].get("unit")] + [
            prop["value"]
            for override in panel["fieldConfig"].get("overrides", [])
            for prop in override.get("properties", [])
            if prop["id"] == "unit"
        ]
        assert all(unit in GRAFANA_UNITS for unit in units), (panel["title"], units)


def test_panel_title_description_rule(dashboard: dict[str, Any]) -> None:
    """panel-title-description-rule, for every panel; and ours: the description says what healthy
    looks like ("Healthy: ..."), so that a reader can tell a bad value from a good one."""
    for panel in dashboard["panels"]:
        assert panel.get("title", "").strip(), panel["id"]
    for panel in data_panels(dashboard):
        description = panel.get("description", "").strip()
        assert len(description) > 40, panel["title"]
        assert re.search(r"Healthy: \S.{4,}", description), f"{panel['title']}: no 'Healthy: ...'"


# -- ours ---------------------------------------------------------------------------------------------


def test_top_k_panels_are_instant_queries(dashboard: dict[str, Any]) -> None:
    """topk() of a range query is the top k of each step: over an hour, many more than k bars."""
    top = [(panel, target) for panel, target in _targets(dashboard) if "topk(" in target["expr"]]
    assert {panel["title"] for panel, _ in top} >= {
        "Slowest commands (p95 over 5m)", "Busiest commands (per second over 5m)",
    }  # fmt: skip
    for panel, target in top:
        assert panel["type"] == "bargauge", panel["title"]
        assert target["instant"] is True and target["range"] is False, panel["title"]
        assert is_instant(target)
    # Every other instant query is a table (the firing alerts: now, not over time).
    for panel, target in _targets(dashboard):
        if is_instant(target) and "topk(" not in target["expr"]:
            assert panel["type"] == "table", panel["title"]


def _scrape_interval_ms() -> int:
    (path,) = (REPO / "dashboards" / "provisioning" / "datasources").glob("*.yml")
    (source,) = yaml.safe_load(path.read_text())["datasources"]
    match = re.fullmatch(r"(\d+)s", source["jsonData"]["timeInterval"])
    assert match, source["jsonData"]
    return int(match.group(1)) * 1000


def test_no_line_is_drawn_across_a_gap(dashboard: dict[str, Any]) -> None:
    """spanNulls true (or a span longer than a scrape interval) draws a straight line over an outage:
    a dead bot would look like a calm one. Off, or shorter than one scrape."""
    scrape_ms = _scrape_interval_ms()
    seen = 0
    for panel in data_panels(dashboard):
        defaults = panel["fieldConfig"]["defaults"]
        values = [defaults.get("custom", {}).get("spanNulls")] + [
            prop["value"]
            for override in panel["fieldConfig"].get("overrides", [])
            for prop in override.get("properties", [])
            if prop["id"] == "custom.spanNulls"
        ]
        for value in values:
            if value is None:
                continue
            seen += 1
            assert value is False or (type(value) is int and 0 <= value < scrape_ms), (panel["title"], value)
        if panel["type"] == "timeseries":
            assert defaults["custom"]["spanNulls"] is False, panel["title"]
    assert seen >= 20


def _recorded_quantiles_and_ratios() -> set[str]:
    return {name for name, expr in _records().items() if "histogram_quantile" in expr or "/" in expr}


def test_quantiles_and_ratios_aggregate_the_selected_instances(dashboard: dict[str, Any]) -> None:
    """A quantile across instances is the quantile of their summed buckets; a ratio across instances
    is their sums divided. Neither is the max (or mean) of the instances' own quantiles or ratios."""
    records = _records()
    per_instance = _recorded_quantiles_and_ratios()
    assert "instance:comet_command_duration_seconds:p95_5m" in per_instance
    for panel, expr in _exprs(dashboard):
        # A recorded quantile or ratio is shown per instance as it is (topk picks, it merges nothing).
        for selector in selectors(expr):
            if selector.metric in per_instance:
                assert set(selector.calls) <= {"topk"}, (panel["title"], expr)
        # histogram_quantile(q, sum by (le...) (bucket rates)), never grouped by instance.
        for match in re.finditer(r"histogram_quantile\(", expr):
            grouping = re.match(r"histogram_quantile\([\d.]+, sum by \(([\w, ]+)\) \(", expr[match.start() :])
            assert grouping, (panel["title"], expr)
            labels = {label.strip() for label in grouping.group(1).split(",")}
            assert "le" in labels and not labels & {"job", "instance"}, (panel["title"], expr)
        for selector in selectors(expr):
            if "histogram_quantile" not in selector.calls:
                continue
            if selector.metric in records:  # bucket rates recorded per instance, le kept
                assert "histogram_quantile" not in records[selector.metric], selector.metric
                rate = r"sum by \([\w, ]*\ble\) \(rate\(\w+_bucket\[\w+\]\)\)"
                assert re.fullmatch(rate, records[selector.metric]), records[selector.metric]
            else:
                assert selector.metric and selector.metric.endswith("_bucket"), (panel["title"], expr)
                assert selector.calls[-1] == "rate", (panel["title"], expr)
    latency = _panel(dashboard, "Command latency p50 / p95 / p99")
    bucket_sources = {
        s.metric for t in latency["targets"] if not t.get("exemplar") for s in selectors(t["expr"])
    }
    assert bucket_sources == {"instance_command_le:comet_command_duration_seconds_bucket:rate5m"}
    # ... and one query on the raw histogram, for its exemplars (recording rules carry none).
    (exemplars,) = [t for t in latency["targets"] if t.get("exemplar")]
    assert {s.metric for s in selectors(exemplars["expr"])} == {"comet_command_duration_seconds_bucket"}
    # The error ratio: the selected instances' failures summed, over their commands summed.
    (ratio,) = _panel(dashboard, "Error ratio")["targets"]
    numerator, denominator = ratio["expr"].split(" / ")
    (failures,) = selectors(numerator)
    (commands,) = selectors(denominator)
    assert failures.metric == commands.metric == "instance_outcome:comet_commands:rate5m"
    assert failures.calls == commands.calls == ("sum",)
    assert failures.has("outcome", "=", "error") and commands.value_of("outcome") is None
    assert denominator.endswith("> 0)"), "no 0/0 = NaN line for an idle selection"


def _user_mistake_classes() -> set[str]:
    """The ``error`` label values the hooks give invocations whose outcome is not ``error``: every
    discord.py command exception class that instrumentation.invocations.outcome_of maps elsewhere."""
    from discord import app_commands
    from discord.ext import commands

    from instrumentation.invocations import outcome_of
    from instrumentation.metrics import ERROR_NAMES

    outcomes: dict[str, set[str]] = {}
    for module in (commands.errors, app_commands.errors):
        for name in module.__all__:
            cls = getattr(module, name)
            if isinstance(cls, type) and issubclass(cls, BaseException) and name in ERROR_NAMES:
                # outcome_of only asks isinstance(): an instance without __init__ answers the same.
                outcomes.setdefault(name, set()).add(outcome_of(cls.__new__(cls)))
    ambiguous = {name: o for name, o in outcomes.items() if len(o) > 1}
    assert not ambiguous, f"one error label, several outcomes: {ambiguous}"
    return {name for name, (outcome,) in outcomes.items() if outcome != "error"}


def test_errors_by_exception_counts_the_failures_of_the_error_ratio(dashboard: dict[str, Any]) -> None:
    """comet_command_errors_total counts user mistakes too (instrumentation/commands.py): the
    panel reads a recording rule that leaves out exactly their classes."""
    mistakes = _user_mistake_classes()
    assert {"BadArgument", "CheckFailure", "CommandOnCooldown", "CommandNotFound"} <= mistakes
    assert not {"HTTPException", "Forbidden", "NotFound", "other"} & mistakes
    (target,) = _panel(dashboard, "Errors by exception")["targets"]
    ((name, calls),) = {(s.metric, s.calls) for s in selectors(target["expr"])}
    assert calls == ("sum",)
    (source,) = selectors(_records()[name])
    assert source.metric == "comet_command_errors_total" and source.calls == ("sum", "rate")
    (excluded,) = [value for label, op, value in source.matchers if (label, op) == ("error", "!~")]
    assert set(excluded.split("|")) == mistakes, set(excluded.split("|")) ^ mistakes
    raw = [p["title"] for p, e in _exprs(dashboard) if "comet_command_errors_total" in e]
    assert not raw, f"read without the filter: {raw}"


def test_panels_read_the_recording_rules_instead_of_computing_them_again(dashboard: dict[str, Any]) -> None:
    """What alerting/rules/ computes all the time, no panel computes again from the raw series; and
    every recorded series is read (by a panel, an alert or another rule)."""
    rules = _rules()
    records = _records()
    sources = {name for expr in records.values() for name in re.findall(r"\bcomet_\w+", expr)}
    assert {"comet_commands_total", "comet_command_duration_seconds_bucket",
            "comet_command_errors_total"} <= sources, sources  # fmt: skip
    # A query for exemplars reads the raw histogram on purpose: recording rules carry no exemplars.
    readers = [target["expr"] for _, target in _targets(dashboard) if not target.get("exemplar")]
    for source in sources:  # (a recorded name such as level:<source>:rate5m is not the source)
        assert not any(_reads(expr, source) for expr in readers), f"a panel recomputes a recorded {source}"

    readers = [expr for _, expr in _exprs(dashboard)]

    def read(name: str) -> bool:
        others = [rule["expr"] for rule in rules if rule.get("record") != name]
        return any(_reads(expr, name) for expr in [*readers, *others])

    unread = [name for name in records if not read(name)]
    assert not unread, f"recorded but never read: {unread}"


def _reads(expr: str, name: str) -> bool:
    return re.search(rf"(?<![\w:]){re.escape(name)}(?![\w:])", expr) is not None


def test_panels_cover_the_issue(dashboard: dict[str, Any]) -> None:
    titles = {panel["title"] for panel in data_panels(dashboard)}
    expected = {
        "Ready", "Uptime", "Guilds", "Shards up", "Command rate by command",
        "Command latency p50 / p95 / p99", "Error ratio", "Slowest commands (p95 over 5m)",
        "Busiest commands (per second over 5m)", "Errors by exception", "Latency by instance",
        "Error ratio by instance",
        "Gateway latency per shard", "Gateway events by type", "Disconnects and resumes", "Event-loop lag",
        "Event-loop blocks", "CPU", "Memory", "Threads and file descriptors", "Garbage collection",
        "Log records by level", "Firing alerts", "Storage time (p95)", "Automod actions",
    }  # fmt: skip
    assert expected <= titles, expected - titles
    exprs = " ".join(e for _, e in _exprs(dashboard))
    # Command latency p50/p95/p99 (across instances, and per instance), storage p95.
    for needle in ("instance_command_le:comet_command_duration_seconds_bucket:rate5m",
                   "instance:comet_command_duration_seconds:p50_5m",
                   "instance:comet_command_duration_seconds:p95_5m",
                   "instance:comet_command_duration_seconds:p99_5m", "histogram_quantile(0.95,",
                   'function=~"storage\\\\..*"', "comet_automod_actions_total", "ALERTS{",
                   "instance_command:comet_command_duration_seconds:p95_5m"):  # fmt: skip
        assert needle in exprs, needle


def _dashboards() -> dict[str, dict[str, Any]]:
    """The dashboards Grafana is provisioned with (every JSON file of dashboards/), by uid."""
    boards = [json.loads(path.read_text()) for path in (REPO / "dashboards").glob("*.json")]
    return {board["uid"]: board for board in boards}


def _linked_panel(url: str) -> dict[str, Any] | None:
    """Check a link and return the panel it opens, if any. Either a dashboard of this Grafana
    (``/d/<uid>/<slug>[?viewPanel=<id>]``, the dashboard and panel provisioned from dashboards/).
    No link leaves this Grafana: the repository's URL is not known to the product, and the runbooks
    dashboard serves docs/operations.md."""
    parsed = urllib.parse.urlparse(url)
    if parsed.path.startswith("/d/"):
        uid = parsed.path.split("/")[2]
        assert uid in _dashboards(), f"{url}: no provisioned dashboard {uid}"
        (panel_id,) = urllib.parse.parse_qs(parsed.query).get("viewPanel", [None])
        if panel_id is None:
            return None
        panels = {p["id"]: p for p in _dashboards()[uid]["panels"]}
        assert int(panel_id) in panels, f"{url}: no panel {panel_id} in {uid}"
        return panels[int(panel_id)]
    raise AssertionError(f"{url}: not a dashboard of this Grafana")


def test_dashboard_links_to_the_runbooks_and_docs(dashboard: dict[str, Any]) -> None:
    """The runbooks as this Grafana serves them (dashboards/comet-runbooks.json, one panel per alert,
    generated from docs/operations.md)."""
    links = dashboard["links"]
    for link in links:
        assert link["type"] == "link" and link["title"] and link["targetBlank"], link
        assert _linked_panel(link["url"]) is None, link
    urls = [urllib.parse.urlparse(link["url"]) for link in links]
    assert any(u.path.startswith("/d/") and "runbooks" in u.path and not u.query for u in urls), urls
    # A panel that names an alert links to that alert's runbook panel, and "Runbook: X" opens X's.
    alerts = {rule["alert"] for rule in _rules() if "alert" in rule}
    linked_runbooks = 0
    for panel in data_panels(dashboard):
        named = set(re.findall(r"\b(Comet[A-Z]\w+)", panel["description"])) & alerts
        linked = set()
        for link in panel.get("links", []):
            opened = _linked_panel(link["url"])
            match = re.fullmatch(r"Runbook: (\w+)", link["title"])
            if match:
                assert match.group(1) in alerts, link
                assert opened is not None and opened["title"] == match.group(1), link
                linked.add(match.group(1))
        assert named <= linked, (panel["title"], named - linked)
        linked_runbooks += len(linked)
    assert linked_runbooks >= 10


def test_panel_ids_are_unique_and_stable(dashboard: dict[str, Any]) -> None:
    ids = [panel["id"] for panel in dashboard["panels"]] + [
        p["id"] for row in dashboard["panels"] for p in row.get("panels", [])
    ]
    assert len(ids) == len(set(ids)), ids
    assert all(isinstance(i, int) and i > 0 for i in ids)
    assert dashboard["uid"] == "comet-overview"
    # Ids are written in the file (Grafana would renumber missing ones, breaking links to panels).
    assert json.loads(DASHBOARD.read_text())["panels"][0]["id"] == 1


def test_panels_do_not_overlap(dashboard: dict[str, Any]) -> None:
    cells: dict[tuple[int, int], str] = {}
    for panel in dashboard["panels"]:
        g = panel["gridPos"]
        assert 0 <= g["x"] and g["x"] + g["w"] <= 24, panel["title"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]


# -- the renderer's pieces ----------------------------------------------------------------------------


def test_expand_query_fills_grafana_variables() -> None:
    expr = 'sum(rate(x{job=~"$job", instance=~"$instance", shard=~"${shard}"}[$__rate_interval]))'
    assert expand_query(expr, rate_interval="10s") == (
        'sum(rate(x{job=~".+", instance=~".+", shard=~".+"}[10s]))'
    )
    one = expand_query(expr, rate_interval="1m", variables={"instance": "bot:9108"})
    assert 'job=~".+", instance=~"bot:9108"' in one
    with pytest.raises(KeyError, match="unknown dashboard variable"):
        expand_query("up{job=$jobs}", rate_interval="1m")


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


# -- two shard processes behind one Prometheus ----------------------------------------------------------


def bucket_quantile(q: float, buckets: dict[float, float]) -> float:
    """Prometheus' histogram_quantile for one histogram (upper bound -> cumulative count)."""
    bounds = sorted(buckets)
    counts = [buckets[b] for b in bounds]
    for i in range(1, len(counts)):  # ensureMonotonic
        counts[i] = max(counts[i], counts[i - 1])
    assert math.isinf(bounds[-1]) and len(bounds) >= 2
    observations = counts[-1]
    if observations == 0:
        return math.nan
    rank = q * observations
    b = next((i for i in range(len(bounds) - 1) if counts[i] >= rank), len(bounds) - 1)
    if b == len(bounds) - 1:
        return bounds[-2]
    if b == 0 and bounds[0] <= 0:
        return bounds[0]
    start, count = 0.0, counts[b]
    if b > 0:
        start = bounds[b - 1]
        count -= counts[b - 1]
        rank -= counts[b - 1]
    return start + (bounds[b] - start) * (rank / count)


def test_bucket_quantile_is_prometheus_arithmetic() -> None:
    # The promtool case of alerting/tests/dashboard_test.yml: 90 + 30 a minute, p95 = 0.9 s.
    merged = {0.05: 1.5, 0.5: 1.5, 1.0: 2.0, math.inf: 2.0}
    assert bucket_quantile(0.95, merged) == 0.8999999999999999
    assert bucket_quantile(0.95, {0.05: 0.0, 0.5: 0.0, 1.0: 0.5, math.inf: 0.5}) == 0.975
    assert bucket_quantile(1.0, {1.0: 1.0, math.inf: 2.0}) == 1.0  # in +Inf: the last finite bound
    assert math.isnan(bucket_quantile(0.5, {1.0: 0.0, math.inf: 0.0}))


@dataclass
class Shards:
    prometheus: str
    emulator: str
    bots: dict[str, ManagedProcess]  # instance ("127.0.0.1:port") -> its process
    guilds: dict[str, dict[str, Any]]  # instance -> a guild on its shard

    def query(self, expr: str, at: float) -> list[dict[str, Any]]:
        """``expr`` at ``at``: each result's labels (``metric``) and its ``value`` as a float."""
        return [{"metric": r["metric"], "value": float(r["values"][0][1])}
                for r in query_instant(self.prometheus, expr, at=at)]  # fmt: skip

    def panel(self, dashboard: dict[str, Any], title: str, at: float, **variables: str) -> list[Any]:
        """Each target of a panel, as Grafana sends it, evaluated at ``at``."""
        return [self.query(expand_query(t["expr"], rate_interval="10s", variables=variables), at)
                for t in _panel(dashboard, title)["targets"] if not t.get("exemplar")]  # fmt: skip

    def command(self, instance: str, content: str) -> None:
        """Send ``content`` in the guild of ``instance``'s shard and wait for the bot's answer."""
        guild = self.guilds[instance]
        channel, author = guild["channel_ids"][0], guild["member_ids"][0]
        control = f"{self.emulator}/_control"
        sent = {"channel_id": channel, "author_id": author, "content": content}
        status, message = http_post_json(f"{control}/messages", sent)
        assert status == 200, message
        wait = {"channel_id": channel, "after": message["id"], "timeout": 4}
        status, reply = http_post_json(f"{control}/wait-reply", wait)
        assert status == 200, (content, reply)


def _read_json_line(process: ManagedProcess) -> dict[str, Any]:
    found: list[dict[str, Any]] = []

    def printed() -> bool:
        for line in process.log_path.read_text(errors="replace").splitlines():
            if line.startswith("{") and "gateway_url" in line:
                found.append(json.loads(line))
                return True
        return False

    wait_until(printed, timeout=30, what=f"{process.name}'s addresses", alive=process.problem)
    return found[0]


@pytest.fixture
def two_shards(tmp_path: Path) -> Iterator[Shards]:
    """A standalone emulator with 2 shards; two ``python -m comet run`` processes, shard 0 and shard 1,
    each with its own /metrics; a Prometheus scraping both (job comet-shards, 1 s) with the
    repository's rule files, and itself (its own process_* must stay out of the bot's panels)."""
    prometheus_bin = require_binary("prometheus")
    from discord_emulator.testing.client import TEST_TOKEN

    processes: list[ManagedProcess] = []
    try:
        emulator = ManagedProcess(
            "emulator",
            [sys.executable, "-m", "discord_emulator", "--seed", FAN_SERVER_SEED, "--port", "0",
             "--shards", "2"],
            log_path=tmp_path / "emulator.out", env={**os.environ, "PYTHONUNBUFFERED": "1"}, cwd=REPO,
        )  # fmt: skip
        processes.append(emulator)
        emulator.start()
        info = _read_json_line(emulator)
        # A guild on each shard ((guild id >> 22) % shard count), before the bots connect.
        on_shard: dict[int, dict[str, Any]] = {}
        for i in range(40):
            status, guild = http_post_json(f"{info['url']}/_control/guilds", {"name": f"g{i}", "members": 1})
            assert status == 200, guild
            on_shard.setdefault((int(guild["guild_id"]) >> 22) % 2, guild)
            if len(on_shard) == 2:
                break
        assert len(on_shard) == 2, "no guild landed on one of the shards"
        bots: dict[str, ManagedProcess] = {}
        guilds: dict[str, dict[str, Any]] = {}
        for shard in (0, 1):
            port = free_port()
            env = demo_environment(os.environ, {
                "COMET_TOKEN": TEST_TOKEN, "COMET_DISCORD_API_BASE": info["api_base"],
                "COMET_DISCORD_GATEWAY_URL": info["gateway_url"], "COMET_SHARD_COUNT": "2",
                "COMET_SHARD_IDS": str(shard), "COMET_METRICS_HOST": "127.0.0.1",
                "COMET_METRICS_PORT": str(port),
                "COMET_EXTENSIONS": "comet.features.cogs.monitoring,comet.features.cogs.demo",
                "COMET_DATABASE_PATH": str(tmp_path / f"shard{shard}.db"),
                "COMET_LOG_PATH": str(tmp_path / f"shard{shard}.log"), "PYTHONUNBUFFERED": "1",
            })  # fmt: skip
            argv = [sys.executable, "-m", "comet", "--env-file", str(tmp_path / "no-such.env"), "run"]
            log = tmp_path / f"shard{shard}.out"
            bot = ManagedProcess(f"shard {shard}", argv, log_path=log, env=env, cwd=REPO)
            processes.append(bot)
            bot.start()
            instance = f"127.0.0.1:{port}"
            bots[instance], guilds[instance] = bot, on_shard[shard]
        prometheus_port = free_port()
        # The scrape jobs of prometheus.yml that matter here (the shard processes' job name, Prometheus
        # itself) and the repository's rule files as they are; no Alertmanager.
        config = tmp_path / "prometheus.yml"
        config.write_text(yaml.safe_dump({
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(path) for path in RULE_FILES],
            "scrape_configs": [
                {"job_name": "comet-shards", "static_configs": [{"targets": list(bots)}]},
                {"job_name": "prometheus", "static_configs": [{"targets": [f"127.0.0.1:{prometheus_port}"]}]},
            ],
        }))  # fmt: skip
        prometheus = ManagedProcess("prometheus", [
            prometheus_bin, f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'prometheus-data'}",
            f"--web.listen-address=127.0.0.1:{prometheus_port}", *PROMETHEUS_FEATURE_FLAGS,
        ], log_path=tmp_path / "prometheus.log")  # fmt: skip
        processes.append(prometheus)
        prometheus.start()
        for instance, bot in bots.items():
            wait_until(answers_200(f"http://{instance}/readyz"), timeout=60, what=f"{bot.name} ready",
                       alive=bot.problem)  # fmt: skip
        url = local_url(prometheus_port)
        wait_until(answers_200(f"{url}/-/ready"), timeout=30, what="Prometheus", alive=prometheus.problem)
        shards = Shards(url, info["url"], bots, guilds)

        def both_scraped() -> bool:
            up = shards.query('up{job="comet-shards"} == 1', time.time())
            return {r["metric"]["instance"] for r in up} == set(bots)

        wait_until(both_scraped, timeout=30, what="Prometheus to scrape both shard processes",
                   alive=prometheus.problem)  # fmt: skip
        yield shards
    finally:
        for process in reversed(processes):
            process.stop()


def _by_instance(result: list[dict[str, Any]]) -> dict[str, float]:
    return {r["metric"]["instance"]: r["value"] for r in result}


def _one_value(result: list[dict[str, Any]]) -> float:
    assert len(result) == 1, f"expected one series across both shards, got {[r['metric'] for r in result]}"
    assert not {"instance", "job"} & set(result[0]["metric"]), result[0]["metric"]
    return result[0]["value"]


@pytest.mark.ops
@pytest.mark.slow
@pytest.mark.timeout(120)
def test_two_shard_processes_aggregate_into_one_series(two_shards: Shards, dashboard: dict[str, Any]) -> None:
    """Shard 0 only answers quick pings; shard 1 also does slow work, fails and gets bad arguments. The
    latency and error-ratio panels show ONE series each, the quantile of the summed buckets and the
    sum of failures over the sum of commands, between the two processes' own values (the largest
    would overstate both); "Errors by exception" shows the failure, not the user mistake."""
    shards = two_shards
    fast, slow = sorted(shards.bots, key=lambda i: shards.bots[i].name)  # shard 0, shard 1
    buckets = "instance_command_le:comet_command_duration_seconds_bucket:rate5m"
    errors = "instance_error:comet_command_errors_failures:rate5m"

    def traffic_counted() -> bool:
        for _ in range(3):
            shards.command(fast, "!ping")
        for content in ("!ping", "!work 0.3", "!work 0.3", "!boom", "!boom", "!work many"):
            shards.command(slow, content)
        now = time.time()
        failures = _by_instance(shards.query(f'{errors}{{error="other"}} > 0', now))
        ratios = _by_instance(shards.query("instance:comet_commands:error_ratio_rate5m", now))
        work = (
            f'{buckets}{{command="work", le="0.25"}} < on (instance) {buckets}{{command="work", le="+Inf"}}'
        )
        slow_work = shards.query(work, now)
        mistakes = shards.query('comet_command_errors_total{error="BadArgument"}', now)
        # And both processes' bucket rates (the recording rule needs two scrapes of each).
        histograms = _by_instance(shards.query(buckets, now))
        return (set(ratios) == set(shards.bots) and ratios[slow] > 0 and slow in failures and bool(slow_work)
                and bool(mistakes) and set(histograms) == set(shards.bots))  # fmt: skip

    wait_until(traffic_counted, timeout=45, interval=0.1, what="both shards' commands in the recording rules")
    at = time.time()

    # Latency: one series per quantile, the quantile of both processes' buckets summed.
    per_instance: dict[str, dict[float, float]] = {}
    for r in shards.query(buckets, at):
        histogram = per_instance.setdefault(r["metric"]["instance"], {})
        le = float(r["metric"]["le"])
        histogram[le] = histogram.get(le, 0.0) + r["value"]
    assert set(per_instance) == set(shards.bots)
    merged = {le: sum(h.get(le, 0.0) for h in per_instance.values()) for le in per_instance[fast]}
    p50, p95, p99 = (_one_value(r) for r in shards.panel(dashboard, "Command latency p50 / p95 / p99", at))
    for q, shown in ((0.5, p50), (0.95, p95), (0.99, p99)):
        assert math.isclose(shown, bucket_quantile(q, merged), rel_tol=1e-9), (q, shown, merged)
    own_p95 = {i: bucket_quantile(0.95, h) for i, h in per_instance.items()}
    assert own_p95[fast] <= p95 < own_p95[slow], (p95, own_p95)

    # Error ratio: one series, sum of failures over sum of commands.
    outcomes = "instance_outcome:comet_commands:rate5m"
    failed = _by_instance(shards.query(f'sum by (instance) ({outcomes}{{outcome="error"}})', at))
    total = _by_instance(shards.query(f"sum by (instance) ({outcomes})", at))
    (shown,) = (_one_value(r) for r in shards.panel(dashboard, "Error ratio", at))
    assert math.isclose(shown, sum(failed.values()) / sum(total.values()), rel_tol=1e-9), (failed, total)
    own = {i: failed[i] / total[i] for i in total}
    assert own[fast] == 0 < shown < own[slow], (shown, own)
    # ... and with one instance selected (as Grafana escapes a selected value), that instance's ratio.
    (only_slow,) = shards.panel(dashboard, "Error ratio", at, instance=grafana_regex_escape(slow))
    assert math.isclose(_one_value(only_slow), own[slow], rel_tol=1e-9)

    # Errors by exception: the failure (DemoFailure is of no known class: "other"), no user mistake.
    (by_error,) = shards.panel(dashboard, "Errors by exception", at)
    shown_classes = {r["metric"]["error"] for r in by_error}
    assert "other" in shown_classes and not shown_classes & _user_mistake_classes(), shown_classes
    assert shards.query('comet_command_errors_total{error="BadArgument"}', at), "no mistake to leave out"

    # The top-10 panels: one bar per command across both processes (ping ran on both).
    (busiest,) = shards.panel(dashboard, "Busiest commands (per second over 5m)", at)
    commands = [r["metric"]["command"] for r in busiest]
    assert len(commands) == len(set(commands)) and "ping" in commands, commands
    ping = _by_instance(shards.query('instance_command:comet_commands:rate5m{command="ping"}', at))
    assert set(ping) == set(shards.bots)
    (bar,) = [r["value"] for r in busiest if r["metric"]["command"] == "ping"]
    assert math.isclose(bar, sum(ping.values()), rel_tol=1e-9)
    (slowest,) = shards.panel(dashboard, "Slowest commands (p95 over 5m)", at)
    assert len({r["metric"]["command"] for r in slowest}) == len(slowest) > 0

    # Memory: the two bots' RSS, not Prometheus' own (it is scraped, and has process_* too).
    rss = shards.query("process_resident_memory_bytes", at)
    assert {r["metric"]["job"] for r in rss} >= {"comet-shards", "prometheus"}
    resident, _ = shards.panel(dashboard, "Memory", at)
    bots_rss = sum(r["value"] for r in rss if r["metric"]["job"] == "comet-shards")
    assert _one_value(resident) == bots_rss

    # The variables list the two bot processes, not Prometheus; a job or an instance that nobody runs
    # empties every panel (but those a LINT_EXCEPTIONS entry lets show more).
    assert _label_values_now(shards, "job", "comet_build_info") == ["comet-shards"]
    assert set(_label_values_now(shards, "instance", 'comet_build_info{job=~".+"}')) == set(shards.bots)
    for label in ("job", "instance"):
        excused = {pid for rule, pid in LINT_EXCEPTIONS if rule == f"target-{label}-rule"}
        for panel in data_panels(dashboard):
            if panel["id"] not in excused:
                results = shards.panel(dashboard, panel["title"], at, **{label: "nobody"})
                assert not any(results), f"{panel['title']} shows data for {label} 'nobody'"

    # A shard process that stops answering: not READY, its shard down (the process is still a target).
    (ready,) = shards.panel(dashboard, "Ready", at)
    assert _one_value(ready) == 1
    shards.bots[slow].process.send_signal(signal.SIGKILL)  # type: ignore[union-attr]
    wait_until(lambda: bool(shards.query(f'up{{instance="{slow}"}} == 0', time.time())), timeout=20,
               what="Prometheus to see the shard process down")  # fmt: skip
    now = time.time()
    (ready,) = shards.panel(dashboard, "Ready", now)
    up, total_shards = shards.panel(dashboard, "Shards up", now)
    assert (_one_value(ready), _one_value(up), _one_value(total_shards)) == (0, 1, 2)


def grafana_regex_escape(value: str) -> str:
    """A selected value as Grafana writes it into a Prometheus regex (its prometheusSpecialRegexEscape)."""
    return re.sub(r"([\\$^*{}\[\]'+?.()|])", r"\\\\\1", value)


def _label_values_now(shards: Shards, label: str, match: str) -> list[str]:
    """What a ``label_values(match, label)`` variable lists (Grafana asks the label values API)."""
    query = urllib.parse.urlencode({"match[]": match, "start": f"{time.time() - 300:.0f}"})
    status, body = http_get(f"{shards.prometheus}/api/v1/label/{label}/values?{query}")
    assert status == 200, body
    values: list[str] = json.loads(body)["data"]
    return values


def test_stat_values_are_coloured_by_their_thresholds_like_grafana() -> None:
    # An overspent error budget must not be drawn green (it was, before the renderer read thresholds).
    panel = {"fieldConfig": {"defaults": {"thresholds": {"mode": "absolute", "steps": [
        {"color": "red", "value": None}, {"color": "orange", "value": 0}, {"color": "green", "value": 0.25},
    ]}}}}  # fmt: skip
    assert threshold_colour(-3.85, panel) == NAMED_COLOURS["red"]
    assert threshold_colour(0.1, panel) == NAMED_COLOURS["orange"]
    assert threshold_colour(0.25, panel) == NAMED_COLOURS["green"]
    assert threshold_colour(float("nan"), panel) is None
