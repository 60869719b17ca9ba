"""The offline demo as a child process: ``python -m comet run`` without a token, on chosen ports.

What the stack watches and what ``metric_table --demo`` reads; it needs nothing of the ops extra.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

from comet.ops.local_http import answers_200, free_port, http_get, http_post_json, local_url
from comet.ops.processes import ManagedProcess, StartStopContext, wait_until

#: Settings passed through from the caller's environment: the demo's traffic knobs (so that, e.g.,
#: ``COMET_DEMO_SLOW_RATIO=0.6 make stack`` shows CometSlowResponses firing). Nothing else of COMET_*.
DEMO_KNOBS = ("COMET_DEMO_RATE", "COMET_DEMO_SLOW_RATIO", "COMET_DEMO_SLOW_SECONDS", "COMET_DEMO_FAIL_RATIO")


def demo_environment(base: Mapping[str, str], overrides: Mapping[str, str]) -> dict[str, str]:
    """The parent's environment without COMET_* (no token: always the offline demo) but the demo
    knobs, plus ``overrides``."""
    env = {k: v for k, v in base.items() if not k.startswith("COMET_") or k in DEMO_KNOBS}
    env.update(overrides)
    return env


class DemoProcess(StartStopContext):
    """``python -m comet run`` without a token: emulator + bot + synthetic traffic, in a child process."""

    def __init__(
        self,
        *,
        metrics_port: int,
        workdir: Path,
        emulator_port: int | None = None,
        demo_env: Mapping[str, str] | None = None,
        python: str = sys.executable,
    ) -> None:
        self.metrics_port = metrics_port
        self.emulator_port = emulator_port if emulator_port is not None else free_port()
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        env = demo_environment(
            os.environ,
            {
                "COMET_METRICS_HOST": "127.0.0.1",
                "COMET_METRICS_PORT": str(metrics_port),
                "COMET_EMULATOR_PORT": str(self.emulator_port),
                "COMET_DATABASE_PATH": str(workdir / "comet.db"),
                "COMET_LOG_PATH": str(workdir / "comet.log"),
                **(demo_env or {}),
            },
        )
        env["PYTHONUNBUFFERED"] = "1"
        # A missing --env-file is ignored: a developer's .env (and its token) stays out of the demo.
        argv = [python, "-m", "comet", "--env-file", str(workdir / "no-such.env"), "run"]
        self.process = ManagedProcess("comet demo", argv, log_path=workdir / "demo.out", env=env, cwd=workdir)

    @property
    def metrics_url(self) -> str:
        return local_url(self.metrics_port)

    @property
    def emulator_url(self) -> str:
        return local_url(self.emulator_port)

    def start(self) -> None:
        self.process.start()

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Until ``/readyz`` says healthy (the bot is logged in to the emulator)."""
        wait_until(
            answers_200(f"{self.metrics_url}/readyz"),
            timeout=timeout,
            what=f"the demo's {self.metrics_url}/readyz",
            alive=self.process.problem,
        )

    def wait_for_traffic(self, timeout: float = 60.0, commands: int = 1) -> None:
        """Until ``/metrics`` counts at least ``commands`` finished commands."""

        def enough() -> bool:
            status, body = http_get(f"{self.metrics_url}/metrics")
            return status == 200 and commands_counted(body.decode()) >= commands

        wait_until(enough, timeout=timeout, what="synthetic traffic in /metrics", alive=self.process.problem)

    def stop(self) -> int | None:
        return self.process.stop()


def commands_counted(exposition: str) -> float:
    """Sum of ``comet_commands_total`` in a text exposition."""
    total = 0.0
    for line in exposition.splitlines():
        if line.startswith("comet_commands_total{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def create_emulator_webhook(emulator_url: str, channel_id: int, name: str = "Alertmanager") -> str | None:
    """A webhook URL on the demo's emulator, made the way a Discord client would (REST); None if unsupported.

    Returned in Alertmanager's ``https://discord.com/api/webhooks/ID/TOKEN`` shape (no version).
    """
    status, body = http_post_json(
        f"{emulator_url}/api/v10/channels/{channel_id}/webhooks",
        {"name": name},
        headers={"Authorization": "Bot stack-local.token.comet"},
    )
    if status not in (200, 201) or not isinstance(body, dict) or "id" not in body or "token" not in body:
        return None
    return f"{emulator_url}/api/webhooks/{body['id']}/{body['token']}"
