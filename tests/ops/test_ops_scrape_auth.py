"""Scrape auth end to end: a bot whose /metrics requires basic auth (COMET_METRICS_BASIC_AUTH), and
a real Prometheus running the rendered config, which carries the credentials from a file."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from ops_support import REPO
from support import require_binary

from comet.ops.local_http import free_port, local_url
from comet.ops.processes import wait_until
from comet.ops.render_options import RenderOptions
from comet.ops.rendering import render

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
