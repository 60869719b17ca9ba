"""Against the real thing: the offline demo scraped by a real Prometheus (1 s), a real Alertmanager.

One stack for all of these (``live_stack``, session-scoped in conftest.py). Every wait is on a
condition with a deadline (polling Prometheus' API, or a receiver that is notified), never a sleep.
"""

from __future__ import annotations

import json
import re
import struct
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from ops_support import DASHBOARD, REPO, RULE_FILES, LiveStack, newest_exemplar

from comet.core.demo import EVERYDAY
from comet.core.demo_guild import DEMO
from comet.ops.dashboard_draw import draw
from comet.ops.dashboard_queries import PanelData, collect, data_panels, load_dashboard
from comet.ops.local_http import http_get
from comet.ops.metric_table import fetch_exposition, metric_rows
from comet.ops.processes import StackError, wait_until
from comet.ops.runbooks import first_step, runbook_url, sections

pytestmark = [pytest.mark.ops, pytest.mark.slow]

#: Panels that may be empty by nature in a healthy run, and why. Every other panel must show data.
MAY_BE_EMPTY = {
    64: "Firing alerts: empty whenever nothing fires",
}

#: What $__rate_interval becomes against a 1 s scrape (Grafana: max(4 x scrape interval, step)).
RATE_INTERVAL = "10s"

BOT_METRIC = re.compile(r"(?<![:\w])((?:comet|process|python)_\w+)(?![:\w])")  # not inside a recorded name


def _rule_docs() -> list[dict[str, Any]]:
    return [yaml.safe_load(path.read_text()) for path in RULE_FILES]


def _rules() -> list[dict[str, Any]]:
    return [rule for doc in _rule_docs() for group in doc["groups"] for rule in group["rules"]]


def _expressions() -> list[tuple[str, str]]:
    """(where, PromQL) of every rule and every panel target."""
    found = [(rule.get("alert") or rule["record"], rule["expr"]) for rule in _rules()]
    for panel in data_panels(load_dashboard(DASHBOARD)):
        found += [(f"panel {panel['id']} {panel['title']}", t["expr"]) for t in panel["targets"]]
    return found


def _exposed_names(exposition: str) -> set[str]:
    """Every metric name of an exposition: family names (HELP lines) and sample names."""
    names = set()
    for line in exposition.splitlines():
        if line.startswith("# HELP "):
            names.add(line.split()[2])
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{\s]", line, maxsplit=1)[0])
    return names


def test_every_bot_metric_in_rules_and_panels_exists_in_live_metrics(live_stack: LiveStack) -> None:
    exposition = fetch_exposition(f"{live_stack.metrics_url}/metrics")
    exposed = _exposed_names(exposition)
    used: dict[str, list[str]] = {}
    for where, expr in _expressions():
        for name in BOT_METRIC.findall(expr):
            used.setdefault(name, []).append(where)
    assert len(used) > 20, sorted(used)  # the regex really found the queries' metrics
    missing = {name: places for name, places in used.items() if name not in exposed}
    assert not missing, f"used in rules/panels but not in the demo's /metrics: {missing}"


def test_recording_rule_outputs_exist_once_the_rules_ran(live_stack: LiveStack) -> None:
    records = [rule["record"] for rule in _rules() if "record" in rule]
    assert records
    pending = set(records)

    def all_recorded() -> bool:
        for name in sorted(pending):
            if live_stack.query(name):
                pending.discard(name)
        return not pending

    try:
        wait_until(all_recorded, timeout=45, what="every recording rule to produce a series")
    except StackError:
        pytest.fail(f"recording rules without output: {sorted(pending)}")
    # Recorded series keep the labels their name promises (level "instance_command" -> command).
    for name in records:
        level = name.split(":")[0]
        for series in live_stack.query(name):
            for label in level.split("_"):
                assert label in series["metric"], (name, series["metric"])


def _collect(live_stack: LiveStack) -> list[PanelData]:
    end = time.time()
    start = max(live_stack.started_at - 5, end - 120)
    return collect(live_stack.prometheus_url, load_dashboard(DASHBOARD), start=start, end=end, step=1,
                   rate_interval=RATE_INTERVAL)  # fmt: skip


@pytest.fixture(scope="module")
def panels_with_data(live_stack: LiveStack) -> list[PanelData]:
    """Poll until every panel that must have data has it (or the deadline); the last collection.
    Collected once for the tests that check it and draw it."""
    last: list[PanelData] = []

    def complete() -> bool:
        nonlocal last
        last = _collect(live_stack)
        return all(d.has_data for d in last if d.id not in MAY_BE_EMPTY)

    try:
        wait_until(complete, timeout=60, interval=1.0, what="data in every panel")
    except StackError:
        pass  # reported below, panel by panel
    return last


