"""Scrape auth end to end: a bot whose /metrics requires basic auth (COMET_METRICS_BASIC_AUTH), and
a real Prometheus running the rendered config, which carries the credentials from a file. Then
docker compose's wiring without Docker: its credentials, render and bot commands (container paths
mapped to temporary ones), a Prometheus with its flags, and an exemplar followed to the bot's
/debug/invocations/<id> through Grafana's link, with the generated credentials."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from ops_support import (
    LIVE_DEMO_ENV,
    REPO,
    compose_model,
    exemplar_link,
    local_command,
    mounts,
    newest_exemplar,
)
from support import require_binary

from comet.ops.local_http import free_port, http_get, local_url
from comet.ops.processes import ManagedProcess, StackError, wait_until
from comet.ops.render_options import RenderOptions
from comet.ops.rendering import render
from comet.ops.stack_config import PROMETHEUS_FEATURE_FLAGS

USER, PASSWORD = "prometheus", "scrape-s3cret-Pa55"


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, ""
    except OSError:  # not listening (yet)
        return 0, ""


@pytest.fixture
def authenticated_bot(tmp_path: Path) -> Iterator[int]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMET_")}
    env.update(
        PYTHONPATH=str(REPO),
        COMET_METRICS_PORT=str(port),
        COMET_METRICS_BASIC_AUTH=f"{USER}:{PASSWORD}",
        COMET_LOG_PATH=str(tmp_path / "bot.log"),
        COMET_DATABASE_PATH=str(tmp_path / "bot.db"),
        COMET_EXTENSIONS="comet.features.cogs.monitoring",
    )
    out = (tmp_path / "bot.out").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "comet", "run"], env=env, stdout=out, stderr=subprocess.STDOUT
    )
    try:
        wait_until(lambda: _get(f"{local_url(port)}/healthz")[0] == 200, timeout=60, what="the demo bot")
        yield port
    finally:
        proc.terminate()
        proc.wait(30)
        out.close()


def test_prometheus_scrapes_an_authenticated_bot_with_the_rendered_credentials(
    tmp_path: Path, authenticated_bot: int
) -> None:
    prometheus = require_binary("prometheus")
    metrics = f"{local_url(authenticated_bot)}/metrics"
    assert _get(metrics)[0] == 401  # the bot really requires the credentials
    prom_port = free_port()
    rendered = render(
        RenderOptions(
            bot_targets=(f"127.0.0.1:{authenticated_bot}",),
            prometheus_targets=(f"127.0.0.1:{prom_port}",),
            alertmanagers=("127.0.0.1:9",),
            scrape_interval="1s",
            evaluation_interval="1s",
            metrics_basic_auth=(USER, PASSWORD),
            allow_no_receiver=True,
        ),
        tmp_path / "rendered",
    )
    config = rendered.prometheus_config.read_text()
    assert PASSWORD not in config  # from a file, never inline
    job = next(j for j in yaml.safe_load(config)["scrape_configs"] if j["job_name"] == "comet")
    assert job["basic_auth"] == {"username": USER, "password_file": "secrets/scrape_password"}
    password_file = tmp_path / "rendered" / "secrets" / "scrape_password"
    assert password_file.read_text() == PASSWORD
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    proc = subprocess.Popen(
        [
            prometheus,
            f"--config.file={rendered.prometheus_config}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
            *PROMETHEUS_FEATURE_FLAGS,
        ],
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "prometheus.log").open("wb"),
    )
    try:

        def bot_target() -> dict[str, object] | None:
            status, body = _get(f"{local_url(prom_port)}/api/v1/targets")
            if status != 200:
                return None
            targets = json.loads(body)["data"]["activeTargets"]
            return next(
                (t for t in targets if t["labels"]["job"] == "comet" and t["health"] != "unknown"), None
            )

        wait_until(lambda: bot_target() is not None, timeout=60, what="Prometheus to scrape the bot")
        target = bot_target()
        assert target is not None and target["health"] == "up", target
        status, body = _get(f"{local_url(prom_port)}/api/v1/query?query=comet_ready")
        assert status == 200 and json.loads(body)["data"]["result"], body
    finally:
        proc.terminate()
        proc.wait(30)


def _run_one_shot(service: dict[str, Any], paths: dict[str, Path], env: dict[str, str], cwd: Path) -> None:
    command = local_command(service["command"], paths)
    assert command[:2] == ["python", "-m"], command
    result = subprocess.run([sys.executable, *command[1:]], env=env, cwd=cwd,
                            capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def _credentials_mount(service: dict[str, Any]) -> str:
    (target,) = [t for t, m in mounts(service).items() if m.get("source") == "scrape-credentials"]
    return target


def _scrape_target(prometheus_url: str) -> dict[str, Any] | None:
    status, body = http_get(f"{prometheus_url}/api/v1/targets")
    if status != 200:
        return None
    targets = json.loads(body)["data"]["activeTargets"]
    return next((t for t in targets if t["labels"]["job"] == "comet" and t["health"] != "unknown"), None)


def test_compose_wiring_generated_credentials_scrape_and_exemplar_link(tmp_path: Path) -> None:
    """What `docker compose up` does with no credentials configured, each service's own command run
    here: the credentials step generates them, the render step gives Prometheus the password, the
    bot (on 0.0.0.0, as in compose, and with an empty COMET_METRICS_BASIC_AUTH as a .env copied from
    .env.example has) requires them; Prometheus scrapes it and keeps its exemplars; an exemplar's
    Grafana link answers with the credentials only."""
    prometheus = require_binary("prometheus")
    services = compose_model(tmp_path)["services"]
    clean = {k: v for k, v in os.environ.items() if not k.startswith("COMET_")}
    credentials = tmp_path / "credentials"
    _run_one_shot(services["credentials"], {_credentials_mount(services["credentials"]): credentials},
                  clean, tmp_path)  # fmt: skip
    (secret,) = [p for p in credentials.iterdir() if not p.name.startswith(".")]
    user, _, password = secret.read_text().partition(":")

    bot_port, prom_port = free_port(), free_port()
    rendered = tmp_path / "rendered"
    # The compose network's addresses, here (no Alertmanager: nothing listens on port 9).
    addresses = {"bot:9108": f"127.0.0.1:{bot_port}", "localhost:9090": f"127.0.0.1:{prom_port}",
                 "alertmanager:9093": "127.0.0.1:9"}  # fmt: skip
    render_command = []
    for part in services["render"]["command"]:
        for compose_address, local_address in addresses.items():
            part = part.replace(compose_address, local_address)
        render_command.append(part)
    render_service = {**services["render"], "command": render_command}
    _run_one_shot(
        render_service,
        {"/src": REPO, "/rendered": rendered, "/etc/comet/targets": tmp_path / "targets",
         _credentials_mount(services["render"]): credentials},
        {**clean, "COMET_ALERT_ALLOW_NO_RECEIVER": "true"},
        tmp_path,
    )  # fmt: skip
    assert (rendered / "secrets" / "scrape_password").read_text() == password

    bot_env = {
        **clean,
        **services["bot"]["environment"],
        "COMET_METRICS_PORT": str(bot_port),
        "COMET_DATABASE_PATH": str(tmp_path / "bot.db"),
        "COMET_LOG_PATH": str(tmp_path / "bot.log"),
        "COMET_METRICS_BASIC_AUTH": "",  # what compose's env_file passes from a .env made from .env.example
        **LIVE_DEMO_ENV,  # frequent slow and failing commands: exemplars within seconds
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",  # its `python`
        "PYTHONPATH": str(REPO),
        "PYTHONUNBUFFERED": "1",
    }
    assert bot_env["COMET_METRICS_HOST"] == "0.0.0.0"
    bot_command = local_command(
        services["bot"]["command"], {_credentials_mount(services["bot"]): credentials}
    )
    assert bot_command[:2] == ["sh", "-c"], bot_command
    prometheus_flags = [
        part for part in services["prometheus"]["command"] if part.startswith("--enable-feature")
    ]
    assert prometheus_flags == list(PROMETHEUS_FEATURE_FLAGS)
    bot = ManagedProcess("compose's bot command", bot_command, log_path=tmp_path / "bot.out", env=bot_env,
                         cwd=tmp_path)  # fmt: skip
    prom = ManagedProcess("prometheus", [
        prometheus, f"--config.file={rendered / 'prometheus.yml'}",
        f"--storage.tsdb.path={tmp_path / 'data'}", f"--web.listen-address=127.0.0.1:{prom_port}",
        *prometheus_flags,
    ], log_path=tmp_path / "prometheus.log")  # fmt: skip
    try:
        bot.start()
        prom.start()
        bot_url, prom_url = local_url(bot_port), local_url(prom_port)
        auth = {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}
        wait_until(lambda: http_get(f"{bot_url}/readyz", headers=auth)[0] == 200, timeout=60,
                   what="the bot ready", alive=bot.problem)  # fmt: skip
        assert http_get(f"{bot_url}/healthz")[0] == 200  # open for liveness probes
        assert http_get(f"{bot_url}/metrics")[0] == 401  # the generated credentials are in force
        wait_until(lambda: _scrape_target(prom_url) is not None, timeout=60,
                   what="Prometheus to scrape the bot", alive=prom.problem)  # fmt: skip
        target = _scrape_target(prom_url)
        assert target is not None and target["health"] == "up", target

        link = exemplar_link().replace("http://127.0.0.1:9108", bot_url)  # the published port, here
        seen: list[str] = []
        found: list[tuple[str, bytes]] = []

        def newest_resolves() -> bool:
            newest = newest_exemplar(prom_url, window=30)
            if newest is None:
                return False
            trace_id = newest[1]["labels"]["trace_id"]
            url = link.replace("${__value.raw}", trace_id)
            status, body = http_get(url, headers=auth)
            seen.append(f"{trace_id}: {status}")
            if status == 200:
                found.append((trace_id, body))
            return status == 200

        try:
            wait_until(newest_resolves, timeout=60, what="an exemplar that resolves", alive=bot.problem)
        except StackError:
            pytest.fail(f"no exemplar resolved with the credentials: {seen[-10:]}", pytrace=False)
        trace_id, body = found[0]
        assert json.loads(body)["id"] == trace_id
        # Without the credentials the timeline stays closed (the browser asks for them).
        status, _ = http_get(link.replace("${__value.raw}", trace_id))
        assert status == 401
    finally:
        prom.stop()
        # SIGTERM reaches the bot itself (the command execs python): a graceful stop, status 0.
        code = bot.stop(timeout=30)
    assert code == 0, bot.log_tail()
