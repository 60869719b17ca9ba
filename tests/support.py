"""Helpers shared by test modules (``from support import require_binary``; tests/ is on sys.path)."""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass

import psutil
import pytest

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}

INSTALL_HINTS = {
    "promtool": "apt-get install --no-install-recommends prometheus",
    "prometheus": "apt-get install --no-install-recommends prometheus",
    "amtool": "apt-get install --no-install-recommends prometheus-alertmanager",
    "prometheus-alertmanager": "apt-get install --no-install-recommends prometheus-alertmanager",
}


def require_binary(name: str) -> str:
    """Path of ``name``; skip with an install hint on a newcomer's machine, fail in CI (CI=true)."""
    path = shutil.which(name)
    if path:
        return path
    message = f"{name} is not installed; install it with: {INSTALL_HINTS.get(name, name)}"
    if IN_CI:
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


# -- CPU readings --------------------------------------------------------------------------------
# A busy loop asserting "the CPU figure is > 0" depends on the scheduler. These helpers make such
# tests exact instead: burn CPU until psutil itself shows the counter moved (a bounded number of
# rounds), and compare the exported figure with what psutil reported just before and just after.


@dataclass(frozen=True)
class CpuReading:
    """psutil's two inputs to ``Process.cpu_percent()``: its clock (``time.monotonic``) and this
    process's CPU seconds, user + system (from /proc's tick counters on Linux)."""

    wall: float
    cpu: float


def cpu_seconds(process: psutil.Process | None = None) -> float:
    times = (process or psutil.Process()).cpu_times()
    return float(times.user + times.system)


def read_cpu() -> CpuReading:
    cpu = cpu_seconds()
    return CpuReading(wall=time.monotonic(), cpu=cpu)


def burn_cpu_past(cpu: float, *, rounds: int = 200_000) -> None:
    """Burn CPU until psutil reports more than ``cpu`` CPU seconds for this process.

    psutil counts in ticks (1/100 s), not ``time.process_time()``'s nanoseconds: the loop watches
    psutil's own reading, and gives up (fails) after ``rounds`` rounds instead of spinning forever.
    """
    process = psutil.Process()
    for _ in range(rounds):
        if cpu_seconds(process) > cpu:
            return
        sum(i * i for i in range(2_000))
    raise AssertionError(f"psutil never reported more than {cpu} CPU seconds for this process")


def cpu_percent_bounds(
    first: tuple[CpuReading, CpuReading], second: tuple[CpuReading, CpuReading]
) -> tuple[float, float]:
    """What ``Process.cpu_percent(None)`` can answer on a call made between the readings ``second``,
    when its previous call was made between the readings ``first``: 100 x CPU seconds / wall seconds
    over the interval, taken at the most extreme instants allowed, widened by psutil's rounding."""
    (before_first, after_first), (before_second, after_second) = first, second
    low = 100 * (before_second.cpu - after_first.cpu) / (after_second.wall - before_first.wall)
    high = 100 * (after_second.cpu - before_first.cpu) / (before_second.wall - after_first.wall)
    return low - 0.05, high + 0.05  # psutil rounds to one decimal