def test_every_panel_query_returns_data_from_prometheus(panels_with_data: list[PanelData]) -> None:
    collected = panels_with_data
    ids = {d.id for d in collected}
    assert set(MAY_BE_EMPTY) <= ids, "MAY_BE_EMPTY names a panel that is not on the dashboard"
    errors = {f"{d.id} {d.title}": d.errors for d in collected if d.errors}
    assert not errors, f"queries Prometheus refused: {errors}"
    empty = {d.id: (d.title, d.queries) for d in collected if not d.has_data and d.id not in MAY_BE_EMPTY}
    assert not empty, f"panels without data: {empty}"


def _png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", header[16:24])
    return width, height


def test_dashboard_png_draws_every_panel(panels_with_data: list[PanelData], tmp_path: Path) -> None:
    collected = panels_with_data
    out = tmp_path / "dashboard.png"
    drawn = draw(load_dashboard(DASHBOARD), collected, out)
    assert set(drawn) == {d.id for d in collected}, "a panel was not drawn at all"
    blank = {pid: count for pid, count in drawn.items() if count == 0 and pid not in MAY_BE_EMPTY}
    assert not blank, f"panels drawn without data marks: {blank}"
    width, height = _png_size(out)
    assert width > 1000 and height > 1500, (width, height)


def firing_in(alertname: str, payloads: list[dict[str, Any]]) -> bool:
    """Whether any of Alertmanager's webhook payloads carries ``alertname`` firing."""
    return any(
        a["labels"].get("alertname") == alertname and a["status"] == "firing"
        for p in payloads for a in p.get("alerts", [])
    )  # fmt: skip


def test_slow_responses_alert_reaches_discord_channel_and_generic_webhook(live_stack: LiveStack) -> None:
    channel = DEMO.alerts_channel_id

    def slow_alert_messages() -> list[dict[str, Any]]:
        return [
            m for m in live_stack.channel_messages(channel)
            if any("CometSlowResponses" in (e.get("title") or "") for e in m.get("embeds", []))
        ]  # fmt: skip

    wait_until(lambda: bool(slow_alert_messages()), timeout=60, what="CometSlowResponses in #alerts")
    message = slow_alert_messages()[0]
    assert message["webhook_id"], "posted through a channel webhook (Alertmanager's discord_configs)"
    embed = next(e for e in message["embeds"] if "CometSlowResponses" in e["title"])
    assert embed["title"].startswith("🟠 WARNING: CometSlowResponses")
    # The annotations as rendered by Prometheus, with the value: a p95 over the 1 s threshold.
    description = embed["description"]
    assert "**CometSlowResponses** [warning]" in description
    p95 = re.search(r"answers slowly: p95 ([0-9.]+)s on 127\.0\.0\.1:\d+", description)
    assert p95 and float(p95.group(1)) > 1.0, description
    assert "above the 1 s threshold" in description
    # The runbook as a clickable Markdown link (absolute: the provisioned Grafana's runbook panel),
    # and the runbook's first investigation step inline.
    assert f"Runbook: [CometSlowResponses]({runbook_url('CometSlowResponses')})" in description
    section = sections((REPO / "docs" / "operations.md").read_text())["CometSlowResponses"]
    assert f"First step: {first_step(section)}" in description

    def slow_in_webhook(payloads: list[dict[str, Any]]) -> bool:
        return firing_in("CometSlowResponses", payloads)

    assert live_stack.receiver.wait_for(slow_in_webhook, timeout=30), live_stack.receiver.payloads
    payload = next(p for p in live_stack.receiver.payloads if slow_in_webhook([p]))
    alert = next(a for a in payload["alerts"] if a["labels"]["alertname"] == "CometSlowResponses")
    assert alert["labels"]["severity"] == "warning"
    assert alert["labels"]["job"] == "comet"
    assert alert["annotations"]["summary"].startswith("C.O.M.E.T. answers slowly: p95 ")
    assert payload["receiver"] == "generic-webhook"


def test_the_watchdog_reaches_the_dead_mans_switch_and_nothing_else(live_stack: LiveStack) -> None:
    def watchdog(payloads: list[dict[str, Any]]) -> bool:
        return firing_in("Watchdog", payloads)

    assert live_stack.deadmans_switch.wait_for(watchdog, timeout=60), live_stack.deadmans_switch.payloads
    payload = next(p for p in live_stack.deadmans_switch.payloads if watchdog([p]))
    assert payload["receiver"] == "deadmans-switch"
    assert {a["labels"]["alertname"] for a in payload["alerts"]} == {"Watchdog"}
    # Nor is it the Discord channel's or the generic webhook's noise.
    assert not watchdog(live_stack.receiver.payloads)
    titles = [
        e.get("title") or ""
        for m in live_stack.channel_messages(DEMO.alerts_channel_id)
        for e in m.get("embeds", [])
    ]
    assert not any("Watchdog" in t for t in titles), titles


