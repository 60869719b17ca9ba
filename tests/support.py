"""Helpers shared by test modules (``from support import require_binary``; tests/ is on sys.path)."""

from __future__ import annotations

import os
import shutil

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
