"""Helpers of the bot's tests (a uniquely named module: every tests/ folder has its own conftest.py,
so test modules import helpers from here, not from ``conftest``). The bot itself comes from the
shared harness (``tests/harness.py``), child processes from ``tests/processes.py``."""

from __future__ import annotations

from pathlib import Path

from processes import child_env

#: The bot's extensions in these tests: the ones this area owns plus a test-only cog of failure paths.
TEST_EXTENSIONS = ("comet.features.cogs.monitoring", "comet.features.cogs.demo", "bot_failures_ext")


def base_env(tmp_path: Path, name: str, **extra: str) -> dict[str, str]:
    """A ``comet`` child's environment: metrics on a free port, its log and database under
    ``tmp_path`` (named after ``name``), the monitoring extension alone; then ``extra``."""
    values = {
        "COMET_METRICS_PORT": "0",
        "COMET_LOG_PATH": str(tmp_path / f"{name}.log"),
        "COMET_DATABASE_PATH": str(tmp_path / f"{name}.db"),
        "COMET_EXTENSIONS": "comet.features.cogs.monitoring",
    }
    values.update(extra)
    return child_env(**values)


def metric(text: str, name: str, **labels: str) -> float | None:
    """One series of the exposition ``text`` (a real /metrics body), None if it is not there."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        series, _, value = line.rpartition(" ")
        head, _, rest = series.partition("{")
        if head != name:
            continue
        have = ",".join(sorted(rest.rstrip("}").split(","))) if rest else ""
        if have == wanted:
            return float(value)
    return None
