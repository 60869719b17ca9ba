"""The config sources, rendered and checked by the real tools: promtool (config, rules --lint-fatal,
unit tests) and amtool (config, routing)."""

from __future__ import annotations

import json
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from ops_support import REPO, RULE_FILES, RULE_TESTS
from support import require_binary

from comet.ops.render import main
from comet.ops.render_options import RenderOptions
from comet.ops.rendering import render
from comet.ops.rule_transforms import RenderError, parse_duration_ms
from comet.ops.runbooks import first_step, panel_id, runbook_url, sections
from comet.ops.runbooks import main as runbooks_main

pytestmark = pytest.mark.ops

DISCORD_URL = "http://127.0.0.1:8765/api/webhooks/111/secret-token"
WEBHOOK_URL = "http://127.0.0.1:5001/alerts"
DEADMANS_SWITCH_URL = "http://127.0.0.1:5002/ping"


def run(*argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=60, check=False)


def _rules() -> list[dict[str, Any]]:
    return [r for path in RULE_FILES for g in yaml.safe_load(path.read_text())["groups"] for r in g["rules"]]


def _alerts() -> list[dict[str, Any]]:
    return [rule for rule in _rules() if "alert" in rule]


@pytest.fixture
def rendered(tmp_path: Path) -> Path:
    options = RenderOptions(
        bot_targets=("127.0.0.1:9108",),
        shard_targets=("127.0.0.1:9200", "127.0.0.1:9201"),
        prometheus_targets=("127.0.0.1:9090",),
        alertmanagers=("127.0.0.1:9093",),
        discord_webhook_url=DISCORD_URL,
        webhook_url=WEBHOOK_URL,
        deadmans_switch_url=DEADMANS_SWITCH_URL,
        scrape_interval="1s",
        evaluation_interval="1s",
        group_wait="1s",
    )
    render(options, tmp_path / "out")
    return tmp_path / "out"


# -- render ------------------------------------------------------------------------------------


def test_render_fills_every_placeholder(rendered: Path) -> None:
    files = [p for p in rendered.rglob("*.yml")]
    assert {p.relative_to(rendered).as_posix() for p in files} >= {
        "prometheus.yml", "alertmanager.yml", "rules/alerts.yml", "rules/recording.yml", "targets/shards.yml",
    }  # fmt: skip
    for path in files:
        assert "${" not in path.read_text(), path
    prometheus = yaml.safe_load((rendered / "prometheus.yml").read_text())
    assert prometheus["global"]["scrape_interval"] == "1s"
    jobs = {job["job_name"]: job for job in prometheus["scrape_configs"]}
    assert jobs["comet"]["static_configs"][0]["targets"] == ["127.0.0.1:9108"]
    assert jobs["comet-shards"]["file_sd_configs"][0]["files"] == ["targets/*.yml"]
    assert jobs["alertmanager"]["static_configs"][0]["targets"] == ["127.0.0.1:9093"]
    assert prometheus["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["127.0.0.1:9093"]
    shards = yaml.safe_load((rendered / "targets" / "shards.yml").read_text())
    assert shards == [{"targets": ["127.0.0.1:9200", "127.0.0.1:9201"], "labels": {}}]
    alertmanager = yaml.safe_load((rendered / "alertmanager.yml").read_text())
    receivers = {r["name"]: r for r in alertmanager["receivers"]}
    assert receivers["discord-warning"]["discord_configs"][0]["webhook_url"] == DISCORD_URL
    assert receivers["discord-critical"]["discord_configs"][0]["webhook_url"] == DISCORD_URL
    assert receivers["generic-webhook"]["webhook_configs"][0]["url"] == WEBHOOK_URL
    assert receivers["deadmans-switch"]["webhook_configs"][0]["url"] == DEADMANS_SWITCH_URL
    assert alertmanager["route"]["group_wait"] == "1s"
    # Rules are the sources' own, plus each alert's first investigation step from its runbook.
    for source in RULE_FILES:
        original = yaml.safe_load(source.read_text())
        copied = yaml.safe_load((rendered / "rules" / source.name).read_text())
        for group in copied["groups"]:
            for rule in group["rules"]:
                rule.get("annotations", {}).pop("first_step", None)
        for group in original["groups"]:
            for rule in group["rules"]:
                rule.get("annotations", {}).pop("first_step", None)
        assert copied == original, source.name


def test_rendered_alertmanager_config_is_private_unless_shared(tmp_path: Path) -> None:
    render(RenderOptions(discord_webhook_url=DISCORD_URL), tmp_path / "private")
    assert stat.S_IMODE((tmp_path / "private" / "alertmanager.yml").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "private" / "prometheus.yml").stat().st_mode) == 0o644
    render(RenderOptions(discord_webhook_url=DISCORD_URL, shared_read=True), tmp_path / "shared")
    assert stat.S_IMODE((tmp_path / "shared" / "alertmanager.yml").stat().st_mode) == 0o644


