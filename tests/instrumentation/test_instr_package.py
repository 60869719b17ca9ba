"""``import instrumentation`` is light; its public names resolve lazily to the right objects."""

from __future__ import annotations

import subprocess
import sys

import pytest

import instrumentation


def test_import_pulls_in_neither_discord_nor_aiohttp() -> None:
    code = (
        "import sys, instrumentation\n"
        "heavy = ('discord', 'aiohttp', 'psutil', 'prometheus_client')\n"
        "heavy = sorted(m for m in heavy if m in sys.modules)\n"
        "assert not heavy, heavy\n"
        "instrumentation.ResponseTimeMonitor\n"
        "assert 'discord' not in sys.modules and 'aiohttp' not in sys.modules\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("name", instrumentation.__all__)
def test_every_export_resolves(name: str) -> None:
    value = getattr(instrumentation, name)
    assert getattr(value, "__name__", name) == name
    assert name in dir(instrumentation)


def test_unknown_attribute() -> None:
    with pytest.raises(AttributeError, match="no_such_thing"):
        instrumentation.no_such_thing  # noqa: B018
