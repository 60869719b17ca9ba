"""The owner tools' message catalogue: both languages, every key the code uses, same placeholders."""

from __future__ import annotations

import json
import re
import string
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [
    ROOT / "comet/features/cogs/debug.py",
    ROOT / "comet/features/cogs/reload.py",
    ROOT / "comet/features/cogs/trace.py",
    ROOT / "comet/features/cogs/profile.py",
    ROOT / "comet/core/reloader.py",
]
OPERATIONS = ("load", "reload", "unload")


def catalogue(locale: str) -> dict[str, str]:
    return json.loads((ROOT / f"comet/locales/{locale}/debug.json").read_text(encoding="utf-8"))


def keys_used_in_code() -> set[str]:
    used: set[str] = set()
    for path in SOURCES:
        text = path.read_text(encoding="utf-8")
        used.update(re.findall(r"""\._?t\(\s*["']((?:debug|reload)\.[a-z_.]+)["']""", text))
        for template in re.findall(r"""\._?t\(\s*f["']((?:debug|reload)\.[a-z_.{}]+)["']""", text):
            used.update(template.replace("{operation}", op) for op in OPERATIONS)
    return used


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_both_locales_have_the_same_keys_and_placeholders() -> None:
    ja, en = catalogue("ja"), catalogue("en")
    assert set(ja) == set(en)
    for key in ja:
        assert key.startswith(("debug.", "reload.")), key
        assert placeholders(ja[key]) == placeholders(en[key]), key


@pytest.mark.parametrize("locale", ["ja", "en"])
def test_every_key_the_code_uses_exists_and_none_is_unused(locale: str) -> None:
    used = keys_used_in_code()
    assert used == set(catalogue(locale)), (used - set(catalogue(locale)), set(catalogue(locale)) - used)


def test_the_seed_messages_are_kept() -> None:
    ja = catalogue("ja")
    assert ja["debug.disabled"] == "デバッグモードが無効です"
    assert ja["debug.result"] == "結果: {result}"
    assert ja["debug.error"] == "エラー: {error}"
    assert ja["reload.module_done"] == "モジュール {module} をリロードしました"
    assert ja["reload.module_error"] == "リロードエラー: {error}"
    assert catalogue("en")["debug.disabled"] == "Debug mode is disabled"