def test_metric_table_generated_from_the_live_exposition(live_stack: LiveStack) -> None:
    exposition = fetch_exposition(f"{live_stack.metrics_url}/metrics")
    rows = {row.name: row for row in metric_rows(exposition)}
    assert rows["comet_commands_total"].type == "counter"
    assert rows["comet_commands_total"].labels == ("command", "kind", "outcome")
    assert rows["comet_command_duration_seconds"].type == "histogram"
    assert rows["comet_command_duration_seconds"].labels == ("command", "kind")
    assert rows["comet_ready"].type == "gauge" and rows["comet_ready"].labels == ()
    assert rows["process_resident_memory_bytes"].type == "gauge"
    assert rows["python_gc_collections_total"].labels == ("generation",)
    assert rows["comet_command_duration_seconds"].help.startswith("Time from a command's invocation")
    # Every family of the bot the demo serves. The bot's exposition leaves out the "<name>_created"
    # companions of counters and histograms (instrumentation.exposition), so none is served.
    families = {line.split()[2] for line in exposition.splitlines() if line.startswith("# HELP ")}
    bot_families = {name for name in families if name.startswith(("comet_", "process_", "python_"))}
    assert not {name for name in bot_families if name.endswith("_created")}
    assert not {name for name in _exposed_names(exposition) if name.endswith("_created")}
    assert bot_families <= set(rows)


def test_stack_printed_its_urls_and_every_one_answers(live_stack: LiveStack) -> None:
    text = "\n".join(live_stack.output)
    for url in (live_stack.prometheus_url, live_stack.alertmanager_url, f"{live_stack.metrics_url}/metrics",
                live_stack.emulator_url):  # fmt: skip
        assert url in text, text
    assert http_get(f"{live_stack.prometheus_url}/-/ready")[0] == 200
    assert http_get(f"{live_stack.alertmanager_url}/-/ready")[0] == 200
    assert http_get(f"{live_stack.metrics_url}/healthz")[0] == 200
    # Prometheus loaded the rendered rules and knows its Alertmanager.
    status, body = http_get(f"{live_stack.prometheus_url}/api/v1/alertmanagers")
    assert status == 200 and live_stack.alertmanager_url.removeprefix("http://") in body.decode()


#: The commands the demo runs: its everyday traffic, the slow `work` and the failing `boom`.
DEMO_COMMANDS = {"work", "boom"} | {a.command for _, a in EVERYDAY if a.kind in ("prefix", "slash")}


def _printed_url(live_stack: LiveStack, name: str) -> str:
    """The URL the stack printed on its ``<name>: <url>`` line."""
    for line in live_stack.output:
        label, sep, url = line.partition(": ")
        if sep and label.strip() == name:
            return url.strip()
    raise AssertionError(f"the stack printed no {name!r} line:\n" + "\n".join(live_stack.output))


def test_an_exemplar_in_prometheus_leads_to_its_invocation_timeline(live_stack: LiveStack) -> None:
    """Prometheus (exemplar storage on) keeps the trace_id exemplars of the duration buckets, and the
    newest one resolves at the demo's /debug/invocations/<id>, the URL the stack printed (the demo
    listens on 127.0.0.1: no credentials needed) — what Grafana's dots on the latency panel link to."""
    debug_url = _printed_url(live_stack, "bot /debug")
    assert debug_url == f"{live_stack.metrics_url}/debug/invocations/<trace_id>", debug_url
    seen: list[str] = []
    resolved: list[tuple[dict[str, str], dict[str, Any], dict[str, Any]]] = []

    def newest_resolves() -> bool:
        newest = newest_exemplar(live_stack.prometheus_url, window=30)
        if newest is None:
            return False
        labels, exemplar = newest
        trace_id = exemplar["labels"]["trace_id"]
        status, body = http_get(debug_url.replace("<trace_id>", trace_id))
        seen.append(f"{trace_id}: HTTP {status}")
        if status != 200:
            return False
        resolved.append((labels, exemplar, json.loads(body)))
        return True

    try:
        wait_until(newest_resolves, timeout=60, interval=1.0, what="an exemplar that resolves")
    except StackError:
        pytest.fail(f"no exemplar resolved at {debug_url}; tried: {seen[-10:]}", pytrace=False)
    labels, exemplar, invocation = resolved[0]
    trace_id = exemplar["labels"]["trace_id"]
    assert re.fullmatch(r"[0-9a-f]{16}", trace_id), trace_id
    assert labels["__name__"] == "comet_command_duration_seconds_bucket" and labels["job"] == "comet"
    # The timeline is that very invocation: its id, the series' command, the exemplar's duration.
    assert invocation["id"] == trace_id, invocation
    assert invocation["command"] in DEMO_COMMANDS, invocation
    assert invocation["command"] == labels["command"], (labels, invocation)
    assert invocation["duration"] == pytest.approx(float(exemplar["value"]), abs=1e-3), (exemplar, invocation)
    assert float(exemplar["value"]) <= float(labels["le"]), (labels, exemplar)
    # Kept because it was slow (the 1 s threshold) or failed: the only invocations with an id.
    assert invocation["duration"] >= 1.0 or invocation["outcome"] in ("error", "cancelled"), invocation
