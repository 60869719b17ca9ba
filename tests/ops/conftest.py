"""Fixtures of the ops tests: ONE live stack (demo + Prometheus + Alertmanager) for the whole folder.

``live_stack`` runs ``python -m comet.ops.stack`` (what ``make stack`` runs): see ops_support.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from ops_support import LIVE_DEMO_ENV, REPO, LiveStack, WebhookReceiver, read_lines, stop_stack
from support import require_binary

from comet.ops.demo_process import demo_environment
from comet.ops.local_http import free_port, local_url
from comet.ops.processes import wait_until


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def live_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    require_binary("prometheus")
    require_binary("prometheus-alertmanager")
    receiver = WebhookReceiver()
    receiver.start()
    deadmans_switch = WebhookReceiver()
    deadmans_switch.start()
    workdir = tmp_path_factory.mktemp("stack")
    ports = {name: free_port() for name in ("prometheus", "alertmanager", "metrics", "emulator")}
    argv = [
        sys.executable, "-m", "comet.ops.stack",
        "--workdir", str(workdir),
        "--prometheus-port", str(ports["prometheus"]),
        "--alertmanager-port", str(ports["alertmanager"]),
        "--metrics-port", str(ports["metrics"]),
        "--emulator-port", str(ports["emulator"]),
        "--scrape-interval", "1s", "--evaluation-interval", "1s",
        "--group-wait", "1s", "--group-interval", "1s", "--repeat-interval", "1h",
        "--max-alert-for", "1s",
        "--webhook-url", receiver.url,
        "--deadmans-switch-url", deadmans_switch.url,
    ]  # fmt: skip
    env = demo_environment(os.environ, {**LIVE_DEMO_ENV, "PYTHONUNBUFFERED": "1"})
    process = subprocess.Popen(
        argv, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )  # fmt: skip
    output: list[str] = []
    ready = threading.Event()
    threading.Thread(target=read_lines, args=(process, output, ready), daemon=True).start()
    try:
        if not ready.wait(90) or process.poll() is not None:
            pytest.fail("the stack did not start:\n" + "\n".join(output), pytrace=False)
        stack = LiveStack(
            process=process,
            workdir=workdir,
            prometheus_url=local_url(ports["prometheus"]),
            alertmanager_url=local_url(ports["alertmanager"]),
            metrics_url=local_url(ports["metrics"]),
            emulator_url=local_url(ports["emulator"]),
            receiver=receiver,
            deadmans_switch=deadmans_switch,
            started_at=time.time(),
            output=output,
        )
        # Prometheus 2.42 scrapes first ~5 s after start (target sync is throttled): wait for the bot
        # to be up in Prometheus before any test looks at data.
        wait_until(
            lambda: any(r["value"][1] == "1" for r in stack.query('up{job="comet"}')),
            timeout=60,
            what="Prometheus to scrape the demo bot",
        )
        yield stack
    finally:
        stop_stack(process, output, ports)
        receiver.stop()
        deadmans_switch.stop()