def test_render_leaves_out_integrations_without_url_only_when_allowed(tmp_path: Path) -> None:
    with pytest.raises(RenderError, match="no receiver for critical alerts"):
        render(RenderOptions(), tmp_path / "refused")
    # A generic webhook alone carries the critical alerts too.
    render(RenderOptions(webhook_url=WEBHOOK_URL), tmp_path / "generic")
    rendered = render(RenderOptions(allow_no_receiver=True), tmp_path)
    alertmanager = yaml.safe_load(rendered.alertmanager_config.read_text())
    receivers = {r["name"]: r for r in alertmanager["receivers"]}
    assert set(receivers) == {"discord-critical", "discord-warning", "generic-webhook", "deadmans-switch"}
    assert all(set(r) == {"name"} for r in receivers.values()), receivers
    assert set(rendered.dropped) == {
        "discord-critical: discord_configs",
        "discord-warning: discord_configs",
        "generic-webhook: webhook_configs",
        "deadmans-switch: webhook_configs",
    }


def test_render_cli_reads_urls_from_environment_and_never_prints_them(tmp_path: Path) -> None:
    env = {"COMET_ALERT_DISCORD_WEBHOOK_URL": DISCORD_URL, "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-m", "comet.ops.render", "--out", str(tmp_path)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "secret-token" not in result.stdout + result.stderr
    assert "left out generic-webhook: webhook_configs" in result.stderr
    config = yaml.safe_load((tmp_path / "alertmanager.yml").read_text())
    assert config["receivers"][0]["discord_configs"][0]["webhook_url"] == DISCORD_URL


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--bot-target", "bot"], "expected host:port"),
        (["--scrape-interval", "fast"], "expected a duration"),
        (["--discord-webhook-url", "ftp://x/y"], "expected an http:// or https:// URL"),
        (["--max-alert-for", "1 minute"], "expected a duration"),
    ],
)
def test_render_cli_rejects_bad_values(tmp_path: Path, argv: list[str], message: str,
                                       capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    assert main(["--out", str(tmp_path), *argv]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--discord-webhook-url", "not a url"], "discord webhook URL: expected an http:// or https:// URL"),
        (["--scrape-interval", "fast"], "expected a duration"),
    ],
)
def test_stack_cli_rejects_bad_values_before_starting_anything(
    tmp_path: Path, argv: list[str], message: str
) -> None:
    # The demo stack renders the same options; a bad one is a usage error, not a traceback after
    # the emulator and the bot have started.
    result = subprocess.run(
        [sys.executable, "-m", "comet.ops.stack", "--workdir", str(tmp_path / "stack"), *argv],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert "starting" not in result.stdout and not (tmp_path / "stack").exists()


def _source_copy(tmp_path: Path) -> Path:
    source = tmp_path / "src"
    shutil.copytree(REPO / "alerting", source / "alerting")
    shutil.copy(REPO / "prometheus.yml", source / "prometheus.yml")
    return source


def test_render_refuses_a_source_out_of_shape(tmp_path: Path) -> None:
    source = _source_copy(tmp_path)
    text = (source / "prometheus.yml").read_text().replace("job_name: comet\n", "job_name: comet-bot\n")
    (source / "prometheus.yml").write_text(text)
    with pytest.raises(RenderError, match="no scrape job 'comet'"):
        render(RenderOptions(source_dir=source, allow_no_receiver=True), tmp_path / "out")
    source = _source_copy(tmp_path / "2")
    path = source / "alerting" / "alertmanager.yml"
    path.write_text(path.read_text().replace("  - name: generic-webhook\n", ""))
    with pytest.raises(RenderError, match="no receiver 'generic-webhook'"):
        render(RenderOptions(source_dir=source, allow_no_receiver=True), tmp_path / "out2")


def test_checked_in_configs_are_valid_as_they_stand() -> None:
    promtool = require_binary("promtool")
    amtool = require_binary("amtool")
    result = run(promtool, "check", "config", "prometheus.yml", cwd=REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(RULE_FILES)} rule files found" in result.stdout
    result = run(amtool, "check-config", "alerting/alertmanager.yml", cwd=REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 templates" in result.stdout


def test_slo_targets_are_one_constant_each_that_the_render_step_overrides(tmp_path: Path) -> None:
    rendered = render(
        RenderOptions(slo_availability_target=0.999, slo_latency_target=0.9, allow_no_receiver=True), tmp_path
    )
    doc = yaml.safe_load((rendered.rules_dir / "slo.yml").read_text())
    records = {r["record"]: r["expr"] for g in doc["groups"] for r in g["rules"] if "record" in r}
    assert "vector(0.999)" in records["slo:comet_commands_availability:target"]
    assert "vector(0.9)" in records["slo:comet_commands_latency:target"]
    # Each target appears once in the sources: every rule and annotation reads the constant.
    source = (REPO / "alerting" / "rules" / "slo.yml").read_text()
    assert source.count("0.995") == 1 and source.count("0.98)") == 1
    with pytest.raises(RenderError, match="between 0 and 1"):
        render(RenderOptions(slo_availability_target=1.5, allow_no_receiver=True), tmp_path / "bad")
    promtool = require_binary("promtool")
    result = run(promtool, "check", "rules", str(rendered.rules_dir / "slo.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_max_alert_for_caps_only_longer_durations(tmp_path: Path) -> None:
    rendered = render(RenderOptions(max_alert_for="2m", allow_no_receiver=True), tmp_path)
    capped = {
        r["alert"]: r.get("for")
        for path in rendered.rule_files
        for g in yaml.safe_load(path.read_text())["groups"]
        for r in g["rules"]
        if "alert" in r
    }
    original = {r["alert"]: r.get("for") for r in _alerts()}
    assert capped.keys() == original.keys()
    for name, duration in original.items():
        if duration is None:
            assert capped[name] is None
        else:
            assert parse_duration_ms(capped[name]) == min(parse_duration_ms(duration), 120_000), name
    assert original["CometDown"] == "1m" and capped["CometDown"] == "1m"  # shorter than the cap: kept
    assert capped["CometSlowResponses"] == "2m"
    # The shortened alerts say so in their text; the others are left as they were.
    descriptions = {
        r["alert"]: r["annotations"]["description"]
        for path in rendered.rule_files
        for g in yaml.safe_load(path.read_text())["groups"]
        for r in g["rules"]
        if "alert" in r
    }
    assert descriptions["CometMemoryGrowth"].endswith(
        "[Demo rendering: `for` shortened from 1h to 2m; durations named above may not have passed.]"
    )
    assert "Demo rendering" not in descriptions["CometDown"]


def test_parse_duration() -> None:
    assert parse_duration_ms("1h30m") == 5_400_000
    assert parse_duration_ms("500ms") == 500
    with pytest.raises(RenderError):
        parse_duration_ms("5 m")


# -- promtool and amtool -------------------------------------------------------------------------


def test_promtool_check_config_on_rendered_configs(rendered: Path, tmp_path: Path) -> None:
    promtool = require_binary("promtool")
    result = run(promtool, "check", "config", str(rendered / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(RULE_FILES)} rule files found" in result.stdout
    assert "WARNING" not in result.stdout + result.stderr  # the file_sd glob matches a file, too
    # The compose rendering (default names, an operator's file_sd folder) is valid as well.
    render(
        RenderOptions(shard_target_files=("/etc/comet/targets/*.yml",), webhook_url=WEBHOOK_URL),
        tmp_path / "compose",
    )
    result = run(promtool, "check", "config", "--syntax-only", str(tmp_path / "compose" / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_check_config_fails_on_a_broken_render(rendered: Path) -> None:
    promtool = require_binary("promtool")
    (rendered / "rules" / "broken.yml").write_text(
        "groups:\n  - name: x\n    rules:\n      - alert: X\n        expr: rate(\n"
    )
    result = run(promtool, "check", "config", str(rendered / "prometheus.yml"))
    assert result.returncode != 0


def test_promtool_check_rules_lint_fatal() -> None:
    promtool = require_binary("promtool")
    result = run(promtool, "check", "rules", "--lint-fatal", *map(str, RULE_FILES))
    assert result.returncode == 0, result.stdout + result.stderr
    for path in RULE_FILES:
        count = sum(len(g["rules"]) for g in yaml.safe_load(path.read_text())["groups"])
        assert f"Checking {path}\n  SUCCESS: {count} rules found" in result.stdout, result.stdout


def test_lint_fatal_catches_duplicate_rules(tmp_path: Path) -> None:
    """Why --lint-fatal: without it a duplicated rule passes (exit 0)."""
    promtool = require_binary("promtool")
    doc = yaml.safe_load(RULE_FILES[0].read_text())
    doc["groups"][0]["rules"].append(doc["groups"][0]["rules"][0])
    duplicated = tmp_path / "dup.yml"
    duplicated.write_text(yaml.safe_dump(doc))
    assert run(promtool, "check", "rules", str(duplicated)).returncode == 0
    assert run(promtool, "check", "rules", "--lint-fatal", str(duplicated)).returncode != 0


def test_promtool_unit_tests_pass() -> None:
    promtool = require_binary("promtool")
    result = run(promtool, "test", "rules", *[p.name for p in RULE_TESTS], cwd=RULE_TESTS[0].parent)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(RULE_TESTS)


def test_promtool_unit_tests_can_fail(tmp_path: Path) -> None:
    """The unit tests compare annotations: a wrong expected value fails (the suite is not vacuous)."""
    promtool = require_binary("promtool")
    source = _source_copy(tmp_path)
    tests = source / "alerting" / "tests" / "alerts_test.yml"
    tests.write_text(tests.read_text().replace("p95 2.425s on bot:9108", "p95 2.5s on bot:9108"))
    result = run(promtool, "test", "rules", tests.name, cwd=tests.parent)
    assert result.returncode != 0
    assert "CometSlowResponses" in result.stdout + result.stderr


def _unit_tests() -> list[dict[str, Any]]:
    return [t for path in RULE_TESTS for t in yaml.safe_load(path.read_text())["tests"]]


def test_every_alert_has_a_firing_case_and_a_silent_near_miss() -> None:
    firing: dict[str, list[str]] = {}
    silent: dict[str, list[str]] = {}
    for test in _unit_tests():
        for case in test.get("alert_rule_test", []):
            target = firing if case.get("exp_alerts") else silent
            target.setdefault(case["alertname"], []).append(test["name"])
    alerts = {rule["alert"] for rule in _alerts()}
    assert alerts == {
        "CometSlowResponses", "CometDown", "CometNotReady", "CometHighErrorRatio", "CometGatewayLatencyHigh",
        "CometFrequentReconnects", "CometEventLoopBlocked", "CometMemoryGrowth", "CometDebugDenied",
        "CometDiscordRateLimited", "CometGatewaySendBudgetExhausted", "CometInstrumentationFailing",
        # the pipeline watching itself (meta.yml)
        "Watchdog", "CometTargetMissing", "PrometheusRuleFailures", "PrometheusNotConnectedToAlertmanagers",
        "PrometheusErrorSendingAlerts", "AlertmanagerFailedToSendAlerts", "PrometheusConfigReloadFailed",
        "AlertmanagerConfigReloadFailed",
        # the SLOs' burn-rate alerts (slo.yml)
        "CometAvailabilityBudgetBurnFast", "CometAvailabilityBudgetBurnSlow",
        "CometLatencyBudgetBurnFast", "CometLatencyBudgetBurnSlow",
    }  # fmt: skip
    assert alerts <= set(firing), f"no firing test: {alerts - set(firing)}"
    alerts.discard("Watchdog")  # always fires: it has no near miss and no quiet case
    assert alerts <= set(silent), f"no near-miss test: {alerts - set(silent)}"
    # ... and, by name, a near miss and a low-traffic case that stay silent, and a case whose
    # samples do not line up with the 1-minute evaluation (an interval that neither divides a
    # minute nor is a whole number of minutes).
    for kind in ("near miss", "low traffic"):
        named = {a for a, names in silent.items() if any(kind in n for n in names)}
        assert alerts <= named, f"no silent '{kind}' test: {alerts - named}"
    misaligned: set[str] = set()
    for test in _unit_tests():
        seconds = parse_duration_ms(test["interval"]) / 1000
        if 60 % seconds and seconds % 60:
            misaligned.update(case["alertname"] for case in test.get("alert_rule_test", []))
    assert alerts | {"Watchdog"} <= misaligned, f"no test with misaligned samples: {alerts - misaligned}"
    # A firing case checks the labels and every annotation.
    for test in _unit_tests():
        for case in test.get("alert_rule_test", []):
            for expected in case.get("exp_alerts") or []:
                assert expected["exp_labels"].get("severity"), test["name"]
                assert {"summary", "description", "runbook_url"} <= set(expected["exp_annotations"]), test[
                    "name"
                ]


def test_every_alert_has_severity_value_annotations_and_a_runbook_section() -> None:
    runbook = (REPO / "docs" / "operations.md").read_text()
    headings = {h.strip().lower() for h in re.findall(r"^### (\S+)\s*$", runbook, flags=re.M)}
    for rule in _alerts():
        name = rule["alert"]
        if name == "Watchdog":  # always firing, straight to the dead man's switch
            assert rule["labels"]["severity"] == "none" and "for" not in rule
        else:
            assert rule["labels"]["severity"] in {"critical", "warning", "info"}, name
            assert parse_duration_ms(rule.get("for", "0s")) > 0, f"{name} has no `for`"
        for key in ("summary", "description"):
            assert "$value" in rule["annotations"][key], (name, key)
        # An absolute link that works in the default deployment: its panel of the runbooks dashboard.
        assert rule["annotations"]["runbook_url"] == runbook_url(name), name
        assert name.lower() in headings, f"docs/operations.md has no '### {name}' section"
        assert "runbook" not in rule["annotations"], f"{name}: the key is runbook_url"
    # The runbooks dashboard holds a panel for every alert, at the id its link names, and is up to
    # date with docs/operations.md.
    board = json.loads((REPO / "dashboards" / "comet-runbooks.json").read_text())
    panels = {panel["title"]: panel for panel in board["panels"]}
    for rule in _alerts():
        assert panels[rule["alert"]]["id"] == panel_id(rule["alert"]), rule["alert"]
        assert panels[rule["alert"]]["options"]["content"].startswith(f"## {rule['alert']}\n")
    assert len({p["id"] for p in board["panels"]}) == len(board["panels"])
    assert runbooks_main(["--check"]) == 0, (
        "dashboards/comet-runbooks.json is stale: python -m comet.ops.runbooks"
    )


def test_render_points_runbook_links_at_grafana_and_adds_the_first_step(tmp_path: Path) -> None:
    rendered = render(
        RenderOptions(grafana_url="https://grafana.example.org/", webhook_url=WEBHOOK_URL), tmp_path
    )
    doc = yaml.safe_load((rendered.rules_dir / "alerts.yml").read_text())
    rules = {r["alert"]: r for g in doc["groups"] for r in g["rules"] if "alert" in r}
    slow = rules["CometSlowResponses"]["annotations"]
    assert slow["runbook_url"] == runbook_url("CometSlowResponses", "https://grafana.example.org")
    section = sections((REPO / "docs" / "operations.md").read_text())["CometSlowResponses"]
    assert slow["first_step"] == first_step(section) and slow["first_step"] in " ".join(section.split())
    promtool = require_binary("promtool")
    result = run(promtool, "check", "rules", str(rendered.rules_dir / "alerts.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_recording_rules_follow_the_naming_convention() -> None:
    records = [rule["record"] for rule in _rules() if "record" in rule]
    assert records
    for name in records:
        level, metric, operations = name.split(":")
        assert re.fullmatch(r"[a-z]+(_[a-z]+)*", level), name
        assert metric.startswith("comet_"), name
        assert re.fullmatch(r"[a-z0-9_]+", operations), name
    # The ones the dashboards and alerts use.
    assert {
        "instance_command:comet_commands:rate5m",
        "instance_command:comet_command_duration_seconds:p95_5m",
        "instance:comet_command_duration_seconds:p95_5m",
    } <= set(records)


def test_amtool_check_config(rendered: Path) -> None:
    amtool = require_binary("amtool")
    result = run(amtool, "check-config", str(rendered / "alertmanager.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 receivers" in result.stdout


def test_amtool_check_config_without_urls(tmp_path: Path) -> None:
    amtool = require_binary("amtool")
    rendered = render(RenderOptions(allow_no_receiver=True), tmp_path)
    result = run(amtool, "check-config", str(rendered.alertmanager_config))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("labels", "receivers"),
    [
        (["severity=critical", "alertname=CometDown"], "discord-critical,generic-webhook"),
        (["severity=warning", "alertname=CometSlowResponses"], "discord-warning,generic-webhook"),
        (["severity=info", "alertname=Anything"], "discord-warning,generic-webhook"),
        (["alertname=NoSeverity"], "generic-webhook"),
        # The always-firing Watchdog reaches the dead man's switch and nothing else.
        (["alertname=Watchdog", "severity=none"], "deadmans-switch"),
    ],
)
def test_alertmanager_routes_by_severity(rendered: Path, labels: list[str], receivers: str) -> None:
    amtool = require_binary("amtool")
    config = f"--config.file={rendered / 'alertmanager.yml'}"
    result = run(amtool, "config", "routes", "test", config, f"--verify.receivers={receivers}", *labels)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == receivers
